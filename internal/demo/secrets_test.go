package demo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretsPersist(t *testing.T) {
	dir := t.TempDir()
	s1, err := loadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	s1.BridgePasswords["alice@example.test"] = "pw"
	if err := s1.save(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, SecretsFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v %v", err, st)
	}
	s2, err := loadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Passphrase != s1.Passphrase || s2.BridgePasswords["alice@example.test"] != "pw" {
		t.Fatalf("secrets not reused: %+v vs %+v", s2, s1)
	}
}

// TestRunRefusesBadSecrets: a damaged secrets file stops the demo before
// it touches anything else.
func TestRunRefusesBadSecrets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, SecretsFileName), []byte(`{"passphrase":`), 0o600)
	err := Run(context.Background(), Config{DataDir: dir})
	if !errors.Is(err, ErrBadSecrets) {
		t.Fatalf("Run: %v, want ErrBadSecrets", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("Run created files besides the bad secrets: %v", ents)
	}
}

func FuzzParseSecrets(f *testing.F) {
	for _, s := range []string{
		`{"passphrase":"0123456789abcdef0123","bridge_passwords":{"a@b":"x"}}`,
		`{"passphrase":"short"}`,
		`{"passphrase":"0123456789abcdef0123","bridge_passwords":{"nobody":"x"}}`,
		`{"passphrase":"0123456789abcdef0123","bridge_passwords":{"a@b":""}}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSecrets(b)
		if err != nil {
			if !errors.Is(err, ErrBadSecrets) {
				t.Fatalf("error %v is not ErrBadSecrets", err)
			}
			return
		}
		if len(s.Passphrase) < 16 || s.BridgePasswords == nil {
			t.Fatalf("accepted %+v", s)
		}
	})
}
