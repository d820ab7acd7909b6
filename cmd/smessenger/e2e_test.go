package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smessenger/internal/demo"
	"smessenger/pgp"
)

// TestDemoEndToEnd builds the binary, runs `smessenger demo` as a real
// process and drives it with real clients: swaks through alice's bridge
// (STARTTLS and plaintext AUTH) and through the MX, Python imaplib (FETCH
// and IDLE) and mbsync on bob's bridge, a gpg-made outside key served by the
// outside world's WKD and gpg decrypting what the sink received. It stops
// the demo with SIGINT, starts it again on the same folder, finds the mail
// still there, and finally scans the data folder for the plaintext it sent.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the binary and runs the demo")
	}
	e := &e2e{swaks: needTool(t, "swaks"), py: needTool(t, "python3")}
	mbsync, gpg := needTool(t, "mbsync"), needTool(t, "gpg")
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "demo")
	logFile := filepath.Join(t.TempDir(), "demo.log")
	var err error
	if e.script, err = filepath.Abs(filepath.Join("testdata", "e2e_imap.py")); err != nil {
		t.Fatal(err)
	}
	e.start(t, bin, data, logFile)
	m1, m2, m3, m4 := marker(t, "internal"), marker(t, "inbound"), marker(t, "external"), marker(t, "idle")

	t.Run("alice to bob through her bridge", func(t *testing.T) {
		e.submit(t, e.bob.Address, "subject "+m1, "body "+m1, "--tls")
		out := e.waitBob(t, m1)
		if !strings.Contains(out, "From: alice@example.test") && !strings.Contains(out, "<alice@example.test>") {
			t.Errorf("bob's copy lacks alice as sender:\n%s", out)
		}
	})
	t.Run("outside sender to bob through the MX", func(t *testing.T) {
		e.send(t, "--server", fmt.Sprintf("%s:%d", e.p.settings.MX.Host, e.p.settings.MX.Port),
			"--from", "someone@outside.test", "--to", e.bob.Address, "--header", "Subject: from outside", "--body", "body "+m2)
		e.waitBob(t, m1, m2)
	})
	t.Run("mbsync syncs bob's INBOX", func(t *testing.T) {
		testMbsync(t, mbsync, e.bob.IMAPPort, e.bob.Username, e.bob.Password, e.bob.Certificate, m1, m2)
	})
	t.Run("alice to an outside address with a WKD key", func(t *testing.T) { e.testExternal(t, gpg, m3) })
	t.Run("a key-less outside recipient is refused at RCPT", func(t *testing.T) { e.testRefused(t, m3) })
	t.Run("IDLE on bob's INBOX sees alice's next message", func(t *testing.T) {
		testIdle(t, e.py, e.script, e.bob.IMAPHost, e.bob.IMAPPort, e.bob.Username, e.bob.Password, func() {
			e.submit(t, e.bob.Address, "idle test", "body "+m4)
		}, m4)
	})
	if t.Failed() {
		return
	}

	e.p.stop(t)
	e.start(t, bin, data, logFile)
	if e.bob.Password == "" {
		t.Fatal("rerun lost bob's bridge password")
	}
	e.waitBob(t, m1, m2, m4)
	e.p.stop(t)
	checkNoPlaintext(t, data, logFile, []string{m1, m2, m3, m4})
}

// e2e holds the running demo and the client tools.
type e2e struct {
	p                 *demoProc
	swaks, py, script string
	alice, bob        demo.UserSetting
}

func (e *e2e) start(t *testing.T, bin, data, logFile string) {
	t.Helper()
	e.p = startDemo(t, bin, data, logFile)
	e.alice, e.bob = e.p.user(t, "alice@example.test"), e.p.user(t, "bob@example.test")
}

// send runs swaks and requires success.
func (e *e2e) send(t *testing.T, args ...string) {
	t.Helper()
	out, err := runTool(t, 30*time.Second, nil, e.swaks, append([]string{"--timeout", "20"}, args...)...)
	if err != nil {
		t.Fatalf("swaks %v: %v\n%s\ndemo stderr:\n%s", args, err, out, e.p.err)
	}
}

// submitArgs are swaks's arguments for a submission by alice to her bridge.
func (e *e2e) submitArgs(to string) []string {
	return []string{"--server", fmt.Sprintf("%s:%d", e.alice.SMTPHost, e.alice.SMTPPort),
		"--auth", "PLAIN", "--auth-user", e.alice.Username, "--auth-password", e.alice.Password,
		"--from", e.alice.Address, "--to", to}
}

func (e *e2e) submit(t *testing.T, to, subject, body string, extra ...string) {
	t.Helper()
	args := append(e.submitArgs(to), "--header", "Subject: "+subject, "--body", body)
	e.send(t, append(args, extra...)...)
}

// fetchBob returns bob's INBOX as read by imaplib.
func (e *e2e) fetchBob(t *testing.T) string {
	t.Helper()
	out, err := runTool(t, 30*time.Second, nil, e.py, e.script, "fetch", e.bob.IMAPHost, strconv.Itoa(e.bob.IMAPPort), e.bob.Username, e.bob.Password)
	if err != nil {
		t.Fatalf("imaplib fetch: %v\n%s", err, out)
	}
	return out
}

// waitBob polls bob's INBOX (30 s at most) until it holds every want.
func (e *e2e) waitBob(t *testing.T, want ...string) string {
	t.Helper()
	var out string
	ok := waitFor(30*time.Second, func() bool {
		out = e.fetchBob(t)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("bob's INBOX lacks %v after 30 s:\n%s\ndemo stderr:\n%s", want, out, e.p.err)
	}
	return out
}

// testExternal drops a gpg-made key into the outside world's WKD folder,
// sends to it, and decrypts what the sink got with gpg.
func (e *e2e) testExternal(t *testing.T, gpg, mark string) {
	gh := newGnuPG(t, gpg)
	carol := "carol@outside.test"
	pub := gh.genKey(t, carol)
	if err := os.WriteFile(filepath.Join(e.p.settings.Outside.KeysDir, carol+".asc"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	e.submit(t, carol, "to carol", "body "+mark)
	var msg []byte
	if !waitFor(30*time.Second, func() bool { msg = sinkMessageFor(t, e.p.settings.Outside.MailDir, carol); return msg != nil }) {
		t.Fatalf("the sink received nothing for %s in 30 s\ndemo stderr:\n%s", carol, e.p.err)
	}
	if strings.Contains(string(msg), mark) {
		t.Fatalf("the outside world received the plaintext:\n%s", msg)
	}
	if !strings.Contains(string(msg), "multipart/encrypted") || !strings.Contains(string(msg), "application/pgp-encrypted") {
		t.Fatalf("not PGP/MIME:\n%s", msg)
	}
	// alice's key comes from her Autocrypt header, so that gpg can also
	// check her signature.
	gh.importKey(t, autocryptKey(t, msg, e.alice.Address))
	plain, status := gh.decrypt(t, armoredMessage(t, msg))
	if !strings.Contains(plain, mark) {
		t.Fatalf("gpg decrypted something without the marker:\n%s", plain)
	}
	if !strings.Contains(status, "GOODSIG") {
		t.Errorf("gpg did not find alice's good signature:\n%s", status)
	}
}

// testRefused: with the default policy, mail to an outside address without
// a key fails at RCPT with a 550 that names the recipient.
func (e *e2e) testRefused(t *testing.T, mark string) {
	nokey := "nokey@nowhere.test"
	args := append([]string{"--timeout", "20"}, e.submitArgs(nokey)...)
	out, err := runTool(t, 30*time.Second, nil, e.swaks, append(args, "--body", "body "+mark)...)
	if err == nil || !strings.Contains(out, "<** 550") || !strings.Contains(out, nokey) {
		t.Fatalf("swaks to a key-less address: %v\n%s", err, out)
	}
}

// checkNoPlaintext scans the data folder and the log file for the markers,
// and the log for an IP address.
func checkNoPlaintext(t *testing.T, data, logFile string, markers []string) {
	found, err := scanForMarkers(data, markers)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("plaintext found in the data folder:\n%s", strings.Join(found, "\n"))
	}
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) == 0 || strings.Contains(string(logs), "127.0.0.1") {
		t.Errorf("log file empty or holding an IP address:\n%s", logs)
	}
	if found, _ := scanForMarkers(filepath.Dir(logFile), markers); len(found) > 0 {
		t.Errorf("plaintext in the log file: %v", found)
	}
}

// testMbsync syncs INBOX over STARTTLS with the bridge's certificate pinned
// and checks the Maildir holds every marker. mbsync (isync 1.4) matches the
// host name only against the certificate's DNS names, not its IP address
// SANs, so it is pointed at "localhost" (a SAN of the bridge's certificate)
// rather than at the printed 127.0.0.1.
func testMbsync(t *testing.T, mbsync string, port int, user, pass, cert string, want ...string) {
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`IMAPAccount bob
Host localhost
Port %d
User %s
Pass %s
SSLType STARTTLS
CertificateFile %s

IMAPStore bob-remote
Account bob

MaildirStore bob-local
Path %s/
Inbox %s/INBOX

Channel bob
Far :bob-remote:
Near :bob-local:
Patterns INBOX
Create Near
SyncState *
`, port, user, pass, cert, maildir, maildir)
	cfg := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runTool(t, 60*time.Second, nil, mbsync, "-c", cfg, "bob")
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	var all strings.Builder
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(maildir, "INBOX", sub))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(maildir, "INBOX", sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
	}
	for _, w := range want {
		if !strings.Contains(all.String(), w) {
			t.Errorf("mbsync's Maildir lacks %s; mbsync said:\n%s", w, out)
		}
	}
}

// testIdle starts an IDLE with imaplib, runs trigger once the server
// accepted it, and requires the new message to be announced and fetched.
func testIdle(t *testing.T, py, script, host string, port int, user, pass string, trigger func(), want string) {
	cmd := exec.Command(py, script, "idle", host, strconv.Itoa(port), user, pass, "30")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := make(chan string, 64)
	var rest strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "IDLING" {
			t.Fatalf("idle script said %q; stderr: %s", l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("IDLE not started in 30 s; stderr: %s", stderr.String())
	}
	trigger()
	timeout := time.After(45 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			rest.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("IDLE saw nothing in 45 s: %s; stderr: %s", rest.String(), stderr.String())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("idle script: %v; stderr: %s", err, stderr.String())
	}
	if !strings.HasPrefix(rest.String(), "EXISTS ") || !strings.Contains(rest.String(), want) {
		t.Fatalf("IDLE output lacks the EXISTS and the new message:\n%s", rest.String())
	}
}

// sinkMessageFor returns the first message in the sink's folder delivered
// to rcpt, or nil.
func sinkMessageFor(t *testing.T, dir, rcpt string) []byte {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Delivered-To: "+rcpt+"\r\n") {
			return b
		}
	}
	return nil
}

// autocryptKey returns the key data of the Autocrypt header for addr in
// msg's header section.
func autocryptKey(t *testing.T, msg []byte, addr string) []byte {
	hdr, _, _ := strings.Cut(strings.ReplaceAll(string(msg), "\r\n", "\n"), "\n\n")
	for _, f := range strings.Split(strings.ReplaceAll(hdr, "\n ", " "), "\n") {
		name, value, ok := strings.Cut(f, ":")
		if !ok || !strings.EqualFold(name, "Autocrypt") {
			continue
		}
		h, err := pgp.ParseAutocrypt(strings.ReplaceAll(strings.TrimSpace(value), "\t", " "))
		if err == nil && strings.EqualFold(h.Addr, addr) {
			return h.KeyData
		}
	}
	t.Fatalf("no Autocrypt header for %s in:\n%s", addr, hdr)
	return nil
}

// armoredMessage extracts the OpenPGP message block of a PGP/MIME message.
func armoredMessage(t *testing.T, msg []byte) []byte {
	s := string(msg)
	i := strings.Index(s, "-----BEGIN PGP MESSAGE-----")
	j := strings.Index(s, "-----END PGP MESSAGE-----")
	if i < 0 || j < i {
		t.Fatalf("no armored OpenPGP message in:\n%s", msg)
	}
	return []byte(strings.ReplaceAll(s[i:j+len("-----END PGP MESSAGE-----")], "\r\n", "\n") + "\n")
}
