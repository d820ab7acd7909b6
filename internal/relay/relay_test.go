package relay

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/pgp"
)

// remote is a go-smtp server standing in for another domain's MX.
type remote struct {
	mu       sync.Mutex
	got      map[string][][]byte // recipient -> messages
	tempLeft map[string]int      // recipient -> 4xx replies still to give
	reject   map[string]bool     // recipient -> 550
	addr     string
}

func (r *remote) NewSession(*smtp.Conn) (smtp.Session, error) { return &remoteSess{r: r}, nil }

type remoteSess struct {
	r     *remote
	rcpts []string
}

func (s *remoteSess) Reset()                               { s.rcpts = nil }
func (s *remoteSess) Logout() error                        { return nil }
func (s *remoteSess) Mail(string, *smtp.MailOptions) error { return nil }
func (s *remoteSess) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.reject[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	if s.r.tempLeft[to] > 0 {
		s.r.tempLeft[to]--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *remoteSess) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, a := range s.rcpts {
		s.r.got[a] = append(s.r.got[a], b)
	}
	return nil
}

func (r *remote) count(a string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[a])
}

func startRemote(t *testing.T) *remote {
	r := &remote{got: map[string][][]byte{}, tempLeft: map[string]int{}, reject: map[string]bool{}}
	s := smtp.NewServer(r)
	s.Domain = "mx.remote.test"
	s.ErrorLog = nopLog{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return r
}

type nopLog struct{}

func (nopLog) Printf(string, ...interface{}) {}
func (nopLog) Println(...interface{})        {}

type relayEnv struct {
	st     store.Store
	r      *Relay
	acct   store.AccountID
	key    *pgp.Key
	remote *remote
	now    time.Time
	mu     sync.Mutex
	reg    *prometheus.Registry
}

func (e *relayEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *relayEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

var (
	keyOnce sync.Once
	senderK *pgp.Key
	dkimPEM []byte
	dkimTXT string
)

func setupRelay(t *testing.T) *relayEnv {
	keyOnce.Do(func() {
		var err error
		if senderK, err = pgp.GenerateKey("Sender", "sender@example.org"); err != nil {
			t.Fatal(err)
		}
		if dkimPEM, dkimTXT, err = GenerateDKIM("example.org", "s1"); err != nil {
			t.Fatal(err)
		}
	})
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	a, err := st.CreateAccount(ctx, "sender@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPublicKey(ctx, a.ID, senderK.PublicBinary()); err != nil {
		t.Fatal(err)
	}
	rem := startRemote(t)
	signer, err := ParseDKIMKey(dkimPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The clock starts ahead of real time: the store stamps Enqueue and
	// RetryNow with the real time, which must be due at once, while the
	// backoffs are counted on the fake clock.
	e := &relayEnv{st: st, acct: a.ID, key: senderK, remote: rem, now: time.Now().Add(time.Hour).Truncate(time.Second), reg: prometheus.NewRegistry()}
	e.r = New(Config{
		Hostname: "mx.example.org", Routes: map[string]string{"remote.test": rem.addr},
		DKIM: map[string]cryptoSigner{"example.org": signer}, DKIMSelector: "s1",
		Backoff: Backoff{Base: time.Minute, Max: time.Hour}, Now: e.clock, Metrics: e.reg,
	}, st, nil)
	return e
}

func (e *relayEnv) enqueue(t *testing.T, rcpts ...string) string {
	var rs []store.QueueRecipient
	for _, a := range rcpts {
		rs = append(rs, store.QueueRecipient{Address: a})
	}
	payload := "From: sender@example.org\r\nTo: x@remote.test\r\nSubject: out\r\nMessage-ID: <o@example.org>\r\n\r\nhello outside\r\n"
	id, err := e.st.Enqueue(context.Background(), store.QueueEntry{
		Account: e.acct, From: "sender@example.org", Recipients: rs, Payload: []byte(payload),
		Created: e.clock(), Expires: e.clock().Add(5 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *relayEnv) step(t *testing.T) error {
	return e.r.ProcessOne(context.Background(), "node1/w0")
}

func TestRelayDeliversWithDKIM(t *testing.T) {
	e := setupRelay(t)
	e.enqueue(t, "x@remote.test", "y@remote.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	if e.remote.count("x@remote.test") != 1 || e.remote.count("y@remote.test") != 1 {
		t.Fatal("not delivered once to each recipient")
	}
	msg := e.remote.got["x@remote.test"][0]
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name == "s1._domainkey.example.org" {
				return []string{dkimTXT}, nil
			}
			return nil, errors.New("nx")
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "example.org" {
		t.Fatalf("DKIM does not verify: %v %+v", err, verifs)
	}
	if q, _ := e.st.ListQueue(context.Background(), false); len(q) != 0 {
		t.Fatalf("entry not completed: %+v", q)
	}
	if err := e.step(t); !errors.Is(err, store.ErrQueueEmpty) {
		t.Fatalf("want empty queue, got %v", err)
	}
	if v := gathered(t, e.reg, "smessenger_relay_deliveries_total", "delivered"); v != 2 {
		t.Fatalf("delivered counter %v", v)
	}
}

func TestRelayRetries4xxThenDelivers(t *testing.T) {
	e := setupRelay(t)
	e.remote.tempLeft["x@remote.test"] = 2
	e.enqueue(t, "x@remote.test", "y@remote.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	// y was done on the first attempt and must not be sent again.
	if e.remote.count("y@remote.test") != 1 || e.remote.count("x@remote.test") != 0 {
		t.Fatal("first attempt wrong")
	}
	if err := e.step(t); !errors.Is(err, store.ErrQueueEmpty) {
		t.Fatalf("retry due before backoff: %v", err)
	}
	e.advance(time.Minute)
	_ = e.step(t)
	e.advance(2 * time.Minute)
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	if e.remote.count("x@remote.test") != 1 || e.remote.count("y@remote.test") != 1 {
		t.Fatalf("after retries: x=%d y=%d", e.remote.count("x@remote.test"), e.remote.count("y@remote.test"))
	}
}

func TestRelay5xxBouncesDSNToSender(t *testing.T) {
	e := setupRelay(t)
	e.remote.reject["bad@remote.test"] = true
	e.enqueue(t, "bad@remote.test", "x@remote.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	if e.remote.count("x@remote.test") != 1 {
		t.Fatal("good recipient not delivered")
	}
	dsn := readInbox(t, e)
	if len(dsn) != 1 {
		t.Fatalf("want 1 DSN, got %d", len(dsn))
	}
	h, err := textproto.ReadHeader(bufioFrom(dsn[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "multipart/report") || !strings.Contains(h.Get("Content-Type"), "delivery-status") {
		t.Fatalf("not an RFC 3464 report: %q", h.Get("Content-Type"))
	}
	body := string(dsn[0])
	for _, want := range []string{"Final-Recipient: rfc822; bad@remote.test", "Status: 5.1.1", "Action: failed", "Subject: out"} {
		if !strings.Contains(body, want) {
			t.Fatalf("DSN lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "x@remote.test;") {
		t.Fatal("delivered recipient listed as failed")
	}
	// The header blob is the sealed summary the sender's message list shows.
	metas, err := e.st.ListMessages(context.Background(), e.acct, "INBOX", 1)
	if err != nil || len(metas) != 1 {
		t.Fatalf("inbox: %v", err)
	}
	hbs, err := e.st.HeaderBlobs(context.Background(), e.acct, []store.MessageID{metas[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pgp.OpenHeaderBlob(hbs[0], e.key)
	if err != nil || sum.Envelope.Subject != "Undelivered Mail Returned to Sender" || sum.Encrypted {
		t.Fatalf("DSN header blob: %v %+v", err, sum)
	}
}

func TestRelayExpiryBounces(t *testing.T) {
	e := setupRelay(t)
	e.remote.tempLeft["x@remote.test"] = 1000
	e.enqueue(t, "x@remote.test")
	_ = e.step(t)
	e.advance(6 * 24 * time.Hour)
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	dsn := readInbox(t, e)
	if len(dsn) != 1 || !strings.Contains(string(dsn[0]), "Status: 4.4.7") {
		t.Fatalf("want one expiry DSN, got %d", len(dsn))
	}
}

func TestRelayRequireTLSRefusesPlaintext(t *testing.T) {
	e := setupRelay(t)
	e.r.requireTLS["remote.test"] = true // the test remote offers no STARTTLS
	e.enqueue(t, "x@remote.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	if e.remote.count("x@remote.test") != 0 {
		t.Fatal("delivered in plaintext to a TLS-required domain")
	}
	q, _ := e.st.ListQueue(context.Background(), false)
	if len(q) != 1 || q[0].Attempts != 1 {
		t.Fatalf("want deferred entry, got %+v", q)
	}
}

func TestQueueOperatorView(t *testing.T) {
	e := setupRelay(t)
	ctx := context.Background()
	e.remote.tempLeft["x@remote.test"] = 1
	id := e.enqueue(t, "x@remote.test")
	_ = e.step(t)
	q, err := ListQueue(ctx, e.st, false)
	if err != nil || len(q) != 1 || q[0].ID != id {
		t.Fatalf("list: %v %+v", err, q)
	}
	if err := Retry(ctx, e.st, id); err != nil {
		t.Fatal(err)
	}
	if err := e.step(t); err != nil { // due now despite backoff
		t.Fatal(err)
	}
	if e.remote.count("x@remote.test") != 1 {
		t.Fatal("retry did not deliver")
	}
	id2 := e.enqueue(t, "y@remote.test")
	if err := Drop(ctx, e.st, id2); err != nil {
		t.Fatal(err)
	}
	if err := Drop(ctx, e.st, id2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second drop: %v", err)
	}
	e.r.RefreshMetrics(ctx)
	if v := gathered(t, e.reg, "smessenger_relay_queue_entries", ""); v != 0 {
		t.Fatalf("queue gauge %v", v)
	}
}

func TestGenerateDKIM(t *testing.T) {
	if _, _, err := GenerateDKIM("", "s"); err == nil {
		t.Fatal("empty domain accepted")
	}
	p := strings.TrimPrefix(dkimTXT, "v=DKIM1; k=rsa; p=")
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		t.Fatal(err)
	}
}

func readInbox(t *testing.T, e *relayEnv) [][]byte {
	ctx := context.Background()
	metas, err := e.st.ListMessages(ctx, e.acct, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range metas {
		bb, err := e.st.BodyBlob(ctx, e.acct, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		op, err := pgp.Open(bb, e.key, pgp.OpenOptions{})
		if err != nil {
			t.Fatalf("DSN does not decrypt with the sender's key: %v", err)
		}
		out = append(out, op.Plaintext)
	}
	return out
}

// gathered reads one series from the registry, as a scrape would.
func gathered(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if result != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
