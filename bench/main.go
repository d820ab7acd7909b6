// Command bench runs sMessenger's benchmark suite on this machine and
// prints one table, figure | ours | peer | ratio, with the peers measured in
// the same run by the shared scripts in ../shared/bench (Postfix's
// smtp-source/smtp-sink, a private Dovecot over the same synthetic corpus,
// go-crypto and GnuPG). `make bench` runs it; BENCHMARKS.md holds a real
// run's output.
//
// What is measured: the MX (SMTP, RFC 5321) accepting 10 KB messages from
// 20 concurrent senders with sealing (OpenPGP, RFC 4880/9580) and a durable
// bbolt commit; internal submission (RFC 6409) through a bridge; a bridge's
// cold first sync, warm header fetch, full body download and SEARCH TEXT
// over IMAP (RFC 9051) on the 5,000-message corpus; seal/open throughput;
// peak RSS of the server node and the bridge, each its own process, and
// the server's RSS with 10,000 idle device event streams.
//
// The same executable also runs the helper processes: `bench node` (a server
// node with its MX) and `bench bridge` (a bridge with imapd and submission).
// Everything listens on 127.0.0.1; every load is bounded in count and time.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// options are the command line of the orchestrator.
type options struct {
	shared      string
	work        string
	md          string
	n           int
	runs        int
	mxMessages  int
	mxRuns      int
	subMessages int
	idle        int
	skipPeers   bool
	skipCrypto  bool
	skipIdle    bool
	mxOnly      bool
}

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "node":
			err = runNode(os.Args[2:])
		case "bridge":
			err = runBridge(os.Args[2:])
		default:
			err = runMain(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := runMain(nil); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	work := os.Getenv("BENCH_WORK")
	if work == "" {
		work = filepath.Join(os.TempDir(), "smessenger-bench")
	}
	fs.StringVar(&o.shared, "shared", "../shared/bench", "folder of the shared peer scripts")
	fs.StringVar(&o.work, "work", work, "work folder (corpus, data folders, logs); BENCH_WORK")
	fs.StringVar(&o.md, "md", "", "also write the report (machine, command, table, notes) to this Markdown file")
	fs.IntVar(&o.n, "n", 5000, "corpus size (messages)")
	fs.IntVar(&o.runs, "runs", 3, "IMAP runs per figure (medians), for us and Dovecot")
	fs.IntVar(&o.mxMessages, "mx-messages", 5000, "messages per smtp-source run against the MX and the sink (smtp_bench.py's default)")
	fs.IntVar(&o.mxRuns, "mx-runs", 5, "smtp_bench.py runs per MX figure, ours and the sink's; each figure is their median (smtp_bench.py's default)")
	fs.IntVar(&o.subMessages, "sub-messages", 400, "messages of the submission load")
	fs.IntVar(&o.idle, "idle", 10000, "idle device event streams (0: skip)")
	fs.BoolVar(&o.skipPeers, "skip-peers", false, "measure only our side")
	fs.BoolVar(&o.skipCrypto, "skip-crypto", false, "skip the seal/open figures")
	fs.BoolVar(&o.mxOnly, "mx-only", false, "only the MX load and its smtp-sink peer (a quick check of the MX ratio)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.skipIdle = o.idle <= 0
	if o.mxOnly {
		o.skipIdle, o.skipCrypto = true, true
	}
	if o.n <= 0 || o.runs <= 0 || o.mxMessages <= 0 || o.mxRuns <= 0 || o.subMessages <= 0 {
		return o, fmt.Errorf("bench: -n, -runs, -mx-messages, -mx-runs and -sub-messages must be positive")
	}
	abs, err := filepath.Abs(o.shared)
	if err != nil {
		return o, err
	}
	o.shared = abs
	if _, err := os.Stat(filepath.Join(o.shared, "dovecot_imap.py")); err != nil {
		return o, fmt.Errorf("bench: shared scripts not found in %s (use -shared)", o.shared)
	}
	return o, nil
}

func runMain(args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	raiseFileLimit()
	m := machineNow()
	start := time.Now()
	r, err := newRun(o)
	if err != nil {
		return err
	}
	defer r.cleanup()
	r.all()
	rows := r.rows()
	m.wall = time.Since(start)
	writeTable(os.Stdout, rows)
	for _, n := range r.notes {
		fmt.Println("- " + n)
	}
	fmt.Printf("\nwall time %s; logs in %s\n", m.wall.Round(time.Second), r.logDir)
	if o.md != "" {
		return writeReport(o.md, m, rows, r.notes, os.Args)
	}
	return nil
}
