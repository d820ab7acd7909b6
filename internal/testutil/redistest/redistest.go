// Package redistest starts real redis-server processes for tests: a
// standalone server on a unix socket (durable: appendonly yes, appendfsync
// always) and small Redis Clusters on 127.0.0.1. It never imitates Redis.
//
// When redis-server (or redis-cli, for clusters) is missing, the test is
// skipped, or fails when the CI environment variable is set, so that CI never
// silently skips the Redis backend.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// need returns the path of tool, or ends the test when it is missing.
func need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: %s not found: %v", tool, err)
		}
		t.Skipf("redistest: %s not found; skipping", tool)
	}
	return p
}

// Server is a standalone redis-server on a unix socket in its own directory.
// Restart reuses the directory, so the append-only file survives a Kill.
type Server struct {
	t     testing.TB
	dir   string
	sock  string
	extra []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a durable standalone redis-server in t.TempDir(), listening on
// a unix socket only, and returns its URL ("unix:///…/redis.sock"). The
// server is stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t, t.TempDir()).URL()
}

// StartServer starts a durable standalone redis-server whose working
// directory (and AOF) is dir. Extra arguments, e.g. "--appendfsync",
// "everysec", are appended to the command line and override the defaults.
func StartServer(t testing.TB, dir string, extra ...string) *Server {
	t.Helper()
	need(t, "redis-server")
	// Unix socket paths are limited to ~104 bytes; t.TempDir() can be long.
	sockDir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := &Server{t: t, dir: dir, sock: filepath.Join(sockDir, "r.sock"), extra: extra}
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM)
		os.RemoveAll(sockDir)
	})
	s.start()
	return s
}

// URL is the server's unix:// URL.
func (s *Server) URL() string { return "unix://" + s.sock }

// Dir is the server's working directory (where the AOF lives).
func (s *Server) Dir() string { return s.dir }

// Kill stops the server with SIGKILL, as a crash would: nothing is flushed
// beyond what the server already wrote.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Restart kills the server if it still runs and starts it again on the same
// directory, so it reloads its append-only file.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop(syscall.SIGKILL)
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	args := []string{
		"--port", "0",
		"--unixsocket", s.sock,
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	args = append(args, s.extra...)
	cmd := exec.Command("redis-server", args...)
	orphanProof(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	if err := waitPing("unix", s.sock); err != nil {
		s.stop(syscall.SIGKILL)
		s.t.Fatalf("redistest: redis-server did not start: %v; log: %s", err, readLog(s.dir))
	}
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitPing polls until the server answers PING with +PONG.
func waitPing(network, addr string) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		last = ping(network, addr)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// ping sends one inline command and checks the reply prefix.
func ping(network, addr string) error {
	_, err := command(network, addr, "PING", "+PONG")
	return err
}

// command sends an inline command and returns the first reply line, or an
// error when it does not start with want.
func command(network, addr, cmd, want string) (string, error) {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, want) {
		return line, fmt.Errorf("redistest: %s: unexpected reply %q", cmd, line)
	}
	return line, nil
}

// freePort finds a TCP port below 55000 on 127.0.0.1 whose cluster bus port
// (port+10000) is free too.
func freePort(t testing.TB, taken map[int]bool) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= 55000 || taken[p] || taken[p+10000] {
			continue
		}
		if !portFree(p) || !portFree(p+10000) {
			continue
		}
		taken[p], taken[p+10000] = true, true
		return p
	}
	t.Fatalf("redistest: no free port pair below 55000")
	return 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// StartCluster starts n (>= 3) redis-server nodes in cluster mode on
// 127.0.0.1, joins them with redis-cli --cluster create (no replicas) and
// waits for cluster_state:ok. It returns the nodes' "127.0.0.1:port"
// addresses. Nodes are durable (appendfsync always) and stopped on cleanup.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	need(t, "redis-server")
	need(t, "redis-cli")
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", n)
	}
	var nodes []string
	for attempt := 0; ; attempt++ {
		var err error
		nodes, err = tryCluster(t, n)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("redistest: cluster: %v", err)
		}
		t.Logf("redistest: cluster start failed, retrying: %v", err)
	}
	return nodes
}

// tryCluster starts the nodes and forms the cluster; a port race with another
// process makes it fail, and StartCluster retries on fresh ports.
func tryCluster(t testing.TB, n int) ([]string, error) {
	taken := map[int]bool{}
	var nodes []string
	for i := 0; i < n; i++ {
		port := freePort(t, taken)
		dir := t.TempDir()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000",
			"--save", "",
			"--appendonly", "yes",
			"--appendfsync", "always",
			"--dir", dir,
			"--loglevel", "warning",
			"--logfile", filepath.Join(dir, "redis.log"),
		)
		orphanProof(cmd)
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		if err := waitPing("tcp", addr); err != nil {
			return nil, fmt.Errorf("node %s: %v; log: %s", addr, err, readLog(dir))
		}
		nodes = append(nodes, addr)
	}
	args := append([]string{"--cluster", "create"}, nodes...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	if err := waitClusterOK(nodes); err != nil {
		return nil, err
	}
	return nodes, nil
}

// waitClusterOK waits until every node reports cluster_state:ok.
func waitClusterOK(nodes []string) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			ok, err := clusterOK(n)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s not ok: %v", n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func clusterOK(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("CLUSTER INFO\r\n")); err != nil {
		return false, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return false, err
	}
	size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || size <= 0 {
		return false, fmt.Errorf("bad reply %q", head)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return false, err
	}
	return strings.Contains(string(buf), "cluster_state:ok"), nil
}
