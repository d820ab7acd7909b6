package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
)

// shutdownGrace bounds how long Run waits for in-flight calls at shutdown.
const shutdownGrace = 5 * time.Second

// Node is one running server process: the API listener (TLS + Noise), the
// optional WKD and admin listeners, and any attached services (MX, relay).
// Several nodes may share one Redis store.
type Node struct {
	// Services run beside the listeners for the lifetime of Run, with a
	// context that ends when Run stops (the MX and the relay attach here).
	// A service returning an error stops the node; returning nil does not.
	// Set it before Run.
	Services []func(ctx context.Context) error

	cfg     Config
	st      store.Store
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *api.Metrics
	refused prometheus.Counter

	chLn                *channel.Listener
	wkdLn, adminLn      net.Listener
	apiSrv, wkdSrv, adm *http.Server

	serving atomic.Bool
	started atomic.Bool
}

// New builds a node from cfg on an open store and binds its listeners, so
// that the Addr methods answer before Run. log must come from logging.New.
// The node does not own st: the caller closes it after Run returns.
func New(cfg Config, st store.Store, log *slog.Logger) (*Node, error) {
	if st == nil || log == nil {
		return nil, fmt.Errorf("%w: New needs a store and a logger", ErrConfig)
	}
	if cfg.APIListen == "" {
		cfg.APIListen = DefaultAPIListen
	}
	if cfg.AdminListen != "" {
		if err := checkLoopback(cfg.AdminListen); err != nil {
			return nil, err
		}
	}
	static, err := loadNoiseKey(cfg)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, st: st, log: log, reg: prometheus.NewRegistry()}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics = api.NewMetrics(n.reg)
	n.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "smessenger", Name: "connections_rate_limited_total",
		Help: "API connections dropped by the per-source limit before the handshake.",
	})
	n.reg.MustRegister(n.refused)
	if err := n.listen(tlsCfg, static); err != nil {
		n.closeListeners()
		return nil, err
	}
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "smessenger", Name: "connected_devices",
		Help: "Open channel connections of authenticated devices on this node.",
	}, func() float64 { return float64(n.chLn.Live()) }))
	h, err := api.NewHandler(api.Config{
		Store: st, Log: log, Identify: n.identify, ValidateKey: validateKey,
		Limits: cfg.Limits, Metrics: n.metrics, GroupCommit: groupCommits(st),
	})
	if err != nil {
		n.closeListeners()
		return nil, err
	}
	errLog := logging.StdLogger(log)
	n.apiSrv = &http.Server{
		Handler: h, ConnContext: connContext, ErrorLog: errLog,
		ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute,
	}
	if n.wkdLn != nil {
		n.wkdSrv = &http.Server{Handler: n.wkdHandler(), ErrorLog: errLog,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	}
	if n.adminLn != nil {
		n.adm = &http.Server{Handler: n.adminHandler(), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second}
	}
	return n, nil
}

// listen binds the API, WKD and admin listeners.
func (n *Node) listen(tlsCfg *tls.Config, static channel.KeyPair) error {
	raw, err := net.Listen("tcp", n.cfg.APIListen)
	if err != nil {
		return fmt.Errorf("server: api listener: %w", err)
	}
	perMin := n.cfg.HandshakesPerMinute
	if perMin == 0 {
		perMin = DefaultHandshakesPerMinute
	}
	limited := &limitedListener{Listener: raw, lim: newSourceLimiter(perMin, nil), refused: n.refused.Inc}
	n.chLn = channel.NewListener(limited, channel.ServerConfig{
		TLS: tlsCfg, Static: static, Authorize: n.authorize, HandshakeTimeout: n.cfg.HandshakeTimeout,
	})
	if n.cfg.WKDListen != "" {
		ln, err := net.Listen("tcp", n.cfg.WKDListen)
		if err != nil {
			return fmt.Errorf("server: wkd listener: %w", err)
		}
		if !n.cfg.WKDPlainHTTP {
			wc := tlsCfg.Clone()
			wc.MinVersion = tls.VersionTLS12
			ln = tls.NewListener(ln, wc)
		}
		n.wkdLn = ln
	}
	if n.cfg.AdminListen != "" {
		ln, err := net.Listen("tcp", n.cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("server: admin listener: %w", err)
		}
		n.adminLn = ln
	}
	return nil
}

func (n *Node) closeListeners() {
	for _, ln := range []net.Listener{n.chLn, n.wkdLn, n.adminLn} {
		if ln != nil && !isNilListener(ln) {
			_ = ln.Close()
		}
	}
}

// isNilListener catches a typed nil *channel.Listener inside the interface.
func isNilListener(ln net.Listener) bool {
	c, ok := ln.(*channel.Listener)
	return ok && c == nil
}

// Store returns the node's store (for attached services).
func (n *Node) Store() store.Store { return n.st }

// Logger returns the node's logger (for attached services).
func (n *Node) Logger() *slog.Logger { return n.log }

// Registry returns the node's Prometheus registry, so attached services
// can add their own metrics to /metrics.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// APIAddr is the bound address of the bridge API.
func (n *Node) APIAddr() net.Addr { return n.chLn.Addr() }

// WKDAddr is the bound WKD address, or nil when WKD is off.
func (n *Node) WKDAddr() net.Addr {
	if n.wkdLn == nil {
		return nil
	}
	return n.wkdLn.Addr()
}

// AdminAddr is the bound admin address, or nil when it is off.
func (n *Node) AdminAddr() net.Addr {
	if n.adminLn == nil {
		return nil
	}
	return n.adminLn.Addr()
}

// Close releases the listeners of a node whose Run was never called.
func (n *Node) Close() error {
	if !n.started.Load() {
		n.closeListeners()
	}
	return nil
}

// ErrRunning is returned by a second call to Run.
var ErrRunning = errors.New("server: node already ran")

// Run serves until ctx ends or a listener or service fails. On return every
// listener is closed, every event stream has ended and every service has
// returned. It returns nil after ctx ended, else the first failure.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	n.checkDurability(ctx)
	base, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3+len(n.Services))
	var wg sync.WaitGroup
	serve := func(name string, srv *http.Server, ln net.Listener) {
		srv.BaseContext = func(net.Listener) context.Context { return base }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: %s listener: %w", name, err)
			}
		}()
	}
	serve("api", n.apiSrv, n.chLn)
	if n.wkdSrv != nil {
		serve("wkd", n.wkdSrv, n.wkdLn)
	}
	if n.adm != nil {
		serve("admin", n.adm, n.adminLn)
	}
	for _, svc := range n.Services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc(base); err != nil && base.Err() == nil {
				errc <- err
			}
		}()
	}
	n.serving.Store(true)
	n.log.Info("node serving")
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		n.log.Error("node stopping", "err", err)
	}
	n.serving.Store(false)
	cancel() // ends event streams and services
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	for _, srv := range []*http.Server{n.apiSrv, n.wkdSrv, n.adm} {
		if srv != nil {
			if serr := srv.Shutdown(sctx); serr != nil {
				_ = srv.Close()
			}
		}
	}
	n.waitStreams(sctx)
	wg.Wait()
	n.log.Info("node stopped")
	return err
}

// streamWaiter is the API handler's optional method for event streams that
// run on hijacked connections, which http.Server.Shutdown does not track.
type streamWaiter interface {
	WaitStreams(ctx context.Context) error
}

// waitStreams waits for the API's detached event streams to end (they end
// with the base context, already cancelled); after the grace period it
// closes their connections, which ends them at once.
func (n *Node) waitStreams(ctx context.Context) {
	sw, ok := n.apiSrv.Handler.(streamWaiter)
	if !ok {
		return
	}
	if sw.WaitStreams(ctx) == nil {
		return
	}
	n.chLn.CloseAll()
	wctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := sw.WaitStreams(wctx); err != nil {
		n.log.Error("event streams did not end", "err", err)
	}
}

// groupCommits reports whether st commits concurrent writes together, so
// that the API should line its writes up (api.Config.GroupCommit).
func groupCommits(st store.Store) bool {
	_, ok := st.(*bolt.Store)
	return ok
}

// durabilityChecker is implemented by stores that can tell whether their
// server is configured for durable acknowledgements (redis).
type durabilityChecker interface {
	CheckDurability(ctx context.Context) ([]string, error)
}

func (n *Node) checkDurability(ctx context.Context) {
	dc, ok := n.st.(durabilityChecker)
	if !ok {
		return
	}
	warnings, err := dc.CheckDurability(ctx)
	if err != nil {
		n.log.Warn("store durability check failed", "err", err)
	}
	for _, w := range warnings {
		n.log.Warn("store durability", "warning", w)
	}
}

// RevokeDevice revokes a device of an account and closes its open
// connections on this node at once (its event streams end). Nodes sharing
// the store refuse its next call at once and end its streams within
// Limits.StreamCheck. It returns how many connections were closed here.
func (n *Node) RevokeDevice(ctx context.Context, acct store.AccountID, deviceID string) (int, error) {
	devs, err := n.st.ListDevices(ctx, acct)
	if err != nil {
		return 0, fmt.Errorf("server: revoke device: %w", err)
	}
	var key []byte
	for _, d := range devs {
		if d.ID == deviceID {
			key = d.NoiseKey
		}
	}
	if key == nil {
		return 0, fmt.Errorf("server: revoke device: %w", store.ErrDeviceNotFound)
	}
	if err := n.st.RevokeDevice(ctx, acct, deviceID); err != nil {
		return 0, fmt.Errorf("server: revoke device: %w", err)
	}
	return n.chLn.CloseDevice(key), nil
}

// DeleteUser deletes the account owning address and cuts off its devices'
// connections on this node.
func (n *Node) DeleteUser(ctx context.Context, address string) error {
	id, err := n.st.LookupAddress(ctx, store.NormalizeAddress(address))
	if err != nil {
		return fmt.Errorf("server: delete user: %w", err)
	}
	devs, err := n.st.ListDevices(ctx, id)
	if err != nil {
		return fmt.Errorf("server: delete user: %w", err)
	}
	if err := n.st.DeleteAccount(ctx, id); err != nil {
		return fmt.Errorf("server: delete user: %w", err)
	}
	for _, d := range devs {
		n.chLn.CloseDevice(d.NoiseKey)
	}
	return nil
}
