package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// scripts runs the shared peer scripts in ../shared/bench; it calls them,
// it does not copy them.
type scripts struct {
	dir    string // the shared bench folder
	work   string // BENCH_WORK for the scripts
	corpus string // BENCH_CORPUS
	logDir string // each run's full output is kept here
}

// run executes one script with a hard timeout and returns its figures.
// The script's full output is kept in logDir/<name>.txt.
func (s scripts) run(name string, timeout time.Duration, argv ...string) (figures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "BENCH_WORK="+s.work, "BENCH_CORPUS="+s.corpus)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(s.logDir, name+".txt"), out.Bytes(), 0o644)
	figs := parseFigures(bytes.NewReader(out.Bytes()))
	if err != nil {
		return figs, fmt.Errorf("bench: %s: %w (output in %s)", name, err, filepath.Join(s.logDir, name+".txt"))
	}
	if line := skippedLine(out.String()); line != "" {
		return figs, fmt.Errorf("bench: %s skipped: %s", name, line)
	}
	return figs, nil
}

// skippedLine returns a script's "..._skipped why" line, if any.
func skippedLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], "_skipped") {
			return strings.TrimSpace(strings.TrimPrefix(l, f[0]))
		}
	}
	return ""
}

// setup installs Dovecot (and GnuPG) through the shared setup.sh when they
// are missing; it needs root, like the script.
func (s scripts) setup() error {
	if _, err := os.Stat("/usr/lib/dovecot/imap"); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench: Dovecot is missing and setup.sh needs root: run `sudo bash %s/setup.sh`", s.dir)
	}
	_, err := s.run("setup", 5*time.Minute, "bash", "setup.sh")
	return err
}

// smtp runs smtp_bench.py: against target if set, else smtp-source against
// its own smtp-sink (the peer).
func (s scripts) smtp(name, target string, runs, messages, sessions, size int, smtplib bool) (figures, error) {
	args := []string{"python3", "smtp_bench.py", "--runs", fmt.Sprint(runs), "--messages", fmt.Sprint(messages),
		"--sessions", fmt.Sprint(sessions), "--size", fmt.Sprint(size), "--run-timeout", "120",
		"--max-seconds", "400", "--from", "bench@sender.test", "--to", "bob@" + benchDomain}
	if target != "" {
		args = append(args, "--target", target)
	}
	if !smtplib {
		args = append(args, "--no-smtplib")
	}
	return s.run(name, 420*time.Second, args...)
}

// imap runs dovecot_imap.py: against target (with the process to sample)
// if set, else against its own private Dovecot (the peer).
func (s scripts) imap(name, target, user, pass string, pid, runs int) (figures, error) {
	args := []string{"python3", "dovecot_imap.py", "--runs", fmt.Sprint(runs), "--max-seconds", "400"}
	if target != "" {
		args = append(args, "--target", target, "--user", user, "--password", pass, "--pid", fmt.Sprint(pid))
	}
	return s.run(name, 420*time.Second, args...)
}

// imapOnce runs dovecot_imap.py once against target, without the go-imap
// client (a second bridge's pass: its figures and peak RSS).
func (s scripts) imapOnce(name, target, user, pass string, pid int) (figures, error) {
	return s.run(name, 300*time.Second, "python3", "dovecot_imap.py", "--runs", "1", "--no-go", "--max-seconds", "280",
		"--target", target, "--user", user, "--password", pass, "--pid", fmt.Sprint(pid))
}

// crypto runs crypto_bench.sh (go-crypto in process, then gpg_bench.py).
func (s scripts) crypto() (figures, error) {
	return s.run("crypto", 360*time.Second, "bash", "crypto_bench.sh", "-armor", "binary")
}
