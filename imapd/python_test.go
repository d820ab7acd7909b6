package imapd

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPythonImaplibSession runs testdata/imap/thunderbird_session.py: the
// steps Thunderbird takes, through Python's imaplib, with an IDLE woken by
// another device.
func TestPythonImaplibSession(t *testing.T) {
	py := needTool(t, "python3")
	env := newTestEnv(t, nil)
	env.view.deliver("INBOX", simpleMsg)
	env.view.deliver("INBOX", multipartMsg, `\Seen`)
	host, port, _ := net.SplitHostPort(env.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("..", "testdata", "imap", "thunderbird_session.py"), host, port, testUser, testPass)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var result string
	for sc.Scan() {
		if sc.Text() == "IDLING" {
			env.view.deliver("INBOX", "Subject: pushed\n\nnew mail\n")
			continue
		}
		result = sc.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("script failed: %v\n%s", err, stderr.String())
	}
	var out struct {
		Capability, ID, Append string
		FetchSample            string `json:"fetch_sample"`
		IdlePushed             string `json:"idle_pushed"`
		IdleEnd                string `json:"idle_end"`
		List, Status           []string
		Exists, Fetched        int
	}
	if err := json.Unmarshal([]byte(result), &out); err != nil {
		t.Fatalf("output %q: %v", result, err)
	}
	t.Logf("ID answered %s (go-imap's server has no ID; imaplib raises and the session continues)", out.ID)
	if !strings.Contains(out.Capability, "IMAP4rev2") || out.Exists != 2 || out.Fetched < 2 {
		t.Errorf("capability/select/fetch: %+v", out)
	}
	if !strings.Contains(out.FetchSample, "ENVELOPE") || !strings.Contains(out.FetchSample, "BODYSTRUCTURE") {
		t.Errorf("fetch sample: %s", out.FetchSample)
	}
	if !strings.Contains(strings.Join(out.List, "\n"), `\Sent`) || len(out.Status) < 6 {
		t.Errorf("LIST-STATUS: %v / %v", out.List, out.Status)
	}
	if !strings.Contains(out.IdlePushed, "3 EXISTS") || !strings.Contains(out.IdleEnd, "OK") {
		t.Errorf("IDLE: pushed %q end %q", out.IdlePushed, out.IdleEnd)
	}
	if !strings.Contains(out.Append, "APPENDUID") {
		t.Errorf("APPEND: %q", out.Append)
	}
	if info, _ := env.view.Mailbox(t.Context(), "Sent"); info.Messages != 1 {
		t.Errorf("Sent has %d messages", info.Messages)
	}
}
