package pgp

import (
	"bytes"
	"crypto"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestGenerateKeyProfile(t *testing.T) {
	k := testKey(t, "alice@example.org")
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(k.Fingerprint()) {
		t.Fatalf("fingerprint %q", k.Fingerprint())
	}
	if !regexp.MustCompile(`^([0-9A-F]{4} ){9}[0-9A-F]{4}$`).MatchString(k.DisplayFingerprint()) {
		t.Fatalf("display fingerprint %q", k.DisplayFingerprint())
	}
	e := k.entity
	if e.PrimaryKey.Version != 4 || e.PrimaryKey.PubKeyAlgo != packet.PubKeyAlgoEdDSA {
		t.Fatalf("primary v%d algo %d", e.PrimaryKey.Version, e.PrimaryKey.PubKeyAlgo)
	}
	enc, ok := e.EncryptionKey(time.Now())
	if !ok || enc.PublicKey.PubKeyAlgo != packet.PubKeyAlgoECDH {
		t.Fatalf("encryption subkey %v", enc.PublicKey)
	}
	if c, _ := enc.PublicKey.Curve(); c != packet.Curve25519 {
		t.Fatalf("curve %v", c)
	}
	if got := k.Addresses(); len(got) != 1 || got[0] != "alice@example.org" {
		t.Fatalf("addresses %v", got)
	}
	if !k.IsPrivate() || k.Public().IsPrivate() || !k.SupportsAEAD() {
		t.Fatal("private/public/AEAD flags wrong")
	}
	if _, err := GenerateKey("x", "not an address"); err == nil {
		t.Fatal("bad address accepted")
	}
	if _, err := GenerateKey("bad <name>", "a@b.c"); err == nil {
		t.Fatal("bad name accepted")
	}
}

func TestPublicRoundTrip(t *testing.T) {
	k := testKey(t, "alice@example.org")
	for name, data := range map[string][]byte{"binary": k.PublicBinary(), "armored": []byte(k.PublicArmored())} {
		t.Run(name, func(t *testing.T) {
			p, err := ReadKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if p.Fingerprint() != k.Fingerprint() || p.IsPrivate() || !p.SupportsAEAD() {
				t.Fatal("round trip changed the key")
			}
		})
	}
	if !strings.HasPrefix(k.PublicArmored(), "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		t.Fatal("armor header")
	}
}

func TestPrivateExportImport(t *testing.T) {
	k := testKey(t, "alice@example.org")
	for name, export := range map[string]func([]byte) ([]byte, error){
		"iterated": k.ExportPrivate, "argon2": k.ExportPrivateArgon2,
	} {
		t.Run(name, func(t *testing.T) {
			data, err := export([]byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("PGP PRIVATE KEY BLOCK")) {
				t.Fatal("not armored")
			}
			if !k.IsPrivate() || k.entity.PrivateKey.Encrypted {
				t.Fatal("export changed the original key")
			}
			if _, err := ImportPrivate(data, []byte("wrong")); !errors.Is(err, ErrBadPassphrase) {
				t.Fatalf("wrong passphrase: %v", err)
			}
			k2, err := ImportPrivate(data, []byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			ct, err := Seal([]byte("hi"), []*Key{k.Public()}, SealOptions{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := Open(ct, k2, OpenOptions{})
			if err != nil || string(o.Plaintext) != "hi" {
				t.Fatalf("imported key cannot decrypt: %v", err)
			}
		})
	}
	if _, err := k.ExportPrivate(nil); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	if _, err := k.Public().ExportPrivate([]byte("x")); !errors.Is(err, ErrUnusableKey) {
		t.Fatalf("public export: %v", err)
	}
}

// entityWith generates a go-crypto entity with a custom profile.
func entityWith(t *testing.T, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("Bad", "", "bad@example.org", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func serialize(t *testing.T, e *openpgp.Entity) []byte {
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadKeyRejects(t *testing.T) {
	good := testKey(t, "alice@example.org")
	expired := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: 1,
		Time: func() time.Time { return time.Now().Add(-time.Hour) }})
	revoked := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err := revoked.RevokeKey(packet.KeyCompromised, "test", nil); err != nil {
		t.Fatal(err)
	}
	noEnc := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	noEnc.Subkeys = nil
	weakRSA := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024})
	uidBomb := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	for i := 0; i < maxKeyUIDs+5; i++ {
		if err := uidBomb.AddUserId("u", "", strings.Repeat("x", i%7)+"u"+string(rune('a'+i%26))+itoa(i)+"@example.org", nil); err != nil {
			t.Fatal(err)
		}
	}
	subBomb := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	for i := 0; i < maxKeySubkeys+5; i++ {
		if err := subBomb.AddEncryptionSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}); err != nil {
			t.Fatal(err)
		}
	}
	armored := good.PublicArmored()
	cases := []struct {
		name string
		data []byte
		want error
		why  string
	}{
		{"expired", serialize(t, expired), ErrUnusableKey, "expired"},
		{"revoked", serialize(t, revoked), ErrUnusableKey, "revoked"},
		{"no encryption subkey", serialize(t, noEnc), ErrUnusableKey, "encryption subkey"},
		{"RSA 1024", serialize(t, weakRSA), ErrWeakKey, "1024"},
		{"UID bomb", serialize(t, uidBomb), ErrUnusableKey, "User IDs"},
		{"subkey bomb", serialize(t, subBomb), ErrUnusableKey, "subkeys"},
		{"truncated armor", []byte(armored[:len(armored)/2]), ErrMalformed, ""},
		{"garbage", []byte("hello world"), ErrMalformed, ""},
		{"empty", nil, ErrMalformed, ""},
		{"two keys", append(good.PublicBinary(), testKey(t, "bob@example.org").PublicBinary()...), ErrMalformed, "2 keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ReadKey(c.data)
			if !errors.Is(err, c.want) || k != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Fatalf("error %q does not say %q", err, c.why)
			}
		})
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

func TestReadKeyAcceptsStrongRSA(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA generation is slow")
	}
	e := entityWith(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048, DefaultHash: crypto.SHA256})
	k, err := ReadKey(serialize(t, e))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := Seal([]byte("x"), []*Key{k}, SealOptions{AEAD: true})
	if err != nil || len(ct) == 0 {
		t.Fatal(err)
	}
}
