package smtpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
)

// subAPI adapts *api.Client to bridge.Server (the API has its own WhoAmI
// and Delivery types with the same fields).
type subAPI struct{ *api.Client }

func (s subAPI) WhoAmI(ctx context.Context) (bridge.WhoAmI, error) {
	w, err := s.Client.WhoAmI(ctx)
	return bridge.WhoAmI(w), err
}

func (s subAPI) Deliver(ctx context.Context, ds []bridge.Delivery) error {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery(d)
	}
	return s.Client.Deliver(ctx, out)
}

func (s subAPI) DeliverWithCopy(ctx context.Context, ds []bridge.Delivery, mailbox string, cp store.NewMessage) (store.MessageMeta, error, error) {
	return s.Client.DeliverWithCopy(ctx, ds, mailbox, cp)
}

func subNewServer(addr string, cfg channel.ClientConfig) bridge.Server {
	cfg.HandshakeTimeout = 10 * time.Second
	return subAPI{api.NewClient(addr, cfg)}
}

var subPass = []byte("submission test passphrase")

// subBridge is one running bridge account with its router.
type subBridge struct {
	addr     string
	dir      string
	password string // the mail client's password
	acct     *bridge.Account
	contacts *bridge.Contacts
	router   *bridge.Router
}

// subStartBridge creates addr on the server, logs a bridge in and runs it.
func subStartBridge(t testing.TB, env *servertest.Env, addr, policy string) *subBridge {
	t.Helper()
	_, tok := env.AddUser(t, addr)
	dir := t.TempDir()
	ctx := context.Background()
	res, err := bridge.Login(ctx, bridge.LoginConfig{DataDir: dir, Address: addr, Name: "Test",
		ServerAddr: env.Node.APIAddr().String(), ServerKey: channel.Fingerprint(env.ServerKey),
		Token: tok, Passphrase: subPass, NewServer: subNewServer})
	if err != nil {
		t.Fatalf("Login %s: %v", addr, err)
	}
	a, err := bridge.Open(ctx, bridge.OpenConfig{DataDir: dir, Passphrase: subPass, NewServer: subNewServer,
		PrefetchWorkers: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("bridge Run did not return")
		}
		a.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := a.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
	c, err := bridge.OpenContacts(bridge.ContactsPath(dir), a.Key())
	if err != nil {
		t.Fatal(err)
	}
	r, err := bridge.NewRouter(bridge.RouterConfig{Account: a, Policy: policy, Contacts: c})
	if err != nil {
		t.Fatal(err)
	}
	return &subBridge{addr: addr, dir: dir, password: res.BridgePassword, acct: a, contacts: c, router: r}
}

// subEnv is a server node, alice's and bob's bridges, and a submission
// server for alice (policy refuse).
type subEnv struct {
	env        *servertest.Env
	alice, bob *subBridge
	addr       string
	storePath  string // the server's bbolt file
}

const (
	subAlice = "alice@" + servertest.Domain
	subBob   = "bob@" + servertest.Domain
)

func subNoLimits(c *server.Config) {
	c.Limits.CallsPerSecond = -1
	c.HandshakesPerMinute = 100000
}

func subStart(t testing.TB) *subEnv {
	t.Helper()
	st, path := servertest.OpenBoltPath(t)
	env := servertest.Start(t, st, subNoLimits)
	e := &subEnv{env: env, storePath: path}
	e.alice = subStartBridge(t, env, subAlice, bridge.PolicyRefuse)
	e.bob = subStartBridge(t, env, subBob, bridge.PolicyRefuse)
	e.addr = subServe(t, SubmissionConfig{Auth: subAuthFor(e.alice, e.bob)})
	return e
}

// subAuthFor checks the mail client's password against the bridges.
func subAuthFor(bs ...*subBridge) func(user, pass string) (Sender, bool) {
	return func(user, pass string) (Sender, bool) {
		for _, b := range bs {
			if b.acct.CheckPassword(user, pass) {
				return b.router, true
			}
		}
		return nil, false
	}
}

// subServe runs a submission server on loopback and returns its address.
func subServe(t testing.TB, cfg SubmissionConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSubmission(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// subClient dials and authenticates with PLAIN.
func subClient(t testing.TB, addr, user, pass string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	return c
}

// subSend runs one transaction and returns the first error.
func subSend(c *smtp.Client, from string, rcpts []string, msg []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			c.Reset()
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

// subCode returns the SMTP reply code of err, or 0.
func subCode(err error) int {
	if se, ok := err.(*smtp.SMTPError); ok {
		return se.Code
	}
	return 0
}

// subMessage builds a multipart message with a random binary attachment
// of n bytes (base64 in 76-column lines, as clients send it).
func subMessage(from, to, id string, n int) []byte {
	att := make([]byte, n)
	rand.Read(att)
	enc := base64.StdEncoding.EncodeToString(att)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Alice <%s>\r\nTo: %s\r\nSubject: test %s\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n"+
		"Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHällo %s\r\n"+
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", from, to, id, id, id)
	for len(enc) > 0 {
		k := min(76, len(enc))
		b.WriteString(enc[:k])
		b.WriteString("\r\n")
		enc = enc[k:]
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// subWaitBody waits until mailbox holds want messages and returns the
// body of the last one.
func subWaitBody(t testing.TB, a *bridge.Account, mailbox string, want int) []byte {
	t.Helper()
	ctx := context.Background()
	end := time.Now().Add(20 * time.Second)
	for {
		ms, err := a.Messages(ctx, mailbox)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == want {
			body, err := a.Body(ctx, mailbox, ms[len(ms)-1].UID)
			if err != nil {
				t.Fatal(err)
			}
			return body
		}
		if len(ms) > want || time.Now().After(end) {
			t.Fatalf("%s holds %d messages, want %d", mailbox, len(ms), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subQueue returns the live outbound entries with payloads.
func subQueue(t testing.TB, st store.Store) []store.QueueEntry {
	t.Helper()
	ctx := context.Background()
	list, err := st.ListQueue(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.QueueEntry
	for _, e := range list {
		full, err := st.GetQueueEntry(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, full)
	}
	return out
}

// subNeedTool skips (or fails under CI) when an external binary is missing.
func subNeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// subArmored extracts the armored OpenPGP message from a PGP/MIME payload.
func subArmored(t testing.TB, payload []byte) []byte {
	t.Helper()
	s := string(payload)
	i := strings.Index(s, "-----BEGIN PGP MESSAGE-----")
	j := strings.Index(s, "-----END PGP MESSAGE-----")
	if i < 0 || j < i {
		t.Fatalf("no armored message in payload:\n%s", payload)
	}
	return []byte(s[i:j+len("-----END PGP MESSAGE-----")] + "\n")
}
