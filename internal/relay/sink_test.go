package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// relayFailOrSkip ends a test whose external tool cannot be had: a failure
// in CI, a skip elsewhere.
func relayFailOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// postfixSink returns the path of Postfix's smtp-sink and the environment
// to run it in. Postfix is not installed: its Debian package is fetched
// with apt-get download and unpacked with dpkg-deb -x, once, into a cache
// under os.TempDir(), as ../shared/bench/smtp_bench.py does.
func postfixSink(t *testing.T) (string, []string) {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/smtp-sink"); err == nil {
		return "/usr/sbin/smtp-sink", os.Environ()
	}
	cache := filepath.Join(os.TempDir(), "smsg-postfix")
	root := filepath.Join(cache, "root")
	sink := filepath.Join(root, "usr", "sbin", "smtp-sink")
	env := append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr", "lib", "postfix"))
	if _, err := os.Stat(sink); err == nil {
		return sink, env
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			relayFailOrSkip(t, "%s not available to unpack postfix: %v", tool, err)
		}
	}
	pkgs := filepath.Join(cache, "pkgs")
	if err := os.MkdirAll(pkgs, 0o755); err != nil {
		t.Fatal(err)
	}
	debs, _ := filepath.Glob(filepath.Join(pkgs, "postfix_*.deb"))
	if len(debs) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", "download", "postfix")
		cmd.Dir = pkgs
		out, err := cmd.CombinedOutput()
		debs, _ = filepath.Glob(filepath.Join(pkgs, "postfix_*.deb"))
		if len(debs) == 0 {
			relayFailOrSkip(t, "apt-get download postfix failed: %v\n%s", err, out)
		}
	}
	// Unpack beside the cache and rename, so a concurrent or interrupted
	// run never sees half a tree.
	tmp, err := os.MkdirTemp(cache, "unpack")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg-deb", "-x", debs[len(debs)-1], tmp).CombinedOutput(); err != nil {
		relayFailOrSkip(t, "dpkg-deb -x: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, root); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(sink); serr != nil {
			t.Fatal(err)
		}
	}
	return sink, env
}

// startSink runs smtp-sink on a free loopback port, dumping every
// transaction to a file in the returned directory.
func startSink(t *testing.T) (addr, dumpDir string) {
	t.Helper()
	sink, env := postfixSink(t)
	// smtp-sink drops to nobody when run as root, and t.TempDir()'s parent
	// is private: dump to a world-writable directory directly under /tmp.
	dumpDir, err := os.MkdirTemp("", "sinkdump")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dumpDir) })
	_ = os.Chmod(dumpDir, 0o777)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	args := []string{"-d", filepath.Join(dumpDir, "%Y."), addr, "64"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(sink, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		relayFailOrSkip(t, "smtp-sink: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	relayWait(t, "smtp-sink to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, dumpDir
}

// Postfix's smtp-sink as the remote MX: a plaintext and a PGP/MIME message
// arrive, DKIM-signed, and the signature verifies with go-msgauth.
func TestRelayToPostfixSmtpSink(t *testing.T) {
	e := setupRelay(t)
	addr, dumpDir := startSink(t)
	e.r.cfg.Routes["sink.test"] = addr
	rcptKey, err := pgp.GenerateKey("Rcpt", "pgp@sink.test")
	if err != nil {
		t.Fatal(err)
	}
	plainMsg := "From: sender@example.org\r\nTo: plain@sink.test\r\nSubject: plain out\r\nMessage-ID: <p@example.org>\r\n\r\nPLAIN-BODY to the sink\r\n"
	encMsg, err := pgp.BuildEncrypted([]byte("From: sender@example.org\r\nTo: pgp@sink.test\r\nSubject: secret out\r\nMessage-ID: <e@example.org>\r\n\r\nENCRYPTED-BODY\r\n"),
		[]*pgp.Key{rcptKey}, e.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ rcpt, payload string }{{"plain@sink.test", plainMsg}, {"pgp@sink.test", string(encMsg)}} {
		_, err := e.st.Enqueue(context.Background(), store.QueueEntry{
			Account: e.acct, From: "sender@example.org", Recipients: []store.QueueRecipient{{Address: m.rcpt}},
			Payload: []byte(m.payload), Created: e.clock(), Expires: e.clock().Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.step(t); err != nil {
			t.Fatal(err)
		}
	}
	if q, _ := e.st.ListQueue(context.Background(), false); len(q) != 0 {
		t.Fatalf("entries left: %+v", q)
	}
	var dumps [][]byte
	relayWait(t, "two dumps", func() bool {
		files, _ := filepath.Glob(filepath.Join(dumpDir, "*"))
		dumps = nil
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
				dumps = append(dumps, b)
			}
		}
		return len(dumps) == 2
	})
	seen := map[string]bool{}
	for _, d := range dumps {
		msg := sinkMessage(d)
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: dkimLookup})
		if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
			t.Fatalf("DKIM at the sink: %v %+v\n%s", err, verifs, msg)
		}
		switch {
		case bytes.Contains(msg, []byte("PLAIN-BODY to the sink")):
			seen["plain"] = true
		case pgp.IsEncrypted(msg):
			dec, err := pgp.DecryptMessage(msg, rcptKey, []*pgp.Key{e.key})
			if err != nil || !bytes.Contains(dec.Message, []byte("ENCRYPTED-BODY")) {
				t.Fatalf("PGP/MIME at the sink does not decrypt: %v", err)
			}
			if bytes.Contains(msg, []byte("ENCRYPTED-BODY")) {
				t.Fatal("PGP/MIME body in clear at the sink")
			}
			seen["pgp"] = true
		}
	}
	if !seen["plain"] || !seen["pgp"] {
		t.Fatalf("sink got %v", seen)
	}
}

// sinkMessage strips smtp-sink's X-* envelope lines and its Received
// field from a dump and restores CRLF line ends.
func sinkMessage(dump []byte) []byte {
	lines := strings.Split(string(dump), "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "X-") {
		i++
	}
	if i < len(lines) && strings.HasPrefix(lines[i], "Received:") {
		i++
		for i < len(lines) && (strings.HasPrefix(lines[i], "\t") || strings.HasPrefix(lines[i], " ")) {
			i++
		}
	}
	return []byte(strings.TrimSuffix(strings.Join(lines[i:], "\r\n"), "\r\n") + "\r\n")
}

func dkimLookup(name string) ([]string, error) {
	if name == "s1._domainkey.example.org" {
		return []string{dkimTXT}, nil
	}
	return nil, fmt.Errorf("no record for %s", name)
}
