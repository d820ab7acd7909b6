package imapd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// benchCorpus loads the shared benchmark corpus (../../shared/bench, 5,000
// messages, ~159 MB), generating it once under $BENCH_CORPUS or
// /tmp/mailbench/corpus if needed, into a memView's INBOX.
func benchCorpus(b *testing.B) *memView {
	b.Helper()
	dir := os.Getenv("BENCH_CORPUS")
	if dir == "" {
		dir = "/tmp/mailbench/corpus"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "eml", "*.eml"))
	if len(files) < 5000 {
		gen := filepath.Join("..", "..", "shared", "bench", "gen_corpus.py")
		if out, err := exec.Command("python3", gen, "--n", "5000", "--out", dir).CombinedOutput(); err != nil {
			b.Skipf("corpus generator unavailable: %v %s", err, out)
		}
		files, _ = filepath.Glob(filepath.Join(dir, "eml", "*.eml"))
	}
	sort.Strings(files)
	v := newMemView()
	ctx := context.Background()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		crlf := []byte(strings.ReplaceAll(string(raw), "\n", "\r\n"))
		if _, _, err := v.Append(ctx, "INBOX", crlf, nil, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return v
}

func benchClient(b *testing.B, v *memView) *imapclient.Client {
	env := newTestEnvView(b, v, nil)
	c := env.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkIMAP measures, over the 5,000-message corpus: the warm
// Thunderbird header fetch, the full body download and SEARCH TEXT.
func BenchmarkIMAP(b *testing.B) {
	v := benchCorpus(b)
	c := benchClient(b, v)
	all := imap.UIDSet{{Start: 1, Stop: 0}}
	b.Run("HeaderFetch", func(b *testing.B) {
		opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
			BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
		for b.Loop() {
			n := 0
			cmd := c.Fetch(all, opts)
			for m := cmd.Next(); m != nil; m = cmd.Next() {
				m.Collect()
				n++
			}
			if err := cmd.Close(); err != nil || n != 5000 {
				b.Fatalf("%v, %d messages", err, n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/fetch")
	})
	b.Run("BodyFetch", func(b *testing.B) {
		opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
		var bytes int64
		for b.Loop() {
			cmd := c.Fetch(all, opts)
			for m := cmd.Next(); m != nil; m = cmd.Next() {
				for item := m.Next(); item != nil; item = m.Next() {
					if bs, ok := item.(imapclient.FetchItemDataBodySection); ok {
						n, _ := readAllCount(bs.Literal)
						bytes += n
					}
				}
			}
			if err := cmd.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
	})
	b.Run("SearchText", func(b *testing.B) {
		var hits int
		for b.Loop() {
			data, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"zephyrquux"}}, nil).Wait()
			if err != nil {
				b.Fatal(err)
			}
			hits = len(data.AllUIDs())
		}
		if hits == 0 {
			b.Fatal("SEARCH TEXT found nothing")
		}
		b.ReportMetric(float64(hits), "hits")
	})
}

func readAllCount(r interface{ Read([]byte) (int, error) }) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}
