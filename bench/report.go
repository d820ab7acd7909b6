package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where and when a run happened.
type machine struct {
	date    time.Time
	nproc   int
	memKB   int64
	loadavg string // /proc/loadavg's first three fields at start
	uptime  string
	cpu     string
	wall    time.Duration
}

func machineNow() machine {
	m := machine{date: time.Now().UTC(), nproc: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.memKB, _ = parseStatusKB(string(b), "MemTotal")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("uptime").Output(); err == nil {
		m.uptime = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(l, "model name"); ok {
				m.cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

// reportNotes explain how to read the table; they go under it in
// BENCHMARKS.md.
var reportNotes = []string{
	"ratio is ours / peer in the row's unit: for msgs/s and MB/s above 1 is better for us, for seconds and MB below 1 is.",
	"The peers run in the same `make bench` run on the same machine, through the shared scripts in ../shared/bench (called, not copied).",
	"MX rows: smtp_bench.py's smtp-source (HELO, no pipelining, ~250 B headers + 10,240 B payload) aimed at our MX, which checks SPF/DKIM/DMARC (static resolver: the machine has no DNS), seals header and body blobs to the recipient's key and commits to bbolt (fsync, group commit) before 250. The Redis row is the same MX on a second node whose store is a fresh redis-server (unix socket, appendonly yes, appendfsync always: an fsync before every reply), loaded right after the sink, against whose figure its ratio is taken. The peer is smtp-sink, which stores nothing: the bare SMTP ceiling. The node runs as its own process (`bench node`) with the per-source limits lifted, since every sender is 127.0.0.1.",
	"Submission: 8 go-smtp clients, AUTH PLAIN, each on one connection, to the bridge's submission server; every message is routed as internal mail (sealed to bob, delivered through the API, plus a sealed Sent copy for alice) and acknowledged after both commits. The peer row is smtp-source -d with 8 sessions against smtp-sink (ceiling, no work behind it).",
	"IMAP rows: the same client program (dovecot_imap.py: Python imaplib, a raw socket reader and go-imap v2) against the bridge's imapd and against a private Dovecot over the same Maildir corpus (gen_corpus.py, seed 42). The bridge runs as its own process (`bench bridge`) with background prefetch off, so the first body download fetches and decrypts on demand; medians over -runs include later runs served from the bridge's encrypted local cache.",
	"CLI bridge rows: the real `smessenger bridge run` binary (built from ./cmd/smessenger, default settings, so background prefetch is on) on a fresh login of a third device of the same account; its cold sync is timed from process start until IMAP STATUS INBOX shows the whole corpus (polled every 100 ms), then dovecot_imap.py runs once against it (--runs 1 --no-go).",
	"Cold first sync: ours is bridge.Open + Account.Run until WaitSynced on an empty cache (list, download and decrypt 5,000 header blobs over TLS + Noise); Dovecot's is its first LOGIN+SELECT+FETCH on a fresh index. They are not the same work: ours includes the network download and decryption.",
	"Seal/open: ours is package pgp in process on one core (GOMAXPROCS=1), binary, one recipient, unsigned; v1 = SEIPDv1 (MDC), v2 = SEIPDv2 AES-256-GCM. go-crypto v6 uses OCB. gpg starts one process per message (spawn and agent included) and writes armor.",
	"Idle streams: a fresh node process with N devices registered in its store; this process opens one TLS + Noise channel and one event stream per device. RSS is the node's alone (VmRSS after all streams are live).",
	"The machine is shared with other engineers' test runs: compare ratios, not absolute numbers, and expect ±30% noise.",
}

// writeReport writes BENCHMARKS.md: machine, command, table, notes.
func writeReport(path string, m machine, rows []row, notes []string, argv []string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmarks\n\nThe latest `make bench` run, written by `go run ./bench -md BENCHMARKS.md`. ")
	fmt.Fprintf(&b, "Rerun it with `make bench` (needs root the first time, to install Dovecot through ../shared/bench/setup.sh; smtp-source/smtp-sink come from the postfix .deb, unpacked by smtp_bench.py).\n\n")
	fmt.Fprintf(&b, "## Machine and run\n\n")
	fmt.Fprintf(&b, "- date: %s\n", m.date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- CPU: %s, nproc %d; memory %.1f GiB\n", m.cpu, m.nproc, float64(m.memKB)/(1<<20))
	fmt.Fprintf(&b, "- load average at start: %s (`uptime`: %s)\n", m.loadavg, m.uptime)
	fmt.Fprintf(&b, "- %s; wall time of the run %s\n", runtime.Version(), m.wall.Round(time.Second))
	fmt.Fprintf(&b, "- command: `make bench` = `%s`\n\n", strings.Join(append([]string{"go run ./bench"}, argv[1:]...), " "))
	fmt.Fprintf(&b, "## Table\n\n")
	writeTable(&b, rows)
	fmt.Fprintf(&b, "\n## How to read it\n\n")
	for _, n := range reportNotes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n## This run\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
