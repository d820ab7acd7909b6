package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// gnupg is a throw-away GnuPG home.
type gnupg struct {
	bin, home string
}

func newGnuPG(t *testing.T, bin string) *gnupg {
	t.Helper()
	// A short path: gpg-agent's socket path has a small length limit.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &gnupg{bin: bin, home: home}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return g
}

func (g *gnupg) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out, _ := g.runStatus(t, stdin, args...)
	return out
}

// runStatus runs gpg and returns its output and its --status-fd lines.
func (g *gnupg) runStatus(t *testing.T, stdin []byte, args ...string) ([]byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, append([]string{"--homedir", g.home, "--batch", "--no-tty",
		"--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "2"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes(), errb.String()
}

// genKey makes a key without passphrase for address and returns its
// armored public key.
func (g *gnupg) genKey(t *testing.T, address string) []byte {
	t.Helper()
	g.run(t, nil, "--quick-gen-key", "Carol <"+address+">", "future-default", "default", "never")
	return g.run(t, nil, "--armor", "--export", address)
}

// importKey imports a public key (binary or armored).
func (g *gnupg) importKey(t *testing.T, key []byte) {
	t.Helper()
	g.run(t, key, "--import")
}

// decrypt decrypts an armored OpenPGP message; it returns the plaintext
// and gpg's status lines (GOODSIG etc.).
func (g *gnupg) decrypt(t *testing.T, msg []byte) (string, string) {
	t.Helper()
	out, status := g.runStatus(t, msg, "--decrypt")
	return string(out), status
}
