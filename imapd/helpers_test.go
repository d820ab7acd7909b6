package imapd

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/logging"
)

const (
	testUser = "alice@example.test"
	testPass = "bridge-password-1"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testEnv struct {
	t    testing.TB
	view *memView
	srv  *Server
	addr string
	logs *syncBuffer
}

// newTestEnv starts a server on 127.0.0.1:0 over a fresh memView. At the end
// it fails the test if a panic was recovered or a log line holds an address.
func newTestEnv(t testing.TB, tlsCfg *tls.Config) *testEnv {
	t.Helper()
	view := newMemView()
	return newTestEnvView(t, view, tlsCfg)
}

func newTestEnvView(t testing.TB, view *memView, tlsCfg *tls.Config) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	srv := New(Config{
		Users: AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
			return view, u == testUser && p == testPass
		}),
		TLS:    tlsCfg,
		Logger: logging.New(logs, slog.LevelDebug),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	env := &testEnv{t: t, view: view, srv: srv, addr: l.Addr().String(), logs: logs}
	t.Cleanup(func() {
		srv.Close()
		if n := srv.Panics(); n != 0 {
			t.Errorf("server recovered %d panic(s); log:\n%s", n, logs.String())
		}
		if strings.Contains(logs.String(), "127.0.0.1") {
			t.Errorf("log holds an IP address:\n%s", logs.String())
		}
	})
	return env
}

// client dials and logs in; unilateral data goes to h (may be nil).
func (e *testEnv) client(h *imapclient.UnilateralDataHandler) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return c
}

// eventually polls cond for up to 3 s; the bound keeps a broken build from
// hanging the suite.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := execLookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// Fixtures, with LF line ends; deliver turns them into CRLF.
const (
	simpleMsg = `From: Bob Example <bob@example.test>
To: Alice <alice@example.test>
Subject: Lunch on Friday
Date: Mon, 02 Jan 2006 15:04:05 +0000
Message-ID: <lunch-1@example.test>

Shall we meet at noon? The Usual place.
`
	multipartMsg = `From: Carol <carol@example.test>
To: alice@example.test
Cc: Dave <dave@example.test>
Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=
Date: Tue, 03 Jan 2006 10:00:00 +0100
Message-ID: <q-2@example.test>
In-Reply-To: <lunch-1@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

preamble
--XYZ
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

The numbers are in the attachment. Caf=C3=A9 secretword.
--XYZ
Content-Type: application/pdf; name="q.pdf"
Content-Disposition: attachment; filename="q.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K
--XYZ
Content-Type: message/rfc822

From: Eve <eve@example.test>
Subject: Inner message

Inner body text.
--XYZ--
`
)
