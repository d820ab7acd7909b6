package main

import (
	"bytes"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	apiPortLine = regexp.MustCompile(`"server node starting" api_port=(\d+)`)
	mxPortLine  = regexp.MustCompile(`"mx listening" port=(\d+)`)
	keyLine     = regexp.MustCompile(`--server-key (\S+)`)
	tokenLine   = regexp.MustCompile(`Enrolment token \(one use, valid 7 days\): (\S+)`)
)

// TestServerProcess runs `smessenger server` as a real process (node, MX
// and relay wired by the command line), enrols a bridge against it with
// `bridge login`, delivers through the MX, and stops it with SIGINT.
func TestServerProcess(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "srv")
	var out, errOut bytes.Buffer
	mustRun := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	key := keyLine.FindStringSubmatch(mustRun("server", "init", "--data-dir", dir,
		"--public-address", "127.0.0.1:7443", "--domains", "example.test", "--api-listen", "127.0.0.1:0"))
	tok := tokenLine.FindStringSubmatch(mustRun("user", "add", "erin@example.test", "--data-dir", dir))
	if key == nil || tok == nil {
		t.Fatal("init or user add printed no key or token")
	}

	logs := &syncBuffer{}
	cmd := exec.Command(bin, "server", "--data-dir", dir, "--mx-listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--relay-routes", "*=127.0.0.1:9")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	var apiPort, mxPort string
	if !waitFor(20*time.Second, func() bool {
		a, m := apiPortLine.FindStringSubmatch(logs.String()), mxPortLine.FindStringSubmatch(logs.String())
		if a != nil && m != nil {
			apiPort, mxPort = a[1], m[1]
			return true
		}
		return false
	}) {
		t.Fatalf("server did not start:\n%s", logs)
	}

	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("a long enough passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun("bridge", "login", "erin@example.test", "--server", "127.0.0.1:"+apiPort,
		"--server-key", key[1], "--token", tok[1], "--data", filepath.Join(t.TempDir(), "bridge"),
		"--passphrase-file", passFile)

	msg := "From: someone@outside.test\r\nTo: erin@example.test\r\nSubject: hi\r\n\r\nhello erin\r\n"
	if err := sendPlain("127.0.0.1:"+mxPort, "someone@outside.test", []string{"erin@example.test"}, []byte(msg)); err != nil {
		t.Fatalf("MX refused mail for an enrolled user: %v\n%s", err, logs)
	}
	err := sendPlain("127.0.0.1:"+mxPort, "someone@outside.test", []string{"nobody@example.test"}, []byte(msg))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("unknown user: err = %v, want 550", err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not stop on SIGINT:\n%s", logs)
	}
	if strings.Contains(logs.String(), "127.0.0.1") {
		t.Fatalf("server log holds an IP address:\n%s", logs)
	}
	// The bridge's login registered the account's public key.
	if l := mustRun("user", "list", "--data-dir", dir); !strings.Contains(l, "true") {
		t.Fatalf("user list after login:\n%s", l)
	}
}

// sendPlain speaks SMTP without STARTTLS (the server's certificate is
// self-signed; the MX accepts plaintext from outside MTAs too).
func sendPlain(addr, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
