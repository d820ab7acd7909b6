package smtpd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/internal/store/redis"
)

// TestMXServeForBench is a tool, not a test: with SMSG_MX_BENCH=bolt:<dir>
// or SMSG_MX_BENCH=redis:<url> it runs an MX for example.org with the user
// rcpt@example.org (the recipient of ../shared/bench/smtp_bench.py), prints
// its address and serves for SMSG_MX_BENCH_SECONDS (default 300), so that
// the bench script can aim its load at a sealing, durably committing MX.
// SMSG_MX_BENCH_CPUPROFILE names a file for a CPU profile of the server.
func TestMXServeForBench(t *testing.T) {
	spec := os.Getenv("SMSG_MX_BENCH")
	if spec == "" {
		t.Skip("benchmark server; set SMSG_MX_BENCH")
	}
	ctx := context.Background()
	var st store.Store
	var err error
	switch spec[:min(len(spec), 5)] {
	case "bolt:":
		st, err = bolt.Open(filepath.Join(spec[5:], "store.db"), bolt.Options{})
	case "redis":
		st, err = redis.Open(ctx, spec[len("redis:"):])
	default:
		t.Fatalf("bad SMSG_MX_BENCH %q", spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.CreateAccount(ctx, "rcpt@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPublicKey(ctx, a.ID, mxAliceKey(t).PublicBinary()); err != nil {
		t.Fatal(err)
	}
	m := NewMX(MXConfig{
		Domains: []string{"example.org"}, Hostname: "mx.example.org", Resolver: dnsres.NewStatic(),
		ConnsPerSource: 1000, CommandsPerMinute: 1 << 30,
	}, st, logging.New(os.Stderr, 0))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("SMSG_MX_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Printf("ADDR %s\n", l.Addr())
	secs := 300
	fmt.Sscan(os.Getenv("SMSG_MX_BENCH_SECONDS"), &secs)
	go func() {
		time.Sleep(time.Duration(secs) * time.Second)
		m.Close()
	}()
	_ = m.Serve(l)
	n, _ := st.ListMessages(ctx, a.ID, "INBOX", 1)
	fmt.Printf("STORED %d\n", len(n))
}
