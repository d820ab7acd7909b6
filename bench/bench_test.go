package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// TestMain lets the test binary play the helper processes too: startChild
// re-executes os.Executable(), which under `go test` is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "node" || os.Args[1] == "bridge") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needTool skips (or, in CI, fails) when an external tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required", name)
		}
		t.Skipf("%s not installed", name)
	}
}

func sharedDir(t *testing.T) string {
	t.Helper()
	d, _ := filepath.Abs("../../shared/bench")
	if _, err := os.Stat(filepath.Join(d, "gen_corpus.py")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared bench scripts not found at %s", d)
		}
		t.Skipf("shared bench scripts not found at %s", d)
	}
	return d
}

// TestPipelineSmall runs the bench's own side on a 20-message corpus: a
// real node process with its MX, real logins, the corpus sealed and
// delivered, a real bridge process that syncs it and serves IMAP and
// submission, idle event streams against a second node, and the crypto
// figures. The peers (Dovecot, smtp-sink) are not started here.
func TestPipelineSmall(t *testing.T) {
	needTool(t, "python3")
	o := options{shared: sharedDir(t), work: t.TempDir(), n: 20, runs: 1, mxMessages: 5, subMessages: 6, idle: 25}
	r, err := newRun(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cleanup)
	if r.info, err = ensureCorpus(o.shared, r.corpus, o.n); err != nil {
		t.Fatal(err)
	}
	if err := r.startNode(); err != nil {
		t.Fatalf("startNode: %v", err)
	}
	sendMX(t, r.nodeInfo.MX, 3)

	n, err := r.loadAliceCorpus(t.Context())
	if err != nil || n != o.n {
		t.Fatalf("loadAliceCorpus = %d, %v", n, err)
	}
	br, err := startChild("bridge", filepath.Join(r.logDir, "bridge.log"), []string{passEnv + "=" + string(benchPass)},
		2*time.Minute, &r.bridgeInfo, "bridge", "-dir", r.aliceDir)
	if err != nil {
		t.Fatalf("bridge child: %v", err)
	}
	defer br.stop()
	if r.bridgeInfo.Messages != o.n || r.bridgeInfo.SyncSecs <= 0 || r.bridgeInfo.OpenSecs > r.bridgeInfo.SyncSecs {
		t.Fatalf("bridge ready = %+v, want %d messages and a sync time", r.bridgeInfo, o.n)
	}
	checkIMAP(t, r.bridgeInfo.IMAP, alice, r.alicePass, o.n)
	res := submitLoad(r.bridgeInfo.SMTP, alice, r.alicePass, bob, 3, o.subMessages, 10240, time.Minute)
	if res.err != nil || res.sent != int64(o.subMessages) || res.rate() <= 0 {
		t.Fatalf("submitLoad = %+v", res)
	}
	if bad := submitLoad(r.bridgeInfo.SMTP, alice, "wrong password", bob, 1, 1, 100, 10*time.Second); bad.err == nil || bad.sent != 0 {
		t.Fatalf("submission with a wrong password: %+v", bad)
	}
	if hwm, err := procStatusKB(br.pid(), "VmHWM"); err != nil || hwm <= 0 {
		t.Fatalf("bridge VmHWM = %d, %v", hwm, err)
	}
	if err := br.stop(); err != nil {
		t.Fatalf("bridge child stop: %v", err)
	}
	checkCLIBridge(t, r)

	r.idleStreams()
	if r.idleErr != nil || r.idleOpen != o.idle || r.idleRSS <= 0 {
		t.Fatalf("idle streams: open %d of %d, rss %d, err %v", r.idleOpen, o.idle, r.idleRSS, r.idleErr)
	}

	if r.crypto, r.cryptoErr = measureCrypto(1, time.Millisecond); r.cryptoErr != nil {
		t.Fatal(r.cryptoErr)
	}
	if len(r.crypto) != 2*2*len(cryptoSizes) {
		t.Fatalf("crypto figures: %v", r.crypto)
	}
	var b bytes.Buffer
	writeTable(&b, r.rows())
	for _, want := range []string{"cold first sync of 20 msgs", "server RSS with 25 idle device event streams", "seal 4 KiB, 1 core, v1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	md := filepath.Join(t.TempDir(), "B.md")
	if err := writeReport(md, machineNow(), r.rows(), r.notes, []string{"bench", "-n", "20"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(md); !bytes.Contains(data, []byte("load average at start")) || !bytes.Contains(data, []byte("| figure |")) {
		t.Fatalf("report lacks the machine or the table:\n%s", data)
	}
}

// checkCLIBridge runs the real `smessenger bridge run` step on the small
// corpus: its cold sync must be timed, its RSS sampled and the IMAP client
// script must have fetched the corpus through it.
func checkCLIBridge(t *testing.T, r *run) {
	t.Helper()
	r.cliBridge()
	c := r.cli
	if errors.Is(c.err, errBuild) {
		// The command line is another package's work in progress; its
		// build failing is reported in the table, not here.
		t.Logf("CLI bridge not measured: %v", c.err)
		return
	}
	if c.err != nil || c.syncSecs <= 0 || c.syncHWM <= 0 || c.hwm < c.syncHWM {
		t.Fatalf("CLI bridge: %+v", c)
	}
	if c.imap["py_search_text_hits"] != float64(r.info.TokenMessages) || c.imap["py_bodies_s"] <= 0 {
		t.Fatalf("IMAP script through the CLI bridge: %v", c.imap)
	}
}

// sendMX delivers n small messages to bob through the node's MX.
func sendMX(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		msg := fmt.Sprintf("From: <x@sender.test>\r\nTo: <%s>\r\nSubject: mx %d\r\nDate: Sat, 01 Jun 2024 12:00:00 +0000\r\n"+
			"Message-ID: <mx%d@sender.test>\r\n\r\nhello\r\n", bob, i, i)
		if err := c.SendMail("x@sender.test", []string{bob}, strings.NewReader(msg)); err != nil {
			t.Fatalf("MX send %d: %v", i, err)
		}
	}
	if err := c.SendMail("x@sender.test", []string{"nobody@elsewhere.test"}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Fatal("the MX accepted mail for a foreign domain")
	}
}

// checkIMAP logs in to the bridge's imapd and checks INBOX's count.
func checkIMAP(t *testing.T, addr, user, pass string, want int) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != want {
		t.Fatalf("INBOX has %d messages, want %d", sel.NumMessages, want)
	}
	_ = c.Logout().Wait()
}
