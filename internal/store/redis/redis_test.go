package redis

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
	"smessenger/internal/store/storetest"
	"smessenger/internal/testutil/redistest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// flushing returns a newStore that hands out stores on one shared server (or
// cluster) emptied before each use: starting a server per subtest is slower
// and the suite runs its subtests one after another.
func flushing(url string) func(t *testing.T) store.Store {
	return func(t *testing.T) store.Store {
		s, err := Open(ctxT(t), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		flushAll(t, s)
		return s
	}
}

func flushAll(t testing.TB, s *Store) {
	t.Helper()
	ctx := ctxT(t)
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.FlushAll(ctx).Err()
		})
	} else {
		err = s.rdb.FlushAll(ctx).Err()
	}
	if err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, flushing(redistest.Start(t)))
}

func TestConcurrency(t *testing.T) {
	storetest.RunConcurrency(t, flushing(redistest.Start(t)))
}

func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster suite skipped in -short mode")
	}
	nodes := redistest.StartCluster(t, 3)
	storetest.Run(t, flushing("redis+cluster://"+strings.Join(nodes, ",")))
}

// TestKillKeepsAcknowledged crashes redis-server (SIGKILL) right after an
// acknowledged Append and checks the message is back after a restart on the
// same append-only file.
func TestKillKeepsAcknowledged(t *testing.T) {
	srv := redistest.StartServer(t, t.TempDir())
	ctx := ctxT(t)
	s, err := Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "kill@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 5, HeaderBlob: []byte("h"), BodyBlob: []byte("body!")})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	s2, err := Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.GetMessage(ctx, a.ID, "INBOX", m.UID)
	if err != nil {
		t.Fatalf("message lost after SIGKILL: %v", err)
	}
	body, err := s2.BodyBlob(ctx, a.ID, got.ID)
	if err != nil || string(body) != "body!" {
		t.Fatalf("body after restart = %q, %v", body, err)
	}
	if id, err := s2.LookupAddress(ctx, "kill@example.org"); err != nil || id != a.ID {
		t.Fatalf("directory after restart: %q, %v", id, err)
	}
}

func TestCheckDurability(t *testing.T) {
	ctx := ctxT(t)
	good, err := Open(ctx, redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	w, err := good.CheckDurability(ctx)
	if err != nil || len(w) != 0 {
		t.Fatalf("durable server: warnings %q, err %v", w, err)
	}

	lax := redistest.StartServer(t, t.TempDir(), "--appendfsync", "everysec")
	bad, err := Open(ctx, lax.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	w, err = bad.CheckDurability(ctx)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "appendfsync") {
		t.Fatalf("everysec server: warnings %q, err %v", w, err)
	}
}

func TestOpenURLs(t *testing.T) {
	for _, bad := range []string{"", "http://x", "redis://h:1/notanumber", "h1:1,", "redis+cluster://"} {
		if s, err := Open(ctxT(t), bad); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	single, cluster, err := parseURL("redis://127.0.0.1:6379/2")
	if err != nil || cluster != nil || single.DB != 2 || single.PoolSize != poolSize {
		t.Fatalf("parseURL redis:// = %+v, %v, %v", single, cluster, err)
	}
	_, cluster, err = parseURL("127.0.0.1:7000,127.0.0.1:7001")
	if err != nil || cluster == nil || len(cluster.Addrs) != 2 {
		t.Fatalf("parseURL node list = %+v, %v", cluster, err)
	}
	_, cluster, err = parseURL("redis+cluster://127.0.0.1:7000")
	if err != nil || cluster == nil || len(cluster.Addrs) != 1 {
		t.Fatalf("parseURL redis+cluster = %+v, %v", cluster, err)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// BenchmarkStore runs the shared benchmarks on a durable standalone server
// (appendonly yes, appendfsync always).
//
// Stores are closed when the whole benchmark ends, not with the sub-benchmark
// that made them: the suite builds its List and EventsSince fixtures once and
// reuses them across b.N rounds, and testing runs a sub-benchmark's cleanups
// after every round.
func BenchmarkStore(b *testing.B) {
	url := redistest.Start(b)
	outer := b
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store {
		s, err := Open(context.Background(), url)
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		outer.Cleanup(func() { s.Close() })
		flushAll(b, s)
		return s
	})
}
