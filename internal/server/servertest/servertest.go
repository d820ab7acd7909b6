// Package servertest runs real server nodes for tests: a node from a data
// folder made by server.Init in t.TempDir(), listening on loopback port 0,
// on a real store, with helpers to create users and enrol devices over the
// real TLS + Noise channel. Nothing is imitated.
package servertest

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/pgp"
)

// Domain is the mail domain of test nodes.
const Domain = "example.org"

// LogBuffer is a goroutine-safe log sink whose contents tests can scan.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Env is one running node.
type Env struct {
	Node      *server.Node
	Store     store.Store
	Config    server.Config
	ServerKey []byte
	Logs      *LogBuffer

	cancel context.CancelFunc
	done   chan error
}

// OpenBolt opens a bbolt store in t.TempDir(), closed at the end of the test.
func OpenBolt(t testing.TB) store.Store {
	t.Helper()
	st, _ := OpenBoltPath(t)
	return st
}

// OpenBoltPath is OpenBolt that also returns the file's path, so benchmarks
// can read the commit counter in its meta pages (BoltTxID).
func OpenBoltPath(t testing.TB) (store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}

// InitDir runs server.Init in a temp dir with loopback listeners and
// returns the loaded config.
func InitDir(t testing.TB, host string) server.Config {
	t.Helper()
	dir := t.TempDir()
	lo := host + ":0"
	res, err := server.Init(dir, server.InitConfig{
		PublicAddress: lo, Domains: []string{Domain},
		APIListen: lo, WKDListen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatalf("server.Init: %v", err)
	}
	cfg, err := server.LoadConfig(res.ConfigPath)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

// Start runs a node on st from a fresh data folder; mod may adjust the
// config. The node stops at the end of the test, and the test fails if Run
// returned an error.
func Start(t testing.TB, st store.Store, mod func(*server.Config)) *Env {
	t.Helper()
	return StartConfig(t, st, InitDir(t, "127.0.0.1"), mod)
}

// StartConfig is Start with a given config (two nodes sharing keys, or a
// node on [::1]).
func StartConfig(t testing.TB, st store.Store, cfg server.Config, mod func(*server.Config)) *Env {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	logs := &LogBuffer{}
	node, err := server.New(cfg, st, logging.New(logs, slog.LevelDebug))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	key, err := serverKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{Node: node, Store: st, Config: cfg, ServerKey: key, Logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- node.Run(ctx) }()
	t.Cleanup(func() { e.Stop(t) })
	return e
}

// Stop stops the node (idempotent) and fails the test if Run failed.
func (e *Env) Stop(t testing.TB) {
	e.cancel()
	select {
	case err, ok := <-e.done:
		if ok && err != nil {
			t.Errorf("node Run: %v", err)
		}
		if ok {
			close(e.done)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("node did not stop")
	}
}

// AddUser creates an account and returns its id and enrolment token.
func (e *Env) AddUser(t testing.TB, address string) (store.AccountID, string) {
	t.Helper()
	id, tok, err := server.AddUser(context.Background(), e.Store, address, 0)
	if err != nil {
		t.Fatalf("AddUser %s: %v", address, err)
	}
	return store.AccountID(id), tok
}

// ClientConfig returns a channel config for a device key and optional token.
func (e *Env) ClientConfig(kp channel.KeyPair, token string) channel.ClientConfig {
	cc := channel.ClientConfig{ServerKey: e.ServerKey, Static: kp, HandshakeTimeout: 10 * time.Second}
	if token != "" {
		cc.Payload = []byte(token)
	}
	return cc
}

// Client dials the node with a fresh device key (enrolling with token if
// given). The client's idle connections close at the end of the test.
func (e *Env) Client(t testing.TB, token string) (*api.Client, channel.KeyPair) {
	t.Helper()
	kp, err := channel.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return e.ClientWithKey(t, kp, token), kp
}

// ClientWithKey dials the node with a given device key.
func (e *Env) ClientWithKey(t testing.TB, kp channel.KeyPair, token string) *api.Client {
	c := api.NewClient(e.Node.APIAddr().String(), e.ClientConfig(kp, token))
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// User is an enrolled account with its device client and OpenPGP key.
type User struct {
	Address string
	Account store.AccountID
	Client  *api.Client
	Device  channel.KeyPair
	Key     *pgp.Key
}

// NewUser creates address, enrols one device and publishes a fresh
// OpenPGP key for it.
func (e *Env) NewUser(t testing.TB, address string) *User {
	t.Helper()
	id, tok := e.AddUser(t, address)
	c, kp := e.Client(t, tok)
	k, err := pgp.GenerateKey("Test", address)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if err := c.SetPublicKey(context.Background(), k.PublicBinary()); err != nil {
		t.Fatalf("SetPublicKey %s: %v", address, err)
	}
	return &User{Address: address, Account: id, Client: c, Device: kp, Key: k}
}

func serverKey(cfg server.Config) ([]byte, error) {
	return server.PublicNoiseKey(cfg)
}
