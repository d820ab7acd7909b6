package bridge

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smessenger/pgp"
)

func testVault(t testing.TB, pass []byte, sec vaultSecrets) *vaultFile {
	t.Helper()
	key, err := pgp.GenerateKey("Vault Test", "vault@example.org")
	if err != nil {
		t.Fatal(err)
	}
	armored, err := key.ExportPrivate(pass)
	if err != nil {
		t.Fatal(err)
	}
	v := &vaultFile{Version: vaultVersion, Address: "vault@example.org", ServerAddr: "127.0.0.1:1",
		ServerKey: "AAAA", Fingerprint: key.Fingerprint(), SecretKey: string(armored)}
	v.setBridgePassword("client-password")
	if err := v.sealSecrets(pass, sec); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVault(t *testing.T) {
	dir := t.TempDir()
	pass := []byte("correct horse battery staple")
	sec := vaultSecrets{NoisePrivate: bytes.Repeat([]byte{0xA5}, 32), NoisePublic: bytes.Repeat([]byte{0x5A}, 32),
		CacheKey: bytes.Repeat([]byte{0x3C}, 32)}
	v := testVault(t, pass, sec)
	if err := writeVault(dir, v); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, vaultName))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, vaultName))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("vault mode %v, want 0600", st.Mode().Perm())
	}
	t.Run("no secrets in clear", func(t *testing.T) {
		for name, s := range map[string][]byte{"passphrase": pass, "noise key": sec.NoisePrivate, "cache key": sec.CacheKey,
			"bridge password": []byte("client-password")} {
			for _, form := range [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
				if bytes.Contains(raw, form) {
					t.Errorf("vault file contains the %s", name)
				}
			}
		}
	})
	t.Run("secret key only passphrase-protected", func(t *testing.T) {
		got, err := readVault(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pgp.ImportPrivate([]byte(got.SecretKey), []byte("wrong")); !errors.Is(err, pgp.ErrBadPassphrase) {
			t.Fatalf("secret key opened with a wrong passphrase: %v", err)
		}
		if _, err := pgp.ImportPrivate([]byte(got.SecretKey), nil); err == nil {
			t.Fatal("secret key opened without a passphrase: it is stored unprotected")
		}
		if _, err := pgp.ImportPrivate([]byte(got.SecretKey), pass); err != nil {
			t.Fatalf("secret key does not open with the passphrase: %v", err)
		}
	})
	t.Run("unlock", func(t *testing.T) {
		got, err := readVault(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := got.openSecrets(pass)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.CacheKey, sec.CacheKey) || !bytes.Equal(s.NoisePrivate, sec.NoisePrivate) {
			t.Fatal("secrets changed in the round trip")
		}
		if _, err := got.openSecrets([]byte("wrong passphrase")); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase: got %v", err)
		}
		if !got.checkBridgePassword("client-password") || got.checkBridgePassword("client-passwore") || got.checkBridgePassword("") {
			t.Fatal("bridge password check wrong")
		}
	})
	t.Run("tampered server key refused", func(t *testing.T) {
		got, _ := readVault(dir)
		got.ServerKey = "BBBB"
		if _, err := got.openSecrets(pass); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("a vault pointed at another server still unlocked: %v", err)
		}
	})
	t.Run("damaged", func(t *testing.T) {
		for name, data := range map[string]string{
			"not json": "{", "wrong version": `{"version":9}`, "missing": `{"version":1}`,
			"huge kdf": strings.Replace(string(raw), `"memory_kib": 8192`, `"memory_kib": 99999999`, 1),
		} {
			v, err := parseVault([]byte(data))
			if err == nil {
				_, err = v.openSecrets(pass)
			}
			if !errors.Is(err, ErrVaultDamaged) {
				t.Errorf("%s: got %v, want ErrVaultDamaged", name, err)
			}
		}
		if _, err := readVault(t.TempDir()); !errors.Is(err, ErrNoVault) {
			t.Errorf("empty dir: %v", err)
		}
	})
}

func FuzzParseVault(f *testing.F) {
	pass := []byte("fuzz pass")
	v := testVault(f, pass, vaultSecrets{NoisePrivate: make([]byte, 32), CacheKey: make([]byte, 32)})
	dir := f.TempDir()
	if err := writeVault(dir, v); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, vaultName))
	f.Add(raw)
	f.Add([]byte(`{"version":1,"address":"a@b","server_addr":"x","server_key":"y","secret_key":"z","sealed":"AAAA","password_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseVault(data)
		if err != nil {
			if !errors.Is(err, ErrVaultDamaged) {
				t.Fatalf("parse error is not ErrVaultDamaged: %v", err)
			}
			return
		}
		if v.KDF.Memory > 64*1024 {
			return // valid but too slow to derive in a fuzz loop
		}
		if _, err := v.openSecrets(pass); err != nil && !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrVaultDamaged) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// TestBridgePasswordAlphabet: generated passwords are letters and digits
// only (never a leading "-" that a command-line client reads as an option)
// and long enough for 144 bits.
func TestBridgePasswordAlphabet(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		pw := newBridgePassword()
		if len(pw) != 29 {
			t.Fatalf("password %q has %d characters, want 29", pw, len(pw))
		}
		for _, c := range pw {
			if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
				t.Fatalf("password %q holds %q", pw, c)
			}
		}
		if seen[pw] {
			t.Fatalf("password %q generated twice", pw)
		}
		seen[pw] = true
	}
}
