package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
)

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	res, err := server.Init(dir, server.InitConfig{PublicAddress: "mail.example.org:7443", Domains: []string{"Example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := channel.ParseFingerprint(res.ServerKey)
	if err != nil || len(key) != 32 || !res.SelfSigned {
		t.Fatalf("server key %q: %v", res.ServerKey, err)
	}
	cfg, err := server.LoadConfig(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domains[0] != "example.org" || cfg.AdminListen != server.DefaultAdminListen || cfg.DataDir != dir {
		t.Fatalf("config %+v", cfg)
	}
	pub, err := server.PublicNoiseKey(cfg)
	if err != nil || string(pub) != string(key) {
		t.Fatal("stored noise key does not match the printed one")
	}
	for _, f := range []string{"noise.key", "tls.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode())
		}
	}
	if _, err := server.Init(dir, server.InitConfig{PublicAddress: "a:1", Domains: []string{"x"}}); !errors.Is(err, server.ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	bad := []server.InitConfig{
		{Domains: []string{"x"}},
		{PublicAddress: "nohostport", Domains: []string{"x"}},
		{PublicAddress: "a:1"},
		{PublicAddress: "a:1", Domains: []string{"x"}, AdminListen: "0.0.0.0:9"},
		{PublicAddress: "a:1", Domains: []string{"x"}, TLSCertFile: "only-cert.pem"},
	}
	for i, ic := range bad {
		if _, err := server.Init(t.TempDir(), ic); !errors.Is(err, server.ErrConfig) {
			t.Errorf("bad init %d: %v", i, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "typo.toml"), []byte("api_lisen = \":1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := server.LoadConfig(filepath.Join(dir, "typo.toml")); !errors.Is(err, server.ErrConfig) {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

func TestUserAdmin(t *testing.T) {
	st := servertest.OpenBolt(t)
	c := tctx(t)
	id, tok, err := server.AddUser(c, st, "Carol@Example.org", 1<<20)
	if err != nil || id == "" || len(tok) != 26 {
		t.Fatalf("AddUser: %q %q %v", id, tok, err)
	}
	if _, _, err := server.AddUser(c, st, "carol@example.org", 0); !errors.Is(err, store.ErrAddressTaken) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, _, err := server.AddUser(c, st, "no-at-sign", 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad address: %v", err)
	}
	if err := server.AddAlias(c, st, "carol@example.org", "c@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := server.AddAlias(c, st, "nobody@example.org", "n@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alias for unknown: %v", err)
	}
	users, err := server.ListUsers(c, st)
	if err != nil || len(users) != 1 || len(users[0].Account.Addresses) != 2 || users[0].HasKey {
		t.Fatalf("ListUsers %+v %v", users, err)
	}
	h1, err := server.HashEnrolToken([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := server.HashEnrolToken([]byte(" " + strings.ToLower(tok[:10]) + "-" + tok[10:] + "\n"))
	if string(h1) != string(h2) {
		t.Fatal("token text normalisation differs")
	}
	if _, err := server.HashEnrolToken([]byte("short")); !errors.Is(err, store.ErrTokenInvalid) {
		t.Fatalf("bad token: %v", err)
	}
	acct, err := st.ConsumeEnrolToken(c, h1, time.Now())
	if err != nil || string(acct) != id {
		t.Fatalf("token hash not stored: %v", err)
	}
	if _, err := server.NewEnrolToken(c, st, "c@example.org", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := server.DeleteUser(c, st, "carol@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := server.DeleteUser(c, st, "carol@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestEnrolment(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, "dave@example.org")
	c := tctx(t)

	// No token, bad token: refused.
	nobody, _ := env.Client(t, "")
	if _, err := nobody.WhoAmI(c); err == nil {
		t.Fatal("unknown device without token accepted")
	}
	wrong, _ := env.Client(t, "AAAAAAAAAAAAAAAAAAAAAAAAAA")
	if _, err := wrong.WhoAmI(c); err == nil {
		t.Fatal("wrong token accepted")
	}
	// The right token enrols; the device then works without it.
	dev, kp := env.Client(t, tok)
	if _, err := dev.WhoAmI(c); err != nil {
		t.Fatalf("enrolment: %v", err)
	}
	dev.CloseIdleConnections()
	again := env.ClientWithKey(t, kp, "")
	if _, err := again.WhoAmI(c); err != nil {
		t.Fatalf("enrolled device without token: %v", err)
	}
	// The token is one-time.
	second, _ := env.Client(t, tok)
	if _, err := second.WhoAmI(c); err == nil {
		t.Fatal("used token accepted twice")
	}
	if !strings.Contains(env.Logs.String(), "device enrolled") {
		t.Fatal("enrolment not logged")
	}
}

func TestRevokeEndsStream(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	u := env.NewUser(t, "erin@example.org")
	c := tctx(t)
	w, err := u.Client.WhoAmI(c)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- u.Client.StreamEvents(c, 0, func(store.Event) error {
			select {
			case <-started:
			default:
				close(started)
			}
			return nil
		})
	}()
	<-started // the backlog (mailbox events) arrived: the stream is open
	n, err := env.Node.RevokeDevice(c, u.Account, w.DeviceID)
	if err != nil || n == 0 {
		t.Fatalf("revoke closed %d conns: %v", n, err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("revoked device's stream still open")
	}
	if _, err := u.Client.WhoAmI(c); err == nil {
		t.Fatal("revoked device can still call")
	}
	if _, err := env.Node.RevokeDevice(c, u.Account, "no-such-device"); !errors.Is(err, store.ErrDeviceNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestLimits(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), func(c *server.Config) {
		c.Limits = api.Limits{MaxMessageBytes: 4096, CallsPerSecond: 1, CallBurst: 8}
	})
	u := env.NewUser(t, "frank@example.org")
	c := tctx(t)
	_, err := u.Client.Append(c, "INBOX", store.NewMessage{HeaderBlob: []byte("h"), BodyBlob: make([]byte, 8192)})
	if !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("oversize append: %v", err)
	}
	var limited error
	for i := 0; i < 20 && limited == nil; i++ {
		// A short deadline: the client retries rate-limited calls while
		// its context allows, so only an impatient caller sees the 429.
		short, cancel := context.WithTimeout(c, 200*time.Millisecond)
		if _, err := u.Client.WhoAmI(short); err != nil {
			limited = err
		}
		cancel()
	}
	if !errors.Is(limited, api.ErrRateLimited) {
		t.Fatalf("no rate limit: %v", limited)
	}
	if _, err := u.Client.WhoAmI(c); err != nil {
		t.Fatalf("a patient caller did not get through after the limit: %v", err)
	}
	msgs, _ := env.Store.ListMessages(c, u.Account, "INBOX", 1)
	if len(msgs) != 0 {
		t.Fatal("an oversize append was stored")
	}
}

func TestSourceRateLimit(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), func(c *server.Config) { c.HandshakesPerMinute = 2 })
	_, tok := env.AddUser(t, "gina@example.org")
	_, kp := env.Client(t, tok)
	c := tctx(t)
	var errs int
	for i := 0; i < 4; i++ {
		cl := env.ClientWithKey(t, kp, tok)
		if _, err := cl.WhoAmI(c); err != nil {
			errs++
		}
		cl.CloseIdleConnections()
	}
	if errs < 2 {
		t.Fatalf("only %d of 4 connections refused with a limit of 2/min", errs)
	}
	body := adminGet(t, env, "/metrics")
	if !strings.Contains(body, "smessenger_connections_rate_limited_total 2") {
		t.Fatal("refused connections not counted")
	}
}

func adminGet(t *testing.T, env *servertest.Env, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + env.Node.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func TestAdminEndpoint(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	u := env.NewUser(t, "hal@example.org")
	if _, err := u.Client.WhoAmI(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := adminGet(t, env, "/healthz"); got != "ok\n" {
		t.Fatalf("healthz %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + env.Node.AdminAddr().String() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := adminGet(t, env, "/metrics")
	for _, want := range []string{
		`smessenger_api_calls_total{code="ok",route="whoami"} 1`,
		`smessenger_api_call_seconds_count{route="set_key"} 1`,
		"smessenger_connected_devices 1",
		"smessenger_events_pushed_total",
		"smessenger_store_errors_total 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestAdminMustBeLoopback(t *testing.T) {
	cfg := servertest.InitDir(t, "127.0.0.1")
	cfg.AdminListen = "0.0.0.0:0"
	if _, err := server.New(cfg, servertest.OpenBolt(t), logging.New(io.Discard, slog.LevelInfo)); !errors.Is(err, server.ErrConfig) {
		t.Fatalf("public admin address: %v", err)
	}
}
