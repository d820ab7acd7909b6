package imapd

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server/servertest"
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

// TestOverRealBridge drives imapd over a real bridge account synced from a
// real server node: APPEND is sealed and stored on the server, and the
// update comes back through the server's event stream to an idling client.
func TestOverRealBridge(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	addr := "carol@" + servertest.Domain
	_, tok := env.AddUser(t, addr)
	dir := t.TempDir()
	pass := []byte("imapd test passphrase")
	res, err := bridge.Login(context.Background(), bridge.LoginConfig{DataDir: dir, Address: addr, Name: "Carol",
		ServerAddr: env.Node.APIAddr().String(), ServerKey: channel.Fingerprint(env.ServerKey), Token: tok,
		Passphrase: pass, NewServer: newAPIServer})
	if err != nil {
		t.Fatalf("bridge login: %v", err)
	}
	logs := &syncBuffer{}
	acct, err := bridge.Open(context.Background(), bridge.OpenConfig{DataDir: dir, Passphrase: pass,
		NewServer: newAPIServer, Log: logging.New(logs, slog.LevelInfo)})
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
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := acct.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v\n%s", err, logs.String())
	}

	srv := New(Config{Users: AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
		return acct, u == addr && p == res.BridgePassword
	}), Logger: logging.New(logs, slog.LevelDebug)})
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
	})
	dial := func(h *imapclient.UnilateralDataHandler) *imapclient.Client {
		c, err := imapclient.DialInsecure(l.Addr().String(), &imapclient.Options{UnilateralDataHandler: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(addr, res.BridgePassword).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
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
