package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/config"
	"smessenger/internal/logging"
	"smessenger/internal/relay"
	"smessenger/internal/server"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/internal/store/redis"
	"smessenger/smtpd"
)

// serverCmd groups the server role: running a node and its admin commands.
type serverCmd struct {
	Run   serverRunCmd  `cmd:"" default:"withargs" help:"Run a server node (the default)."`
	Init  serverInitCmd `cmd:"" help:"Create a server's data folder: Noise key, TLS certificate, config.toml."`
	Dkim  dkimCmd       `cmd:"" help:"DKIM keys for outgoing mail."`
	Queue queueCmd      `cmd:"" help:"Inspect and steer the outbound queue."`
}

// storeFlags select and open the store; shared by every command that needs it.
type storeFlags struct {
	DataDir       string `name:"data-dir" help:"Server data folder (keys, certificate, bbolt store)." default:"./smessenger-server" type:"path" env:"SMESSENGER_DATA"`
	StoreBackend  string `name:"store-backend" help:"Store: bolt (embedded file) or redis." default:"bolt" enum:"bolt,redis"`
	StoreBoltPath string `name:"store-bolt-path" help:"bbolt file, relative to the data folder." default:"store.db"`
	StoreRedisURL string `name:"store-redis-url" help:"Redis URL (redis://host:port/db, unix:///path) or comma-separated Cluster nodes." placeholder:"URL"`
}

func (f storeFlags) open(ctx context.Context) (store.Store, error) {
	switch f.StoreBackend {
	case "redis":
		if f.StoreRedisURL == "" {
			return nil, fmt.Errorf("--store-redis-url is required with --store-backend=redis")
		}
		return redis.Open(ctx, f.StoreRedisURL)
	default:
		p := f.StoreBoltPath
		if p == "" {
			p = "store.db"
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(f.DataDir, p)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		return bolt.Open(p, bolt.Options{})
	}
}

type serverRunCmd struct {
	storeFlags
	Domains             []string      `name:"domains" help:"Mail domains this node serves." sep:","`
	PublicAddress       string        `name:"public-address" help:"host:port (or onion:port) that bridges dial; printed for bridge setup."`
	APIListen           string        `name:"api-listen" help:"Bridge API address (TLS + Noise)." default:":7443"`
	WKDListen           string        `name:"wkd-listen" help:"Public HTTPS address for WKD key publication; empty: off."`
	WKDPlainHTTP        bool          `name:"wkd-plain-http" help:"Serve WKD without TLS (behind a TLS-terminating proxy)."`
	AdminListen         string        `name:"admin-listen" help:"Loopback address for /healthz, /readyz, /metrics; empty: off." default:"127.0.0.1:7480"`
	NoiseKeyFile        string        `name:"noise-key-file" help:"Noise static private key, relative to the data folder." default:"noise.key"`
	TLSCertFile         string        `name:"tls-cert-file" help:"TLS certificate (PEM), relative to the data folder." default:"tls.crt"`
	TLSKeyFile          string        `name:"tls-key-file" help:"TLS key (PEM), relative to the data folder." default:"tls.key"`
	HandshakesPerMinute int           `name:"handshakes-per-minute" help:"New API connections per source per minute (kept in memory, keyed by a rotating hash)." default:"120"`
	HandshakeTimeout    time.Duration `name:"handshake-timeout" help:"Bound on a TLS + Noise handshake." default:"10s"`
	TokenTTL            time.Duration `name:"token-ttl" help:"Lifetime of enrolment tokens." default:"168h"`

	LimitsMaxMessageBytes int64         `name:"limits-max-message-bytes" help:"Largest API message upload." default:"67108864"`
	LimitsMaxControlBytes int64         `name:"limits-max-control-bytes" help:"Largest API control request." default:"1048576"`
	LimitsCallsPerSecond  float64       `name:"limits-calls-per-second" help:"API calls per second per account (a bridge fetching many uncached bodies at once waits, not fails, above it)." default:"400"`
	LimitsCallBurst       int           `name:"limits-call-burst" help:"API call burst per account." default:"1000"`
	LimitsStreamCheck     time.Duration `name:"limits-stream-check" help:"Keep-alive and revocation check interval of event streams." default:"30s"`

	MXListen          string        `name:"mx-listen" help:"MX (SMTP from the internet) address; empty: off." default:":25"`
	MXHostname        string        `name:"mx-hostname" help:"Name in the SMTP greeting and Authentication-Results." default:"localhost"`
	MXMaxMessageBytes int64         `name:"mx-max-message-bytes" help:"Largest inbound message (552 above)." default:"26214400"`
	MXMaxRecipients   int           `name:"mx-max-recipients" help:"Recipients per inbound message." default:"100"`
	MXDataTimeout     time.Duration `name:"mx-data-timeout" help:"Hard limit on one DATA transfer." default:"10m"`

	RelayWorkers    int               `name:"relay-workers" help:"Outbound delivery workers (0: relay off)." default:"4"`
	RelayHostname   string            `name:"relay-hostname" help:"EHLO name for outbound delivery." default:"localhost"`
	RelayLifetime   time.Duration     `name:"relay-lifetime" help:"Give up on an outbound message (and bounce) after this." default:"120h"`
	RelayRoutes     map[string]string `name:"relay-routes" help:"Static routes domain=host:port (smart hosts, tests); * for all."`
	RelayRequireTLS []string          `name:"relay-require-tls" help:"Domains that must get verified STARTTLS." sep:","`
	DKIMSelector    string            `name:"dkim-selector" help:"DKIM selector; keys are read from DATA/dkim/DOMAIN.pem." default:"smessenger"`

	GCPercent   int   `name:"gc-percent" help:"Garbage-collector target, as GOGC (the GOGC variable wins; negative: Go's default of 100); higher trades memory for CPU." default:"300"`
	MemoryLimit int64 `name:"memory-limit-mib" help:"Soft memory ceiling in MiB (GOMEMLIMIT wins): the collector works harder near it (0: none)." default:"0"`

	LogLevel    string `name:"log-level" help:"debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	PrintConfig bool   `name:"print-config" help:"Print the effective configuration as TOML and exit."`
}

func (c *serverRunCmd) nodeConfig() server.Config {
	return server.Config{
		DataDir: c.DataDir, Domains: c.Domains, PublicAddress: c.PublicAddress,
		APIListen: c.APIListen, WKDListen: c.WKDListen, WKDPlainHTTP: c.WKDPlainHTTP,
		AdminListen: c.AdminListen, NoiseKeyFile: c.NoiseKeyFile,
		TLSCertFile: c.TLSCertFile, TLSKeyFile: c.TLSKeyFile,
		Store:               server.StoreConfig{Backend: c.StoreBackend, BoltPath: c.StoreBoltPath, RedisURL: c.StoreRedisURL},
		HandshakesPerMinute: c.HandshakesPerMinute, HandshakeTimeout: c.HandshakeTimeout, TokenTTL: c.TokenTTL,
		Limits: api.Limits{
			MaxMessageBytes: c.LimitsMaxMessageBytes, MaxControlBytes: c.LimitsMaxControlBytes,
			CallsPerSecond: c.LimitsCallsPerSecond, CallBurst: c.LimitsCallBurst, StreamCheck: c.LimitsStreamCheck,
		},
	}
}

func (c *serverRunCmd) Run(g *globals) error {
	if c.PrintConfig {
		return printFlags(g, map[string]bool{"print-config": true, "config": true})
	}
	server.TuneGC(c.GCPercent, c.MemoryLimit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.New(g.errOut, parseLevel(c.LogLevel))
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := c.nodeConfig()
	node, err := server.New(cfg, st, log)
	if err != nil {
		return err
	}
	tlsCfg, err := loadServerTLS(cfg)
	if err != nil {
		return err
	}
	if c.MXListen != "" {
		mx := smtpd.NewMX(smtpd.MXConfig{
			Domains: c.Domains, Hostname: c.MXHostname, TLS: tlsCfg,
			MaxMessageBytes: c.MXMaxMessageBytes, MaxRecipients: c.MXMaxRecipients, DataTimeout: c.MXDataTimeout,
		}, st, log)
		ln, err := net.Listen("tcp", c.MXListen)
		if err != nil {
			return fmt.Errorf("mx: %w", err)
		}
		node.Services = append(node.Services, serveUntilDone(func() error { return mx.Serve(ln) }, func() { mx.Close() }))
		log.Info("mx listening", "port", portOf(ln.Addr()))
	}
	if c.RelayWorkers > 0 {
		dkim, err := loadDKIMKeys(filepath.Join(c.DataDir, "dkim"))
		if err != nil {
			return err
		}
		rl := relay.New(relay.Config{
			Hostname: c.RelayHostname, Workers: c.RelayWorkers, Lifetime: c.RelayLifetime,
			Routes: c.RelayRoutes, RequireTLS: c.RelayRequireTLS, DKIM: dkim, DKIMSelector: c.DKIMSelector,
			Metrics: node.Registry(),
		}, st, log)
		node.Services = append(node.Services, rl.Run)
	}
	log.Info("server node starting", "api_port", portOf(node.APIAddr()), "domains", strings.Join(c.Domains, ","))
	return node.Run(ctx)
}

// serveUntilDone adapts a blocking Serve to a node service that stops with ctx.
func serveUntilDone(serve func() error, closeFn func()) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- serve() }()
		select {
		case <-ctx.Done():
			closeFn()
			<-errc
			return nil
		case err := <-errc:
			return err
		}
	}
}

func portOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

func loadServerTLS(cfg server.Config) (*tls.Config, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cfg.DataDir, p)
	}
	cert, err := tls.LoadX509KeyPair(abs(cfg.TLSCertFile), abs(cfg.TLSKeyFile))
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w (run `smessenger server init` first)", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// loadDKIMKeys reads DIR/DOMAIN.pem files written by `server dkim generate`.
func loadDKIMKeys(dir string) (map[string]crypto.Signer, error) {
	keys := map[string]crypto.Signer{}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return keys, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		k, err := relay.ParseDKIMKey(b)
		if err != nil {
			return nil, fmt.Errorf("dkim key %s: %w", e.Name(), err)
		}
		keys[strings.TrimSuffix(e.Name(), ".pem")] = k
	}
	return keys, nil
}

type serverInitCmd struct {
	DataDir       string   `name:"data-dir" help:"Data folder to create." default:"./smessenger-server" type:"path"`
	PublicAddress string   `name:"public-address" help:"host:port bridges will dial." required:""`
	Domains       []string `name:"domains" help:"Mail domains served." required:"" sep:","`
	APIListen     string   `name:"api-listen" help:"Bridge API listen address." default:":7443"`
	WKDListen     string   `name:"wkd-listen" help:"WKD HTTPS listen address; empty: off."`
	TLSCertFile   string   `name:"tls-cert-file" help:"A real certificate (PEM); default: generate a self-signed one."`
	TLSKeyFile    string   `name:"tls-key-file" help:"Its key (PEM)."`
	StoreBackend  string   `name:"store-backend" default:"bolt" enum:"bolt,redis" help:"Store backend written to the config."`
	StoreRedisURL string   `name:"store-redis-url" help:"Redis URL for --store-backend=redis."`
}

func (c *serverInitCmd) Run(g *globals) error {
	res, err := server.Init(c.DataDir, server.InitConfig{
		PublicAddress: c.PublicAddress, Domains: c.Domains, APIListen: c.APIListen, WKDListen: c.WKDListen,
		TLSCertFile: c.TLSCertFile, TLSKeyFile: c.TLSKeyFile,
		Store: server.StoreConfig{Backend: c.StoreBackend, RedisURL: c.StoreRedisURL},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Server initialised in %s\n  config:      %s\n  certificate: %s (self-signed: %v)\n\nBridges need:\n  --server %s --server-key %s\n",
		c.DataDir, res.ConfigPath, res.TLSCertFile, res.SelfSigned, res.PublicAddress, res.ServerKey)
	return nil
}

type dkimCmd struct {
	Generate dkimGenerateCmd `cmd:"" help:"Generate a DKIM key for DOMAIN and print its DNS record."`
}

type dkimGenerateCmd struct {
	DataDir  string `name:"data-dir" default:"./smessenger-server" type:"path" help:"Server data folder."`
	Selector string `name:"selector" default:"smessenger" help:"DKIM selector."`
	Domain   string `arg:"" help:"Sending domain."`
}

func (c *dkimGenerateCmd) Run(g *globals) error {
	priv, record, err := relay.GenerateDKIM(c.Domain, c.Selector)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.DataDir, "dkim")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, strings.ToLower(c.Domain)+".pem")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dkim: %w (a key exists; remove it to rotate)", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Key written to %s\nPublish this TXT record:\n%s._domainkey.%s. IN TXT \"%s\"\n", path, c.Selector, c.Domain, record)
	return nil
}

type queueCmd struct {
	List  queueListCmd  `cmd:"" help:"List queued (or dead) outbound messages."`
	Retry queueRetryCmd `cmd:"" help:"Make an entry due now (a dead one becomes live)."`
	Drop  queueDropCmd  `cmd:"" help:"Delete an entry."`
}

type queueListCmd struct {
	storeFlags
	Dead bool `help:"List the dead letters instead."`
}

func (c *queueListCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	es, err := relay.ListQueue(ctx, st, c.Dead)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "%-24s %-8s %-20s %s\n", "ID", "ATTEMPTS", "NEXT", "RECIPIENTS / LAST ERROR")
	for _, e := range es {
		var rc []string
		for _, r := range e.Recipients {
			state := "pending"
			if r.Done {
				state = "done"
			}
			if r.Failed {
				state = "failed"
			}
			rc = append(rc, r.Address+"("+state+")")
		}
		fmt.Fprintf(g.out, "%-24s %-8d %-20s %s %s\n", e.ID, e.Attempts, e.NextAttempt.UTC().Format(time.DateTime), strings.Join(rc, ","), e.LastError)
	}
	return nil
}

type queueRetryCmd struct {
	storeFlags
	ID string `arg:"" help:"Queue entry id."`
}

func (c *queueRetryCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return relay.Retry(ctx, st, c.ID)
}

type queueDropCmd struct {
	storeFlags
	ID string `arg:"" help:"Queue entry id."`
}

func (c *queueDropCmd) Run(g *globals) error {
	ctx := context.Background()
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return relay.Drop(ctx, st, c.ID)
}

// printFlags prints the selected command's effective flags as TOML, in the
// form --config reads back.
func printFlags(g *globals, skip map[string]bool) error {
	return config.Print(g.out, g.ctx.Selected(), skip)
}
