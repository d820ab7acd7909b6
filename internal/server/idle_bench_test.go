package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store/bolt"
)

// Environment of the node child process that BenchmarkIdleStreamsServer
// starts by running this test binary again.
const (
	envChildConfig = "SMESSENGER_BENCH_NODE_CONFIG"
	envChildStore  = "SMESSENGER_BENCH_NODE_STORE"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChildConfig) != "" {
		os.Exit(runChildNode(os.Getenv(envChildConfig), os.Getenv(envChildStore)))
	}
	os.Exit(m.Run())
}

// raiseFileLimit lifts the soft limit on open files to the hard one: each
// idle stream is one descriptor on each side.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// runChildNode runs a node on the bbolt file at storePath, prints its API
// address, then answers commands on stdin ("stats", "gc", "heap PATH")
// until stdin closes.
func runChildNode(cfgPath, storePath string) int {
	raiseFileLimit()
	server.TuneGC(0, 0) // the collector setting smessenger server runs with
	if os.Getenv("SMESSENGER_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1 // an exact profile of what each stream holds
	}
	cfg, err := server.LoadConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.HandshakesPerMinute = -1
	cfg.Limits.CallsPerSecond = -1
	st, err := bolt.Open(storePath, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	node, err := server.New(cfg, st, logging.New(io.Discard, slog.LevelInfo))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	fmt.Printf("addr %s\n", node.APIAddr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "gc":
			runtime.GC()
			debug.FreeOSMemory()
			fmt.Println("ok")
		case "heap":
			f, err := os.Create(arg)
			if err == nil {
				err = pprof.WriteHeapProfile(f)
				f.Close()
			}
			fmt.Println("ok", err)
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("goroutines=%d heap=%d stack=%d\n", runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse)
		}
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childNode is the node process seen from the benchmark.
type childNode struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

func startChildNode(b *testing.B, cfgPath, storePath string) *childNode {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildConfig+"="+cfgPath, envChildStore+"="+storePath)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &childNode{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "addr ") {
		_ = cmd.Process.Kill()
		b.Fatalf("node child did not start: %q %v", line, err)
	}
	c.addr = strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	return c
}

// ask sends one command and returns the child's one-line answer.
func (c *childNode) ask(b *testing.B, cmd string) string {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		b.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// rss is the child's resident set size in bytes, from /proc.
func (c *childNode) rss(b *testing.B) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func (c *childNode) stop(b *testing.B) {
	_ = c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("node child: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		b.Error("node child did not stop")
	}
}

// prepareIdleNode makes a data folder and a store with one account holding
// one event and n enrolled device keys, and returns the config path, the
// store path, the server's public key and the device keys.
func prepareIdleNode(b *testing.B, n int) (string, string, []byte, []channel.KeyPair) {
	cfg := servertest.InitDir(b, "127.0.0.1")
	storePath := filepath.Join(b.TempDir(), "store.db")
	st, err := bolt.Open(storePath, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	acct, err := st.CreateAccount(ctx, "idle@example.org", 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateMailbox(ctx, acct.ID, "x", ""); err != nil {
		b.Fatal(err)
	}
	keys := make([]channel.KeyPair, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				kp, err := channel.GenerateKeyPair()
				if err == nil {
					_, err = st.AddDevice(ctx, acct.ID, kp.Public, "")
				}
				if err != nil {
					failed.Store(err)
					return
				}
				keys[i] = kp
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	key, err := server.PublicNoiseKey(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(cfg.DataDir, "config.toml"), storePath, key, keys
}

// openIdleStream dials the node as device kp, starts an event stream and
// reads up to its first event, then leaves the stream idle: no goroutine
// and no buffer on this side, only the connection.
func openIdleStream(ctx context.Context, addr string, cc channel.ClientConfig) (*channel.Conn, error) {
	conn, err := channel.Dial(ctx, addr, cc)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://node/v1/events/stream?after=0", nil)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(line, `"Seq"`) {
		conn.Close()
		return nil, fmt.Errorf("stream: status %d, first line %q: %v", resp.StatusCode, line, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// BenchmarkIdleStreamsServer measures the node alone: it runs in a child
// process, and SMESSENGER_IDLE_STREAMS (default 1000) idle event streams
// are opened to it from this process. It reports the child's RSS from
// /proc/PID/status with the streams open, per device and projected to
// 10,000 devices, and its goroutines per device.
func BenchmarkIdleStreamsServer(b *testing.B) {
	n := 1000
	if s := os.Getenv("SMESSENGER_IDLE_STREAMS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	raiseFileLimit()
	for i := 0; i < b.N; i++ {
		cfgPath, storePath, serverKey, keys := prepareIdleNode(b, n)
		child := startChildNode(b, cfgPath, storePath)
		child.ask(b, "gc")
		rss0 := child.rss(b)
		conns := make([]*channel.Conn, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		start := time.Now()
		for range 16 {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
					cc := channel.ClientConfig{ServerKey: serverKey, Static: keys[k], HandshakeTimeout: 30 * time.Second}
					c, err := openIdleStream(context.Background(), child.addr, cc)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					conns[k] = c
				}
			})
		}
		wg.Wait()
		opened := time.Since(start)
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d streams failed: %v", f, n, firstErr.Load())
		}
		time.Sleep(time.Second) // let the node settle
		rss1 := child.rss(b)
		child.ask(b, "gc")
		rss2 := child.rss(b)
		stats := child.ask(b, "stats")
		if p := os.Getenv("SMESSENGER_HEAP_PROFILE"); p != "" {
			child.ask(b, "heap "+p)
		}
		per := float64(rss1-rss0) / float64(n)
		b.ReportMetric(float64(rss1)/(1<<20), "node-RSS-MB")
		b.ReportMetric(float64(rss2)/(1<<20), "node-RSS-MB-after-GC")
		b.ReportMetric(per/1024, "RSS-KB/device")
		b.ReportMetric((float64(rss0)+per*10000)/(1<<20), "RSS-MB/10k-devices")
		b.Logf("%d streams opened in %v; node RSS %d MB before, %d MB with them, %d MB after GC; %s",
			n, opened.Round(time.Millisecond), rss0>>20, rss1>>20, rss2>>20, stats)
		if g := parseStat(stats, "goroutines"); g > 0 {
			b.ReportMetric(float64(g)/float64(n), "goroutines/device")
		}
		for _, c := range conns {
			c.Close()
		}
		child.stop(b)
	}
}

// parseStat finds key=value in a stats line.
func parseStat(line, key string) int64 {
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
