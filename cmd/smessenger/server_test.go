package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerInitUserAndPrintConfig drives the admin commands on a fresh
// data folder: init, user add/list, alias add, and --print-config reading
// the folder's config.toml with a flag overriding one key.
func TestServerInitUserAndPrintConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "srv")
	var out, errOut bytes.Buffer
	mustRun := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	init := mustRun("server", "init", "--data-dir", dir, "--public-address", "127.0.0.1:7443", "--domains", "example.test")
	if !strings.Contains(init, "--server-key ") {
		t.Fatalf("init output lacks the server key:\n%s", init)
	}
	add := mustRun("user", "add", "alice@example.test", "--data-dir", dir)
	if !strings.Contains(add, "Enrolment token") {
		t.Fatalf("user add output:\n%s", add)
	}
	mustRun("alias", "add", "alice@example.test", "al@example.test", "--data-dir", dir)
	list := mustRun("user", "list", "--data-dir", dir)
	if !strings.Contains(list, "alice@example.test") || !strings.Contains(list, "al@example.test") {
		t.Fatalf("user list:\n%s", list)
	}
	if err := run([]string{"user", "add", "alice@example.test", "--data-dir", dir}, &out, &errOut); err == nil {
		t.Fatal("adding an existing user succeeded")
	}
	cfg := mustRun("server", "--data-dir", dir, "--print-config", "--mx-listen", "127.0.0.1:2525")
	for _, want := range []string{`domains = ["example.test"]`, `public_address = "127.0.0.1:7443"`, `mx_listen = "127.0.0.1:2525"`, `store_backend = "bolt"`, `handshakes_per_minute = 120`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestUnknownConfigKeyRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := writeFile(p, "api_lisen = \":1\"\n"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run([]string{"--config", p, "server", "--print-config"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "api-lisen") {
		t.Fatalf("err = %v, want an unknown-key error naming api-lisen", err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
