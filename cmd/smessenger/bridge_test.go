package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/channel"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/pgp"
)

// bridgeEnv is a real server node with one user whose bridge was set up by
// `smessenger bridge login`.
type bridgeEnv struct {
	dir, passFile, address, password string
	server                           *servertest.Env
}

var passwordLine = regexp.MustCompile(`(?m)^Password\s+(\S+)$`)

func loginBridge(t *testing.T) bridgeEnv {
	t.Helper()
	t.Setenv(passphraseEnv, "")
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	addr := "dave@" + servertest.Domain
	_, tok := env.AddUser(t, addr)
	e := bridgeEnv{dir: filepath.Join(t.TempDir(), "bridge"), passFile: filepath.Join(t.TempDir(), "pass"), address: addr, server: env}
	if err := os.WriteFile(e.passFile, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run([]string{"bridge", "login", addr, "--server", env.Node.APIAddr().String(),
		"--server-key", channel.Fingerprint(env.ServerKey), "--token", tok, "--name", "Dave",
		"--data", e.dir, "--passphrase-file", e.passFile}, &out, &errOut)
	if err != nil {
		t.Fatalf("bridge login: %v\n%s", err, errOut.String())
	}
	m := passwordLine.FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "127.0.0.1:1143") || !strings.Contains(out.String(), "local-cert.pem") {
		t.Fatalf("login output lacks the client settings:\n%s", out.String())
	}
	e.password = m[1]
	return e
}

func (e bridgeEnv) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(append(args, "--data", e.dir, "--passphrase-file", e.passFile), &out, &errOut)
	return out.String(), err
}

// TestBridgeCommands drives login, key export/import and the contacts
// commands in process against a real server node, and `bridge run` as a
// real process that a real IMAP client logs in to.
func TestBridgeCommands(t *testing.T) {
	e := loginBridge(t)

	t.Run("login again refuses", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run([]string{"bridge", "login", e.address, "--server", "127.0.0.1:1", "--server-key", "x",
			"--token", "t", "--data", e.dir, "--passphrase-file", e.passFile}, &out, &errOut)
		if !errors.Is(err, bridge.ErrVaultExists) {
			t.Fatalf("second login: %v, want ErrVaultExists", err)
		}
	})
	t.Run("key export and import", func(t *testing.T) { testKeyCommands(t, e) })
	t.Run("contacts", func(t *testing.T) { testContactsCommands(t, e) })
	t.Run("no passphrase source", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run([]string{"bridge", "contacts", "list", "--data", e.dir}, &out, &errOut)
		if !errors.Is(err, errNoPassphrase) {
			t.Fatalf("got %v, want errNoPassphrase", err)
		}
	})
	t.Run("flags from the TOML config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "bridge.toml")
		toml := "data = " + strconv.Quote(e.dir) + "\npassphrase_file = " + strconv.Quote(e.passFile) + "\n"
		if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if err := run([]string{"--config", cfg, "bridge", "contacts", "list"}, &out, &errOut); err != nil {
			t.Fatalf("contacts list with --config: %v", err)
		}
		if !strings.HasPrefix(out.String(), "ADDRESS") {
			t.Fatalf("unexpected output:\n%s", out.String())
		}
	})
	t.Run("run serves IMAP until SIGINT", func(t *testing.T) { testBridgeRun(t, e) })
}

func testKeyCommands(t *testing.T, e bridgeEnv) {
	out := filepath.Join(t.TempDir(), "key.asc")
	if _, err := e.run(t, "bridge", "key", "export", "--out", out); err != nil {
		t.Fatalf("export: %v", err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v, mode %v", err, st)
	}
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		t.Fatalf("export is not an armored secret key: %.60q", b)
	}
	if _, err := e.run(t, "bridge", "key", "export", "--out", out); err == nil {
		t.Error("export overwrote an existing file")
	}
	var text, eo bytes.Buffer
	err = run([]string{"bridge", "key", "import", out, "--passphrase-file", e.passFile}, &text, &eo)
	if err != nil || !strings.Contains(text.String(), e.address) {
		t.Fatalf("import check: %v\n%s", err, text.String())
	}
	// A second device of the same account logs in with the exported key.
	tok, err := server.NewEnrolToken(context.Background(), e.server.Store, e.address, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lo, le bytes.Buffer
	err = run([]string{"bridge", "login", e.address, "--server", e.server.Node.APIAddr().String(),
		"--server-key", channel.Fingerprint(e.server.ServerKey), "--token", tok, "--import-key", out,
		"--import-passphrase-file", e.passFile, "--data", filepath.Join(t.TempDir(), "second"),
		"--passphrase-file", e.passFile}, &lo, &le)
	if err != nil {
		t.Fatalf("second device login: %v", err)
	}
	if fp := fingerprintIn(text.String()); fp == "" || !strings.Contains(lo.String(), fp) {
		t.Errorf("second device does not use the exported key:\n%s\n%s", text.String(), lo.String())
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not it\n"), 0o600)
	var o bytes.Buffer
	err = run([]string{"bridge", "key", "export", "--data", e.dir, "--passphrase-file", wrong}, &o, &eo)
	if !errors.Is(err, bridge.ErrWrongPassphrase) || o.Len() != 0 {
		t.Fatalf("export with a wrong passphrase: %v (output %d bytes)", err, o.Len())
	}
}

func testContactsCommands(t *testing.T, e bridgeEnv) {
	carol, err := pgp.GenerateKey("Carol", "carol@outside.test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "carol.asc")
	os.WriteFile(keyFile, []byte(carol.Public().PublicArmored()), 0o644)
	garbage := filepath.Join(t.TempDir(), "garbage.asc")
	os.WriteFile(garbage, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n"), 0o644)

	if _, err := e.run(t, "bridge", "contacts", "import", garbage); err == nil {
		t.Error("importing garbage succeeded")
	}
	if out, err := e.run(t, "bridge", "contacts", "import", keyFile); err != nil || !strings.Contains(out, carol.Fingerprint()) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, err := e.run(t, "bridge", "contacts", "list")
	if err != nil || !strings.Contains(out, "carol@outside.test") || !strings.Contains(out, bridge.SourceKeyring) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := e.run(t, "bridge", "contacts", "trust", "carol@outside.test"); !errors.Is(err, bridge.ErrNothingToTrust) {
		t.Errorf("trust without a changed key: %v, want ErrNothingToTrust", err)
	}
	if _, err := e.run(t, "bridge", "contacts", "remove", "carol@outside.test"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := e.run(t, "bridge", "contacts", "remove", "carol@outside.test"); !errors.Is(err, bridge.ErrContactNotFound) {
		t.Errorf("second remove: %v, want ErrContactNotFound", err)
	}
	if out, _ := e.run(t, "bridge", "contacts", "list"); strings.Contains(out, "carol@") {
		t.Errorf("carol still listed after remove:\n%s", out)
	}
}

var fingerprintRE = regexp.MustCompile(`Key ([0-9A-F]{40,64})`)

func fingerprintIn(s string) string {
	if m := fingerprintRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

var listenLine = regexp.MustCompile(`^imap listening on (\S+)$`)

func testBridgeRun(t *testing.T, e bridgeEnv) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "bridge", "--data", e.dir, "--imap-listen", "127.0.0.1:0", "--smtp-listen", "127.0.0.1:0", "--no-wkd")
	cmd.Env = append(os.Environ(), passphraseEnv+"=correct horse battery staple")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not report its IMAP port in 30 s: %s", stderr.String())
	}
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(e.address, "wrong password").Wait(); err == nil {
		t.Error("IMAP login with a wrong password succeeded")
	}
	if err := c.Login(e.address, e.password).Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select INBOX: %v", err)
	}
	c.Close()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bridge exit after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bridge did not stop in 30 s after SIGINT")
	}
	if strings.Contains(stderr.String(), "127.0.0.1") {
		t.Errorf("the bridge logged an IP address:\n%s", stderr.String())
	}
}
