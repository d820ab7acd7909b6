package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"smessenger/bridge"
	"smessenger/internal/channel"
	"smessenger/internal/dnsres"
	"smessenger/internal/relay"
	"smessenger/internal/server"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/smtpd"
)

// Domain is the demo's mail domain.
const Domain = "example.test"

// User is one demo user and the ports its bridge prefers.
type User struct {
	Name, Address          string
	IMAPListen, SMTPListen string
}

// DefaultUsers are alice and bob.
var DefaultUsers = []User{
	{Name: "Alice", Address: "alice@" + Domain, IMAPListen: "127.0.0.1:1143", SMTPListen: "127.0.0.1:1025"},
	{Name: "Bob", Address: "bob@" + Domain, IMAPListen: "127.0.0.1:1144", SMTPListen: "127.0.0.1:1026"},
}

// Config configures Run.
type Config struct {
	// DataDir holds everything; a rerun reuses it.
	DataDir string
	// MXListen is the MX's address; taken ports fall back to free ones.
	MXListen string
	// Users default to DefaultUsers.
	Users []User
	// Policy is the bridges' policy for key-less outside recipients.
	Policy string
	// LogFile, if set, is where the logs go besides Log's writer; it is
	// only recorded in the settings.
	LogFile string
	// Log must come from internal/logging.
	Log *slog.Logger
	// Out receives the settings table; nil discards.
	Out io.Writer
}

// Run starts the whole system and serves until ctx ends; then it stops
// everything in order (bridges, node with MX and relay, outside world,
// store) and returns nil.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if len(cfg.Users) == 0 {
		cfg.Users = DefaultUsers
	}
	if cfg.MXListen == "" {
		cfg.MXListen = "127.0.0.1:2525"
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg.DataDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	sec, err := loadOrCreateSecrets(dir)
	if err != nil {
		return err
	}
	sys, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer sys.stop()
	settings, err := sys.startBridges(ctx, cfg, sec)
	if err != nil {
		return err
	}
	b, err := settings.JSON()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, SettingsFileName), b, 0o600); err != nil {
		return err
	}
	settings.PrintTable(cfg.Out)
	cfg.Log.Info("demo ready")
	select {
	case <-ctx.Done():
		cfg.Log.Info("demo stopping")
	case err = <-sys.errc:
		cfg.Log.Error("demo stopping after a failure", "err", err)
	}
	return err
}

// system is the running demo.
type system struct {
	log     *slog.Logger
	st      store.Store
	node    *server.Node
	outside *Outside
	mxAddr  net.Addr
	srvKey  string

	nodeCancel, outCancel, bridgeCancel context.CancelFunc
	nodeDone, outDone                   chan struct{}
	bridges                             sync.WaitGroup
	errc                                chan error
}

// start brings up the store, the server node with its MX and relay, and
// the outside world.
func start(ctx context.Context, cfg Config) (_ *system, err error) {
	s := &system{log: cfg.Log, errc: make(chan error, 8), bridgeCancel: func() {}}
	scfg, err := serverConfig(filepath.Join(cfg.DataDir, "server"))
	if err != nil {
		return nil, err
	}
	if s.st, err = bolt.Open(scfg.BoltPath(), bolt.Options{}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.node, err = server.New(scfg, s.st, cfg.Log); err != nil {
		return nil, err
	}
	pub, err := server.PublicNoiseKey(scfg)
	if err != nil {
		return nil, err
	}
	s.srvKey = channel.Fingerprint(pub)
	if s.outside, err = NewOutside(filepath.Join(cfg.DataDir, "outside"), cfg.Log); err != nil {
		return nil, err
	}
	if err := s.attachMX(scfg, cfg.MXListen); err != nil {
		return nil, err
	}
	sinkHost, sinkPort, _ := net.SplitHostPort(s.outside.SinkAddr())
	rl := relay.New(relay.Config{
		// Every domain's MX is the sink: relay.Config.Routes has no
		// catch-all, so the demo's resolver provides one.
		Hostname: "relay." + Domain, Workers: 2, Port: sinkPort,
		Resolver: outsideDNS{host: sinkHost}, PollInterval: 200 * time.Millisecond,
		Backoff: relay.Backoff{Base: 5 * time.Second, Max: time.Minute}, DialTimeout: 10 * time.Second,
		Metrics: s.node.Registry(),
	}, s.st, cfg.Log)
	s.node.Services = append(s.node.Services, rl.Run)
	s.nodeCancel, s.nodeDone = s.goRun(ctx, s.node.Run)
	s.outCancel, s.outDone = s.goRun(ctx, s.outside.Run)
	return s, nil
}

// goRun runs f in a goroutine with its own cancel; a failure goes to errc.
func (s *system) goRun(ctx context.Context, f func(context.Context) error) (context.CancelFunc, chan struct{}) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(cctx); err != nil && cctx.Err() == nil {
			s.errc <- err
		}
	}()
	return cancel, done
}

// serverConfig loads DATA/server/config.toml, initialising the folder on
// the first run. Listeners are forced to loopback port 0: the bridges are
// wired to whatever port the node gets.
func serverConfig(dir string) (server.Config, error) {
	path := filepath.Join(dir, server.ConfigFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		_, err := server.Init(dir, server.InitConfig{
			PublicAddress: "127.0.0.1:7443", Domains: []string{Domain},
			APIListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		})
		if err != nil {
			return server.Config{}, err
		}
	}
	scfg, err := server.LoadConfig(path)
	if err != nil {
		return server.Config{}, err
	}
	scfg.APIListen, scfg.AdminListen, scfg.WKDListen = "127.0.0.1:0", "127.0.0.1:0", ""
	return scfg, nil
}

// attachMX binds the MX (falling back to a free port) and adds it to the
// node's services.
func (s *system) attachMX(scfg server.Config, addr string) error {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(scfg.DataDir, p)
	}
	cert, err := tls.LoadX509KeyPair(abs(scfg.TLSCertFile), abs(scfg.TLSKeyFile))
	if err != nil {
		return fmt.Errorf("demo: server certificate: %w", err)
	}
	mx := smtpd.NewMX(smtpd.MXConfig{
		Domains: []string{Domain}, Hostname: "mx." + Domain,
		TLS:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Resolver: dnsres.NewStatic(),
	}, s.st, s.log)
	ln, err := listen(addr, true)
	if err != nil {
		return fmt.Errorf("demo: mx listener: %w", err)
	}
	s.mxAddr = ln.Addr()
	s.node.Services = append(s.node.Services, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- mx.Serve(ln) }()
		select {
		case <-ctx.Done():
			mx.Close()
			<-errc
			return nil
		case err := <-errc:
			return err
		}
	})
	return nil
}

// stop ends everything that started, bridges first so that they do not
// see their server vanish, the store last.
func (s *system) stop() {
	s.bridgeCancel()
	s.bridges.Wait()
	if s.outCancel != nil {
		s.outCancel()
		<-s.outDone
	}
	if s.nodeCancel != nil {
		s.nodeCancel()
		<-s.nodeDone
	} else if s.node != nil {
		s.node.Close()
	}
	if s.st != nil {
		if err := s.st.Close(); err != nil {
			s.log.Error("demo: closing the store", "err", err)
		}
	}
}

// apiAddr is where the bridges dial the node.
func (s *system) apiAddr() string { return s.node.APIAddr().String() }

// startBridges sets up (first run) and starts every user's bridge and
// returns the settings to print.
func (s *system) startBridges(ctx context.Context, cfg Config, sec *secrets) (*Settings, error) {
	mxHost, mxPort := hostPort(s.mxAddr)
	set := &Settings{
		PID: os.Getpid(), DataDir: cfg.DataDir, MX: MXSetting{Host: mxHost, Port: mxPort}, LogFile: cfg.LogFile,
		Outside: OutsideSettings{SinkAddr: s.outside.SinkAddr(), MailDir: s.outside.MailDir,
			KeysDir: s.outside.KeysDir, WKDAddr: s.outside.WKDAddr(), CAFile: s.outside.CAFile},
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bridgeCancel = cancel
	for _, u := range cfg.Users {
		if set.SendFromOutside == "" || strings.HasPrefix(u.Address, "bob@") {
			set.SendFromOutside = fmt.Sprintf("swaks --server %s:%d --from someone@outside.test --to %s", mxHost, mxPort, u.Address)
		}
		us, err := s.startBridge(ctx, bctx, cfg, sec, u)
		if err != nil {
			return nil, err
		}
		set.Users = append(set.Users, us)
	}
	return set, nil
}

func (s *system) startBridge(ctx, bctx context.Context, cfg Config, sec *secrets, u User) (UserSetting, error) {
	dir := filepath.Join(cfg.DataDir, "bridge-"+strings.SplitN(u.Address, "@", 2)[0])
	if err := s.ensureLogin(ctx, cfg.DataDir, dir, sec, u); err != nil {
		return UserSetting{}, err
	}
	b, err := OpenBridge(ctx, BridgeConfig{
		DataDir: dir, Passphrase: []byte(sec.Passphrase),
		IMAPListen: u.IMAPListen, SMTPListen: u.SMTPListen, FallbackPorts: true,
		Policy:    cfg.Policy,
		WKD:       bridge.WKDConfig{DialContext: s.outside.DialWKD, TLS: s.outside.RootCAs()},
		NewServer: fixedAddr(s.apiAddr), Log: s.log.With("user", u.Name),
	})
	if err != nil {
		return UserSetting{}, fmt.Errorf("demo: bridge of %s: %w", u.Address, err)
	}
	s.bridges.Add(1)
	go func() {
		defer s.bridges.Done()
		if err := b.Run(bctx); err != nil && bctx.Err() == nil {
			s.errc <- err
		}
	}()
	ih, ip := hostPort(b.IMAPAddr())
	sh, sp := hostPort(b.SMTPAddr())
	return UserSetting{
		Address: u.Address, Username: u.Address, Password: sec.BridgePasswords[u.Address],
		IMAPHost: ih, IMAPPort: ip, SMTPHost: sh, SMTPPort: sp,
		Security: "plaintext or STARTTLS", Certificate: b.CertPath(), BridgeDir: dir,
	}, nil
}

// ensureLogin creates the user on the server and logs its bridge in, once.
func (s *system) ensureLogin(ctx context.Context, dataDir, dir string, sec *secrets, u User) error {
	if _, err := os.Stat(filepath.Join(dir, "vault.json")); err == nil {
		if sec.BridgePasswords[u.Address] == "" {
			return fmt.Errorf("demo: %s has a bridge but its password is not in %s; remove %s to start it afresh",
				u.Address, SecretsFileName, dir)
		}
		return nil
	}
	_, token, err := server.AddUser(ctx, s.st, u.Address, 0)
	if errors.Is(err, store.ErrAddressTaken) {
		token, err = server.NewEnrolToken(ctx, s.st, u.Address, 0)
	}
	if err != nil {
		return err
	}
	res, err := bridge.Login(ctx, bridge.LoginConfig{
		DataDir: dir, Address: u.Address, Name: u.Name, ServerAddr: s.apiAddr(),
		ServerKey: s.srvKey, Token: token, Passphrase: []byte(sec.Passphrase), NewServer: fixedAddr(s.apiAddr),
	})
	if err != nil {
		return fmt.Errorf("demo: login of %s: %w", u.Address, err)
	}
	sec.BridgePasswords[u.Address] = res.BridgePassword
	s.log.Info("demo user set up", "user", u.Name, "fingerprint", res.Fingerprint)
	return sec.save(dataDir)
}
