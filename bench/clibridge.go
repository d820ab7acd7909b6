package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
)

// errNotSynced reports a bridge whose INBOX did not reach the corpus size.
var errNotSynced = errors.New("bench: bridge did not finish its first sync in time")

// cliResult is what the run of the real `smessenger bridge run` gave.
type cliResult struct {
	syncSecs float64 // process start until IMAP STATUS shows the whole corpus
	syncHWM  int64   // VmHWM then, KiB
	hwm      int64   // VmHWM after one IMAP client pass (bodies, search), KiB
	imap     figures
	err      error
}

// cliBridge measures the command-line bridge as users run it (default
// settings: background prefetch on): it builds ./cmd/smessenger, logs a
// third device of alice in (fresh, empty cache), starts `smessenger bridge
// run`, times its cold first sync from process start by polling IMAP
// STATUS until INBOX holds the whole corpus, then runs the IMAP client
// script once against it and keeps its peak RSS.
func (r *run) cliBridge() {
	defer r.step("bridge CLI (smessenger bridge run): cold sync + one IMAP pass")()
	res := &r.cli
	bin := filepath.Join(r.dir, "smessenger")
	if err := buildCLI(bin); err != nil {
		res.err = err
		return
	}
	dir := filepath.Join(r.dir, "alice-cli")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	armored, err := r.aliceKey.ExportPrivate(benchPass)
	if err != nil {
		res.err = err
		return
	}
	cfg := r.login(alice, dir, armored)
	cfg.Token = r.nodeInfo.Tokens[alice][2]
	login, err := bridge.Login(ctx, cfg)
	if err != nil {
		res.err = err
		return
	}
	cmd := exec.CommandContext(ctx, bin, "bridge", "run", "--data", dir, "--imap-listen", "127.0.0.1:0",
		"--smtp-listen", "", "--no-wkd", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SMESSENGER_PASSPHRASE="+string(benchPass))
	logf, err := os.Create(filepath.Join(r.logDir, "bridge-cli.log"))
	if err != nil {
		res.err = err
		return
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		res.err = err
		return
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.err = err
		return
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	addr, err := listeningOn(stdout, "imap", 60*time.Second)
	if err != nil {
		res.err = err
		return
	}
	if err := waitInbox(ctx, addr, alice, login.BridgePassword, r.info.N); err != nil {
		res.err = err
		return
	}
	res.syncSecs = time.Since(start).Seconds()
	res.syncHWM, _ = procStatusKB(cmd.Process.Pid, "VmHWM")
	res.imap, res.err = r.sc.imapOnce("imap-target-cli", addr, alice, login.BridgePassword, cmd.Process.Pid)
	res.hwm, _ = procStatusKB(cmd.Process.Pid, "VmHWM")
}

// errBuild reports that ./cmd/smessenger did not build.
var errBuild = errors.New("bench: cannot build ./cmd/smessenger")

// buildCLI builds the module's ./cmd/smessenger into bin, from the module
// root whatever the working directory.
func buildCLI(bin string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("%w: no module (go env GOMOD: %v)", errBuild, err)
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/smessenger")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %v: %s", errBuild, err, firstLine(string(out)))
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// listeningOn reads the bridge's stdout until it prints "<name> listening
// on ADDR" and returns ADDR; the rest of stdout is drained in the background.
func listeningOn(stdout io.Reader, name string, timeout time.Duration) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), name+" listening on "); ok && !sent {
				found <- strings.TrimSpace(a)
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return "", fmt.Errorf("bench: the bridge exited without listening for %s", name)
		}
		return a, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("bench: the bridge did not listen for %s within %s", name, timeout)
	}
}

// waitInbox polls STATUS INBOX every 100 ms until it holds want messages.
func waitInbox(ctx context.Context, addr, user, pass string, want int) error {
	var last uint32
	for ctx.Err() == nil {
		n, err := inboxCount(addr, user, pass)
		if err == nil && n >= uint32(want) {
			return nil
		}
		last = n
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: INBOX has %d of %d", errNotSynced, last, want)
}

func inboxCount(addr, user, pass string) (uint32, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		return 0, err
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil {
		return 0, fmt.Errorf("bench: STATUS INBOX: %v", err)
	}
	return *st.NumMessages, nil
}
