package imapd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"smessenger/internal/server/servertest"
	"smessenger/pgp"
)

// privacyMarker is put in the subject and body of every delivered message;
// it must never appear in the bridge's data folder.
const privacyMarker = "qwvplaintextmarker"

// tuidLine is the header mbsync adds to find its uploads again.
var tuidLine = regexp.MustCompile(`(?m)^X-TUID: \S+\n`)

// mbsyncMessages is how many messages the mbsync test syncs.
const mbsyncMessages = 500

func markedMsg(i int) []byte {
	return fmt.Appendf(nil, "From: Alice <alice@%s>\r\nTo: carol@%s\r\nSubject: note %d %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <n%d@example.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of note %d: %s\r\n",
		servertest.Domain, servertest.Domain, i, privacyMarker, i, i, privacyMarker)
}

// mbsyncConf writes an mbsync configuration syncing the far INBOX with a
// Maildir under dir. security is mbsync's SSLType; certFile pins the
// bridge's local certificate for STARTTLS.
func mbsyncConf(t *testing.T, dir, host, port, user, pass, security, certFile string) string {
	t.Helper()
	maildir := filepath.Join(dir, "mail")
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "IMAPAccount bridge\nHost %s\nPort %s\nUser %s\nPass %s\nSSLType %s\n", host, port, user, pass, security)
	// mbsync only offers LOGIN over plaintext when told to; on loopback the
	// password never leaves the machine.
	b.WriteString("AuthMechs LOGIN\nTimeout 30\n")
	if certFile != "" {
		fmt.Fprintf(&b, "CertificateFile %s\nSystemCertificates no\n", certFile)
	}
	fmt.Fprintf(&b, "\nIMAPStore far\nAccount bridge\n\nMaildirStore near\nPath %s/\nInbox %s/INBOX\n\n", maildir, maildir)
	b.WriteString("Channel inbox\nFar :far:\nNear :near:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\nSync All\n")
	rc := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rc, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return rc
}

// runMbsync runs one sync of every channel and fails on a non-zero exit or
// an error line.
func runMbsync(t *testing.T, bin, rc string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{}, extra...), "-c", rc, "-a")...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(rc))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(strings.ToLower(line), "error") {
			t.Fatalf("mbsync reported an error:\n%s", out)
		}
	}
	return string(out)
}

// maildirFiles lists the messages of a Maildir folder (new and cur).
func maildirFiles(t *testing.T, folder string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(folder, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, filepath.Join(folder, sub, e.Name()))
		}
	}
	return out
}

// uidOfFile reads the far UID mbsync records in a Maildir file name.
func uidOfFile(name string) imap.UID {
	base := filepath.Base(name)
	i := strings.Index(base, ",U=")
	if i < 0 {
		return 0
	}
	var uid uint32
	fmt.Sscanf(base[i+3:], "%d", &uid)
	return imap.UID(uid)
}

// TestMbsyncOverRealBridge: mbsync pulls 500 messages from a real bridge
// into a Maildir; a flag changed and a message added in the Maildir reach
// the server and are seen by a second IMAP client; a second Maildir synced
// over STARTTLS with the pinned local certificate sees the same state. The
// bridge's data folder holds no plaintext and no unprotected key after.
func TestMbsyncOverRealBridge(t *testing.T) {
	bin := needTool(t, "mbsync")
	var raws [][]byte
	for i := 1; i <= mbsyncMessages; i++ {
		raws = append(raws, markedMsg(i))
	}
	certFile, keyFile, err := GenerateLocalCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	rb := startRealBridge(t, func(env *servertest.Env, user string) { deliverSealed(t, env, user, raws) }, tlsCfg)
	host, port, _ := net.SplitHostPort(rb.imapAddr)

	dir := t.TempDir()
	rc := mbsyncConf(t, dir, host, port, rb.user, rb.pass, "None", "")
	out := runMbsync(t, bin, rc)
	inbox := filepath.Join(dir, "mail", "INBOX")
	files := maildirFiles(t, inbox)
	if len(files) != mbsyncMessages {
		have := map[imap.UID]bool{}
		for _, f := range files {
			have[uidOfFile(f)] = true
		}
		ms, _ := rb.acct.Messages(context.Background(), "INBOX")
		var missing []uint32
		for _, m := range ms {
			if !have[imap.UID(m.UID)] {
				missing = append(missing, m.UID)
			}
		}
		t.Fatalf("Maildir has %d messages, want %d; bridge has %d; missing %v\n%s\n%s", len(files), mbsyncMessages, len(ms), missing, out, rb.logs.String())
	}
	slices.SortFunc(files, func(a, b string) int { return int(uidOfFile(a)) - int(uidOfFile(b)) })
	// Every delivered message arrived once, byte for byte (mbsync stores
	// LF line ends and adds its X-TUID tracking header). The server numbers
	// a batch's deliveries in its own order, so match by content.
	want := map[string]bool{}
	for _, raw := range raws {
		want[strings.ReplaceAll(string(raw), "\r\n", "\n")] = true
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := tuidLine.ReplaceAllString(string(b), "")
		if !want[got] {
			t.Fatalf("%s is not a delivered message (or a second copy):\n%q", filepath.Base(f), b)
		}
		delete(want, got)
	}

	// Locally: flag and read message 7, add a new message.
	flagged := files[6]
	uid := uidOfFile(flagged)
	if uid == 0 {
		t.Fatalf("no UID in %s", flagged)
	}
	target := filepath.Join(inbox, "cur", strings.SplitN(filepath.Base(flagged), ":2,", 2)[0]+":2,FS")
	if err := os.Rename(flagged, target); err != nil {
		t.Fatal(err)
	}
	local := "From: carol@" + servertest.Domain + "\r\nSubject: written offline\r\nMessage-ID: <offline@example.test>\r\n\r\nfiled by mbsync\r\n"
	if err := os.WriteFile(filepath.Join(inbox, "new", "1700000000.1_1.host"), []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	runMbsync(t, bin, rc)

	c := rb.dial(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH %d: %v", uid, err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagFlagged) || !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("flags changed in the Maildir not on the server: %v", msgs[0].Flags)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "written offline"}}}, nil).Wait()
	if err != nil || len(found.AllUIDs()) != 1 {
		t.Fatalf("message added in the Maildir not uploaded: %v %v", found, err)
	}
	body, err := c.Fetch(imap.UIDSetNum(found.AllUIDs()[0]), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(body) != 1 || !strings.Contains(string(body[0].FindBodySection(&imap.FetchItemBodySection{})), "filed by mbsync") {
		t.Fatalf("uploaded message body: %v", err)
	}
	// A third run changes nothing: no duplicate upload, no lost message.
	// Its network trace (-Dn) shows mbsync never sends ID, which go-imap's
	// server would answer BAD.
	trace := runMbsync(t, bin, rc, "-Dn")
	if !strings.Contains(trace, "LOGIN") || regexp.MustCompile(`(?m)>>> \d+ ID\b`).MatchString(trace) {
		t.Errorf("mbsync trace lacks LOGIN or sends ID:\n%.2000s", trace)
	}
	if n := len(maildirFiles(t, inbox)); n != mbsyncMessages+1 {
		t.Errorf("Maildir has %d messages after a no-op sync, want %d", n, mbsyncMessages+1)
	}
	if st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != mbsyncMessages+1 {
		t.Errorf("server INBOX after sync: %+v %v", st, err)
	}

	// A second Maildir over STARTTLS, the certificate pinned by file and the
	// host name checked against its SANs.
	dir2 := t.TempDir()
	rc2 := mbsyncConf(t, dir2, "localhost", port, rb.user, rb.pass, "STARTTLS", certFile)
	runMbsync(t, bin, rc2)
	files2 := maildirFiles(t, filepath.Join(dir2, "mail", "INBOX"))
	if len(files2) != mbsyncMessages+1 {
		t.Fatalf("STARTTLS Maildir has %d messages, want %d", len(files2), mbsyncMessages+1)
	}
	for _, f := range files2 {
		if uidOfFile(f) == uid && !strings.HasSuffix(f, ":2,FS") {
			t.Errorf("second Maildir: %s lacks the flags set through the first", filepath.Base(f))
		}
	}

	scanForPlaintext(t, rb)
}

// scanForPlaintext reads every byte of the bridge's data folder: no file may
// hold the marker of the delivered messages, and every OpenPGP secret key
// stored there must refuse to open without the passphrase (DESIGN.md,
// privacy rules; issue 5).
func scanForPlaintext(t *testing.T, rb *realBridge) {
	t.Helper()
	files, keys := 0, 0
	err := filepath.WalkDir(rb.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, bad := range []string{privacyMarker, "Body of note", "filed by mbsync", "written offline"} {
			if bytes.Contains(data, []byte(bad)) {
				t.Errorf("%s holds %q in clear", filepath.Base(path), bad)
			}
		}
		if bytes.Contains(data, []byte("PRIVATE KEY-----")) && !bytes.Contains(data, []byte("PGP PRIVATE KEY BLOCK")) {
			t.Errorf("%s holds a PEM private key", filepath.Base(path))
		}
		keys += checkSecretKeys(t, path, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 || keys == 0 {
		t.Fatalf("scanned %d files and %d secret keys: the data folder is not what the test expects", files, keys)
	}
}

// checkSecretKeys finds the armored secret keys of a file (raw, or as
// strings of a JSON file) and fails if one opens without a passphrase.
func checkSecretKeys(t *testing.T, path string, data []byte) int {
	t.Helper()
	var blocks []string
	var doc any
	if json.Unmarshal(data, &doc) == nil {
		collectStrings(doc, func(s string) {
			if strings.Contains(s, "PGP PRIVATE KEY BLOCK") {
				blocks = append(blocks, s)
			}
		})
	} else if bytes.Contains(data, []byte("-----BEGIN PGP PRIVATE KEY BLOCK")) {
		blocks = append(blocks, string(data))
	}
	for _, b := range blocks {
		if _, err := pgp.ImportPrivate([]byte(b), nil); err == nil {
			t.Errorf("%s holds a secret key that opens without the passphrase", filepath.Base(path))
		}
	}
	return len(blocks)
}

func collectStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			collectStrings(e, f)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, f)
		}
	}
}
