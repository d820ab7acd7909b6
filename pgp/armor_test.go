package pgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDearmor(t *testing.T) {
	k := testKey(t, "alice@example.org")
	armored := k.PublicArmored()
	typ, bin, err := dearmor([]byte("some leading text\n"+armored+"\ntrailing"), maxKeyBytes)
	if err != nil || typ != "PUBLIC KEY BLOCK" || !bytes.Equal(bin, k.PublicBinary()) {
		t.Fatalf("dearmor: %q %v", typ, err)
	}
	lf := strings.ReplaceAll(armored, "\r\n", "\n")
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	for name, in := range map[string]string{"LF": lf, "CRLF": crlf} {
		if _, bin, err := dearmor([]byte(in), maxKeyBytes); err != nil || !bytes.Equal(bin, k.PublicBinary()) {
			t.Fatalf("%s line endings: %v", name, err)
		}
	}
	body := armored[strings.Index(armored, "\n\n")+2:]
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"no armor", "hello", ErrMalformed},
		{"truncated", armored[:len(armored)/2], ErrMalformed},
		{"END mismatch", strings.Replace(armored, "END PGP PUBLIC KEY", "END PGP MESSAGE", 1), ErrMalformed},
		{"bad base64", strings.Replace(armored, "\n\n", "\n\n!!!!\n", 1), ErrMalformed},
		{"bad type", "-----BEGIN PGP <x>-----\n\n" + body, ErrMalformed},
		{"too many headers", "-----BEGIN PGP MESSAGE-----\n" + strings.Repeat("A: b\n", 40) + "\n" + body, ErrMalformed},
		{"long header", "-----BEGIN PGP MESSAGE-----\nComment: " + strings.Repeat("x", 2000) + "\n\n" + body, ErrMalformed},
		{"too large", armored, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			max := maxKeyBytes
			if c.want == ErrTooLarge {
				max = 100
			}
			if _, _, err := dearmor([]byte(c.in), max); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestDearmorLongHeaderIsLinear: go-crypto's armor reader rebuilt a long
// header line quadratically; ours refuses it after one pass. The bound is
// loose (a quadratic reader takes minutes on 4 MiB), so load on the
// machine does not make it flaky.
func TestDearmorLongHeaderIsLinear(t *testing.T) {
	in := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: " + strings.Repeat("x", 4<<20) + "\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n")
	start := time.Now()
	if _, err := ReadKey(in); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnusableKey) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func FuzzDearmor(f *testing.F) {
	f.Add([]byte(testKey(f, "alice@example.org").PublicArmored()))
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\nA: b\n\nAAAA\n=abcd\n-----END PGP MESSAGE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, bin, err := dearmor(data, 1<<16)
		if err != nil {
			if bin != nil || typ != "" {
				t.Fatal("output with an error")
			}
			return
		}
		if len(bin) > 1<<16 || !isArmorType(typ) {
			t.Fatalf("type %q, %d bytes", typ, len(bin))
		}
	})
}

// TestReadKeysFraming: a keyring of two certificates reads back both, in
// order, from one parse; damaged framing fails before any parsing.
func TestReadKeysFraming(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	ring := append(alice.PublicBinary(), bob.PublicBinary()...)
	keys, err := ReadKeys(ring)
	if err != nil || len(keys) != 2 || keys[0].Fingerprint() != alice.Fingerprint() ||
		keys[1].Fingerprint() != bob.Fingerprint() || keys[0].IsPrivate() {
		t.Fatalf("keyring: %v %d", err, len(keys))
	}
	bin := alice.PublicBinary()
	partial := append([]byte{0xc0 | 6, 0xe1}, bin...) // new-format partial length
	cases := map[string][]byte{
		"trailing byte":  append(bin[:len(bin):len(bin)], 0x99),
		"cut short":      bin[:len(bin)-1],
		"partial length": partial,
		"not a packet":   append([]byte{0x00}, bin...),
	}
	for name, data := range cases {
		if err := walkKeyPackets(data); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: walk: %v", name, err)
		}
		if _, err := ReadKeys(data); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: ReadKeys: %v", name, err)
		}
	}
}
