package pgp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric: the CPU time one operation costs,
// GC included. The machine is shared, so ns/op (wall time) swings with
// the load of others; CPU time is what "on one core" means. Call the
// returned function after the b.Loop loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

var benchSizes = []struct {
	name string
	n    int
}{{"4KB", 4 << 10}, {"64KB", 64 << 10}, {"1MB", 1 << 20}, {"10MB", 10 << 20}}

func benchPayload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// BenchmarkSeal seals to one recipient, unsigned, binary, in both
// encryption modes (v1: SEIPDv1/MDC for interop; v2: SEIPDv2 AES-256-GCM
// between our own users).
func BenchmarkSeal(b *testing.B) {
	bob := testKey(b, "bob@example.org").Public()
	for _, mode := range []bool{false, true} {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", modeName(mode), sz.name), func(b *testing.B) {
				msg := benchPayload(sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				done := reportCPU(b)
				for b.Loop() {
					if _, err := Seal(msg, []*Key{bob}, SealOptions{AEAD: mode}); err != nil {
						b.Fatal(err)
					}
				}
				done()
			})
		}
	}
}

func modeName(aead bool) string {
	if aead {
		return "v2"
	}
	return "v1"
}

func BenchmarkOpen(b *testing.B) {
	bob := testKey(b, "bob@example.org")
	for _, mode := range []bool{false, true} {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", modeName(mode), sz.name), func(b *testing.B) {
				ct, err := Seal(benchPayload(sz.n), []*Key{bob.Public()}, SealOptions{AEAD: mode})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				done := reportCPU(b)
				for b.Loop() {
					if _, err := Open(ct, bob, OpenOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				done()
			})
		}
	}
}

// BenchmarkSealSigned10KB: the target case, a 10 KB message to one
// recipient, signed and unsigned.
func BenchmarkSeal10KB(b *testing.B) {
	alice, bob := testKey(b, "alice@example.org"), testKey(b, "bob@example.org").Public()
	msg := benchPayload(10 << 10)
	for _, signer := range []*Key{nil, alice} {
		name := "unsigned"
		if signer != nil {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			done := reportCPU(b)
			for b.Loop() {
				if _, err := Seal(msg, []*Key{bob}, SealOptions{Signer: signer, AEAD: true}); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

func BenchmarkSealMessage10KB(b *testing.B) {
	bob := testKey(b, "bob@example.org").Public()
	raw := fixture(b, "attachment.eml")
	raw = append(raw[:len(raw):len(raw)], bytes.Repeat([]byte("filler line of text\r\n"), (10<<10-len(raw))/21)...)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	done := reportCPU(b)
	for b.Loop() {
		if _, _, _, err := SealMessage(raw, []*Key{bob}, SealOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

func BenchmarkGenerateKey(b *testing.B) {
	b.ReportAllocs()
	done := reportCPU(b)
	for b.Loop() {
		if _, err := GenerateKey("Bench", "bench@example.org"); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

// patternReader yields n bytes without holding them, so the benchmark
// measures SealStream's memory rather than the source's.
type patternReader struct{ left int }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	r.left -= n
	return n, nil
}

// BenchmarkSealStream10MB streams 10 MB through SealStream into a
// discarding writer; B/op shows memory that does not grow with the size.
func BenchmarkSealStream10MB(b *testing.B) {
	bob := testKey(b, "bob@example.org").Public()
	const n = 10 << 20
	for _, mode := range []bool{false, true} {
		b.Run(modeName(mode), func(b *testing.B) {
			b.SetBytes(n)
			b.ReportAllocs()
			buf := make([]byte, 32<<10)
			done := reportCPU(b)
			for b.Loop() {
				w, err := SealStream(io.Discard, []*Key{bob}, SealOptions{AEAD: mode})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(w, &patternReader{left: n}, buf); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// BenchmarkOpenStream10MB reads a 10 MB SEIPDv2 message through
// OpenStream, the streaming path whose memory does not grow with size.
func BenchmarkOpenStream10MB(b *testing.B) {
	bob := testKey(b, "bob@example.org")
	const n = 10 << 20
	var ct bytes.Buffer
	w, _ := SealStream(&ct, []*Key{bob.Public()}, SealOptions{AEAD: true})
	_, _ = io.Copy(w, &patternReader{left: n})
	_ = w.Close()
	b.SetBytes(n)
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	done := reportCPU(b)
	for b.Loop() {
		r, _, err := OpenStream(bytes.NewReader(ct.Bytes()), bob, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
	}
	done()
}

// BenchmarkSummarize10KB: what the MX pays per message before sealing, for
// a 10 KB plain-text message of the kind its benchmark sends, and for a
// multipart one with an attachment.
func BenchmarkSummarize10KB(b *testing.B) {
	plain := []byte("From: Bob <bob@sender.test>\r\nTo: alice@example.org\r\nSubject: bench\r\n" +
		"Date: Sat, 01 Jun 2024 12:00:00 +0000\r\nMessage-ID: <1@sender.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		strings.Repeat(strings.Repeat("x", 99)+"\r\n", 100))
	multi := fixture(b, "attachment.eml")
	multi = append(multi[:len(multi):len(multi)], bytes.Repeat([]byte("filler line of text\r\n"), (10<<10-len(multi))/21)...)
	for _, c := range []struct {
		name string
		raw  []byte
	}{{"plain", plain}, {"multipart", multi}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SummarizeLimited(c.raw, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
