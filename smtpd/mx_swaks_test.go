package smtpd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// swaks, a real SMTP client, sends to the MX in plaintext and with
// STARTTLS; the stored message decrypts to what it sent, byte for byte,
// after the Authentication-Results field.
func TestMXSwaks(t *testing.T) {
	swaks := mxNeedTool(t, "swaks")
	e := mxStart(t, nil)
	for _, c := range []struct {
		name  string
		extra []string
	}{{"plain", nil}, {"starttls", []string{"--tls"}}} {
		t.Run(c.name, func(t *testing.T) {
			msg := mxTestMessage("swaks "+c.name, "sent by swaks MARKER")
			f := filepath.Join(t.TempDir(), "msg.eml")
			// swaks ends the data with CRLF "." CRLF itself, so the file
			// holds the message without its last line end.
			if err := os.WriteFile(f, []byte(strings.TrimSuffix(msg, "\r\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			before := len(e.stored(t))
			args := append([]string{"--server", e.addr, "--from", "bob@sender.test", "--to", "alice@example.org",
				"--helo", "client.test", "--data", f, "--timeout", "20"}, c.extra...)
			out, err := exec.Command(swaks, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			if c.extra != nil && !strings.Contains(string(out), "TLS started") {
				t.Fatalf("swaks did not use STARTTLS:\n%s", out)
			}
			got := e.stored(t)
			if len(got) != before+1 {
				t.Fatalf("want %d stored, got %d", before+1, len(got))
			}
			ar, rest, _ := strings.Cut(string(got[len(got)-1]), "\r\n")
			if !strings.HasPrefix(ar, "Authentication-Results: mx.example.org;") || rest != msg {
				t.Fatalf("stored message differs:\n%q", got[len(got)-1])
			}
		})
	}
	// An unknown recipient is refused at RCPT; swaks reports the failure.
	out, err := exec.Command(swaks, "--server", e.addr, "--from", "bob@sender.test", "--to", "nobody@example.org",
		"--timeout", "20").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "<** 550 5.1.1") {
		t.Fatalf("unknown user not refused with 550 5.1.1: %v\n%s", err, out)
	}
}
