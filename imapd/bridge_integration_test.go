package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/pgp"
)

// apiServer adapts *api.Client to bridge.Server, as cmd wires it.
type apiServer struct{ *api.Client }

func (s apiServer) WhoAmI(ctx context.Context) (bridge.WhoAmI, error) {
	w, err := s.Client.WhoAmI(ctx)
	return bridge.WhoAmI(w), err
}

func (s apiServer) Deliver(ctx context.Context, ds []bridge.Delivery) error {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery(d)
	}
	return s.Client.Deliver(ctx, out)
}

func newAPIServer(addr string, cfg channel.ClientConfig) bridge.Server {
	cfg.HandshakeTimeout = 10 * time.Second
	return apiServer{api.NewClient(addr, cfg)}
}

// realBridge is a server node, one account's running bridge and an imapd
// serving it on 127.0.0.1.
type realBridge struct {
	t        testing.TB
	env      *servertest.Env
	acct     *bridge.Account
	user     string // the account's address, also the IMAP user name
	pass     string // the bridge password
	dataDir  string // the bridge's data folder
	imapAddr string
	srv      *Server
	logs     *syncBuffer
}

// startRealBridge starts a server node with an account, calls before (to
// deliver mail that the first sync must fetch), logs the bridge in, runs it
// until synced and serves it over IMAP (with STARTTLS when tlsCfg is set).
func startRealBridge(t testing.TB, before func(env *servertest.Env, user string), tlsCfg *tls.Config) *realBridge {
	t.Helper()
	return startBridgeWith(t, before, tlsCfg, realBridgeOptions{})
}

// realBridgeOptions varies startBridgeWith.
type realBridgeOptions struct {
	// wrap, if set, wraps the bridge's server client (to slow it down).
	wrap func(bridge.Server) bridge.Server
	// noWait serves IMAP at once instead of after the first sync.
	noWait bool
	// server, if set, adjusts the server node's configuration.
	server func(*server.Config)
}

// startBridgeWith is startRealBridge with options.
func startBridgeWith(t testing.TB, before func(env *servertest.Env, user string), tlsCfg *tls.Config, o realBridgeOptions) *realBridge {
	t.Helper()
	env := servertest.Start(t, servertest.OpenBolt(t), o.server)
	user := "carol@" + servertest.Domain
	_, tok := env.AddUser(t, user)
	dir := t.TempDir()
	pass := []byte("imapd test passphrase")
	res, err := bridge.Login(context.Background(), bridge.LoginConfig{DataDir: dir, Address: user, Name: "Carol",
		ServerAddr: env.Node.APIAddr().String(), ServerKey: channel.Fingerprint(env.ServerKey), Token: tok,
		Passphrase: pass, NewServer: newAPIServer})
	if err != nil {
		t.Fatalf("bridge login: %v", err)
	}
	if before != nil {
		before(env, user)
	}
	newServer := newAPIServer
	if o.wrap != nil {
		newServer = func(addr string, cfg channel.ClientConfig) bridge.Server { return o.wrap(newAPIServer(addr, cfg)) }
	}
	logs := &syncBuffer{}
	acct, err := bridge.Open(context.Background(), bridge.OpenConfig{DataDir: dir, Passphrase: pass,
		NewServer: newServer, Log: logging.New(logs, slog.LevelInfo)})
	if err != nil {
		t.Fatalf("bridge open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- acct.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("bridge Run did not return")
		}
		acct.Close()
	})
	if !o.noWait {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := acct.WaitSynced(wctx); err != nil {
			t.Fatalf("WaitSynced: %v\n%s", err, logs.String())
		}
	}
	srv := New(Config{Users: AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
		return acct, u == user && p == res.BridgePassword
	}), TLS: tlsCfg, Logger: logging.New(logs, slog.LevelDebug)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		if srv.Panics() != 0 {
			t.Errorf("recovered panics:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "127.0.0.1") {
			t.Errorf("log holds an IP address:\n%s", logs.String())
		}
	})
	return &realBridge{t: t, env: env, acct: acct, user: user, pass: res.BridgePassword, dataDir: dir,
		imapAddr: l.Addr().String(), srv: srv, logs: logs}
}

// dial connects a logged-in client; unilateral data goes to h (may be nil).
func (rb *realBridge) dial(h *imapclient.UnilateralDataHandler) *imapclient.Client {
	rb.t.Helper()
	c, err := imapclient.DialInsecure(rb.imapAddr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		rb.t.Fatal(err)
	}
	rb.t.Cleanup(func() { c.Close() })
	if err := c.Login(rb.user, rb.pass).Wait(); err != nil {
		rb.t.Fatal(err)
	}
	return c
}

// deliverSealed plays another user's bridge: it seals each message to the
// recipient's published key and delivers them over the API, 100 per call.
func deliverSealed(t testing.TB, env *servertest.Env, to string, raws [][]byte) {
	t.Helper()
	from := env.NewUser(t, "alice@"+servertest.Domain)
	kb, _, err := from.Client.LookupKey(context.Background(), to)
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	key, err := pgp.ReadKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	// Sealing is the slow part: on all cores.
	all := make([]api.Delivery, len(raws))
	errs := make([]error, len(raws))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				hb, bb, _, err := pgp.SealMessage(raws[i], []*pgp.Key{key}, pgp.SealOptions{Signer: from.Key})
				all[i], errs[i] = api.Delivery{Recipient: to, Size: int64(len(raws[i])), HeaderBlob: hb, BodyBlob: bb}, err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for len(all) > 0 {
		n := min(len(all), api.MaxRecipients)
		if err := from.Client.Deliver(context.Background(), all[:n]); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		all = all[n:]
	}
}

// TestOverRealBridge drives imapd over a real bridge account synced from a
// real server node: APPEND is sealed and stored on the server, and the
// update comes back through the server's event stream to an idling client.
func TestOverRealBridge(t *testing.T) {
	rb := startRealBridge(t, nil, nil)
	dial := rb.dial
	c := dial(nil)
	list, err := c.List("", "*", nil).Collect()
	if err != nil || len(list) < 6 {
		t.Fatalf("LIST: %v %d", err, len(list))
	}
	raw := []byte(strings.ReplaceAll(multipartMsg, "\n", "\r\n"))
	app := c.Append("Drafts", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
	app.Write(raw)
	app.Close()
	ad, err := app.Wait()
	if err != nil || ad.UID == 0 {
		t.Fatalf("APPEND: %v %+v", err, ad)
	}

	exists := make(chan uint32, 8)
	idler := dial(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := idler.Select("Drafts", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Drafts", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(ad.UID), &imap.FetchOptions{Envelope: true, Flags: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %d", err, len(msgs))
	}
	if msgs[0].Envelope.Subject != "Quarterly résumé" || !slices.Contains(msgs[0].Flags, imap.FlagDraft) {
		t.Errorf("fetched %+v", msgs[0].Envelope)
	}
	if body := msgs[0].FindBodySection(&imap.FetchItemBodySection{}); string(body) != string(raw) {
		t.Errorf("BODY[] differs from the appended message:\n%q", body)
	}
	// A second APPEND from the other connection reaches the idler through
	// the server's event stream.
	app = c.Append("Drafts", int64(len(raw)), nil)
	app.Write(raw)
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("idling client not told of the new message")
	}
	idle.Close()
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{"SECRETWORD"}}, nil).Wait()
	if err != nil || len(data.AllUIDs()) != 2 {
		t.Errorf("SEARCH BODY over the bridge: %v %v", data, err)
	}
}
