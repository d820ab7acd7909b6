package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyPrefix starts the one line a child prints on stdout when it is
// serving; the rest of the line is a JSON object the parent decodes.
const readyPrefix = "READY "

// child is a running helper process (a server node or a bridge) started
// from this same executable, so that its RSS is its own.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error

	stopOnce sync.Once
	stopErr  error
}

// startChild runs this executable with args, sends its stderr to logPath,
// waits (bounded by timeout) for its READY line and decodes it into ready.
// The child exits when its stdin closes (stop).
func startChild(name, logPath string, env []string, timeout time.Duration, ready any, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: own executable: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: %s log: %w", name, err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		sent := false
		for sc.Scan() {
			if !sent && strings.HasPrefix(sc.Text(), readyPrefix) {
				lines <- strings.TrimPrefix(sc.Text(), readyPrefix)
				sent = true
			}
		}
		if !sent {
			close(lines)
		}
		c.done <- cmd.Wait()
		logf.Close()
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			return nil, fmt.Errorf("bench: %s exited before it was ready; see %s", name, logPath)
		}
		if err := json.Unmarshal([]byte(line), ready); err != nil {
			c.kill()
			return nil, fmt.Errorf("bench: %s ready line: %w", name, err)
		}
		return c, nil
	case <-time.After(timeout):
		c.kill()
		return nil, fmt.Errorf("bench: %s not ready after %s; see %s", name, timeout, logPath)
	}
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's stdin (its signal to shut down) and waits up to
// 20 s before killing it. Later calls return the first call's result.
func (c *child) stop() error {
	c.stopOnce.Do(func() {
		c.stdin.Close()
		select {
		case c.stopErr = <-c.done:
		case <-time.After(20 * time.Second):
			c.kill()
			c.stopErr = fmt.Errorf("bench: %s did not stop; killed", c.name)
		}
	})
	return c.stopErr
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	c.stdin.Close()
}

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/PID/status in KiB.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("bench: read status of %d: %w", pid, err)
	}
	return parseStatusKB(string(b), field)
}

// errNoField reports a /proc status text without the asked field.
var errNoField = errors.New("bench: field not in status")

// parseStatusKB finds "Field:   123 kB" in a /proc/PID/status text.
func parseStatusKB(status, field string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(l, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("%w: %s has no value", errNoField, field)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: %s value %q", errNoField, field, f[0])
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: %s", errNoField, field)
}

// mb converts KiB to MB (10^6 bytes), the unit the peer scripts print.
func mb(kib int64) float64 { return float64(kib) * 1024 / 1e6 }

// waitForStdinEOF blocks until the parent closes our stdin or ctx ends.
func waitForStdinEOF(ctx context.Context) {
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
}

// printReady writes the READY line for the parent.
func printReady(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bench: ready: %w", err)
	}
	_, err = fmt.Fprintf(os.Stdout, "%s%s\n", readyPrefix, b)
	return err
}

// raiseFileLimit lifts the soft open-files limit to the hard one: the idle
// streams figure needs 10,000 sockets in one process.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
