package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smessenger/internal/demo"
)

// needTool returns the path of an external tool: missing, it fails the
// test under CI and skips it elsewhere.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// syncBuffer collects a process's output for failure messages.
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

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds the smessenger command once per test run (go build
// -o TMP/smessenger ./cmd/smessenger) and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "smessenger-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "smessenger")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/smessenger")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// demoProc is one running `smessenger demo` process.
type demoProc struct {
	cmd      *exec.Cmd
	out, err *syncBuffer
	done     chan error
	settings demo.Settings
}

// startDemo runs the demo on data and waits (bounded) for its settings.
func startDemo(t *testing.T, bin, data, logFile string) *demoProc {
	t.Helper()
	p := &demoProc{out: &syncBuffer{}, err: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "demo", "--data", data, "--log-file", logFile)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.err
	p.cmd.Env = append(os.Environ(), "SMESSENGER_PASSPHRASE=")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start demo: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("demo exited early: %v\nstdout:\n%s\nstderr:\n%s", err, p.out, p.err)
		case <-time.After(100 * time.Millisecond):
		}
		b, err := os.ReadFile(filepath.Join(data, demo.SettingsFileName))
		if err != nil {
			continue
		}
		var s demo.Settings
		if json.Unmarshal(b, &s) == nil && s.PID == p.cmd.Process.Pid {
			p.settings = s
			return p
		}
	}
	t.Fatalf("demo not ready within 60 s\nstdout:\n%s\nstderr:\n%s", p.out, p.err)
	return nil
}

// stop sends SIGINT and requires a clean exit (status 0) within 30 s.
func (p *demoProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("demo did not exit cleanly: %v\nstderr:\n%s", err, p.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not stop within 30 s after SIGINT\nstderr:\n%s", p.err)
	}
}

// user returns the settings of address.
func (p *demoProc) user(t *testing.T, address string) demo.UserSetting {
	t.Helper()
	for _, u := range p.settings.Users {
		if u.Address == address {
			return u
		}
	}
	t.Fatalf("no settings for %s in demo.json", address)
	return demo.UserSetting{}
}

// marker returns a random string that appears nowhere by chance.
func marker(t *testing.T, what string) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "E2E-" + what + "-" + hex.EncodeToString(b[:])
}

// run runs a tool with a bound and returns its combined output.
func runTool(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitFor polls cond every 200 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scanForMarkers walks every file under dir and returns "file: marker" for
// each marker found in its bytes.
func scanForMarkers(dir string, markers []string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) || bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(m))) {
				found = append(found, path+": "+m)
			}
		}
		return nil
	})
	return found, err
}

// TestScanForMarkers makes sure the plaintext scan can fail.
func TestScanForMarkers(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700)
	os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("xx e2e-Secret-1 yy"), 0o600)
	os.WriteFile(filepath.Join(dir, "g"), []byte("nothing"), 0o600)
	found, err := scanForMarkers(dir, []string{"E2E-secret-1", "absent"})
	if err != nil || len(found) != 1 || !strings.Contains(found[0], filepath.Join("a", "b", "f")) {
		t.Fatalf("scan: %v %v", found, err)
	}
}
