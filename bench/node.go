package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"smessenger/internal/channel"
	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/server"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/internal/store/redis"
	"smessenger/smtpd"
)

// benchDomain is the mail domain of the benchmark's server node.
const benchDomain = "example.org"

// nodeReady is what the node child reports once it serves.
type nodeReady struct {
	API       string              `json:"api"`
	MX        string              `json:"mx"`
	ServerKey string              `json:"server_key"` // channel.Fingerprint form
	Tokens    map[string][]string `json:"tokens"`     // address -> three enrolment tokens
	Devices   int                 `json:"devices"`    // idle-stream devices registered
}

// runNode is the "node" mode: a server node on a bbolt store in -dir with an
// MX, both on 127.0.0.1 port 0, the users of -users (three enrolment tokens
// each: the bench's bridge, the corpus loader, the command-line bridge), and with -devices N, an
// account "idle@" with N registered device keys written to -device-file.
// Rate limits are lifted: the load comes from one loopback source.
func runNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	dir := fs.String("dir", "", "data folder (created)")
	users := fs.String("users", "", "comma-separated addresses to create")
	devices := fs.Int("devices", 0, "idle-stream devices to register for idle@"+benchDomain)
	deviceFile := fs.String("device-file", "", "where to write the devices' private keys (hex, one a line)")
	redisURL := fs.String("redis-url", "", "use this Redis server as the store instead of bbolt in -dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFileLimit()
	server.TuneGC(0, 0) // as smessenger server runs by default
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, slog.LevelWarn)
	res, err := server.Init(*dir, server.InitConfig{PublicAddress: "127.0.0.1:0", Domains: []string{benchDomain},
		APIListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	cfg, err := server.LoadConfig(res.ConfigPath)
	if err != nil {
		return err
	}
	cfg.HandshakesPerMinute = -1
	cfg.Limits.CallsPerSecond = -1
	var st store.Store
	if *redisURL != "" {
		st, err = redis.Open(ctx, *redisURL)
	} else {
		st, err = bolt.Open(cfg.BoltPath(), bolt.Options{})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	node, err := server.New(cfg, st, log)
	if err != nil {
		return err
	}
	ready := nodeReady{API: node.APIAddr().String(), Tokens: map[string][]string{}}
	key, err := server.PublicNoiseKey(cfg)
	if err != nil {
		return err
	}
	ready.ServerKey = channel.Fingerprint(key)
	mxAddr, err := attachMX(node, cfg, st, log)
	if err != nil {
		return err
	}
	ready.MX = mxAddr
	if err := addUsers(ctx, st, *users, ready.Tokens); err != nil {
		return err
	}
	if *devices > 0 {
		if err := addIdleDevices(ctx, st, *devices, *deviceFile); err != nil {
			return err
		}
		ready.Devices = *devices
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()
	if err := printReady(ready); err != nil {
		cancel()
		return err
	}
	waitForStdinEOF(ctx)
	cancel()
	return <-done
}

// attachMX starts the MX as a node service, as `smessenger server run`
// does, but with the per-source limits lifted (every benchmark sender is
// 127.0.0.1) and a static resolver (the machine has no DNS: SPF, DKIM and
// DMARC are still evaluated, to "none").
func attachMX(node *server.Node, cfg server.Config, st store.Store, log *slog.Logger) (string, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(cfg.DataDir, cfg.TLSCertFile), filepath.Join(cfg.DataDir, cfg.TLSKeyFile))
	if err != nil {
		return "", fmt.Errorf("bench: node certificate: %w", err)
	}
	mx := smtpd.NewMX(smtpd.MXConfig{
		Domains: []string{benchDomain}, Hostname: "mx.example.org",
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ConnsPerSource: 100000, CommandsPerMinute: 1 << 30, Resolver: dnsres.NewStatic(),
	}, st, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: mx listener: %w", err)
	}
	node.Services = append(node.Services, func(ctx context.Context) error {
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
	return ln.Addr().String(), nil
}

func addUsers(ctx context.Context, st store.Store, list string, tokens map[string][]string) error {
	for _, addr := range strings.Split(list, ",") {
		if addr = strings.TrimSpace(addr); addr == "" {
			continue
		}
		_, tok, err := server.AddUser(ctx, st, addr, 0)
		if err != nil {
			return err
		}
		tokens[addr] = []string{tok}
		for range 2 {
			more, err := server.NewEnrolToken(ctx, st, addr, 0)
			if err != nil {
				return err
			}
			tokens[addr] = append(tokens[addr], more)
		}
	}
	return nil
}

// addIdleDevices registers n device keys for one account straight in the
// store (enrolment through tokens is the tests' business) and a mailbox, so
// that every event stream has a backlog event that proves it is live.
func addIdleDevices(ctx context.Context, st store.Store, n int, path string) error {
	acct, err := st.CreateAccount(ctx, "idle@"+benchDomain, 0)
	if err != nil {
		return fmt.Errorf("bench: idle account: %w", err)
	}
	if _, err := st.CreateMailbox(ctx, acct.ID, "x", ""); err != nil {
		return fmt.Errorf("bench: idle mailbox: %w", err)
	}
	keys := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 64) // concurrent adds share bbolt group commits
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			kp, err := channel.GenerateKeyPair()
			if err == nil {
				_, err = st.AddDevice(ctx, acct.ID, kp.Public, "")
			}
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			keys[i] = hex.EncodeToString(kp.Private)
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("bench: idle devices: %w", first)
	}
	return os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600)
}
