package pgp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// emlSeeds returns the testdata/pgp/*.eml fixtures.
func emlSeeds(f *testing.F) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "pgp", "*.eml"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no .eml fixtures")
	}
	return out
}

func FuzzReadKey(f *testing.F) {
	// Few and small seeds: each input that finds new coverage is minimised
	// with work quadratic in its length, so big seeds stall the fuzzer.
	f.Add(testKey(f, "alice@example.org").PublicBinary())
	f.Add(fixture(f, "gpg-carol.pub.asc"))
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ReadKey(data)
		if (k == nil) == (err == nil) {
			t.Fatal("exactly one of key and error must be set")
		}
		if k != nil && len(k.Fingerprint()) < 40 {
			t.Fatal("short fingerprint")
		}
	})
}

func FuzzOpen(f *testing.F) {
	alice, bob := testKey(f, "alice@example.org"), testKey(f, "bob@example.org")
	for _, aead := range []bool{false, true} {
		ct, _ := Seal([]byte("seed message"), []*Key{bob}, SealOptions{Signer: alice, AEAD: aead})
		f.Add(ct)
	}
	f.Add(craftMessage(f, bob, false, false, []byte("no mdc")))
	f.Add(craftMessage(f, bob, true, true, []byte("compressed")))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Open(data, bob, OpenOptions{Verifiers: []*Key{alice}, MaxSize: 1 << 20})
		if err != nil && o != nil {
			t.Fatal("plaintext returned with an error")
		}
		r, _, err := OpenStream(bytes.NewReader(data), bob, OpenOptions{MaxSize: 1 << 20})
		if err == nil {
			buf := make([]byte, 4096)
			for {
				if _, err := r.Read(buf); err != nil {
					break
				}
			}
		}
	})
}

func FuzzDecryptMessage(f *testing.F) {
	alice, bob := testKey(f, "alice@example.org"), testKey(f, "bob@example.org")
	for _, seed := range emlSeeds(f) {
		f.Add(seed)
		if enc, err := BuildEncrypted(seed, []*Key{bob}, alice, nil); err == nil {
			f.Add(enc)
		}
		if s, err := BuildSigned(seed, alice); err == nil {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		d, err := DecryptMessage(msg, bob, []*Key{alice})
		if err == nil && d == nil {
			t.Fatal("nil result without error")
		}
		_ = IsEncrypted(msg)
	})
}

func FuzzSummary(f *testing.F) {
	for _, seed := range emlSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Summarize(raw)
		if err != nil {
			return
		}
		enc := EncodeSummary(s)
		d, err := DecodeSummary(enc)
		if err != nil {
			t.Fatalf("own encoding rejected: %v", err)
		}
		if !bytes.Equal(EncodeSummary(d), enc) {
			t.Fatal("encoding not stable")
		}
	})
}

func FuzzDecodeSummary(f *testing.F) {
	for _, seed := range emlSeeds(f) {
		if s, err := Summarize(seed); err == nil {
			f.Add(EncodeSummary(s))
		}
	}
	f.Add([]byte("sMS\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSummary(b)
		if err != nil {
			return
		}
		// Decoding is strict, so whatever decodes re-encodes identically.
		if !bytes.Equal(EncodeSummary(s), b) {
			t.Fatal("decoded input does not re-encode to itself")
		}
	})
}

func FuzzParseAutocrypt(f *testing.F) {
	alice := testKey(f, "alice@example.org")
	f.Add((&AutocryptHeader{Addr: "alice@example.org", PreferEncrypt: true, KeyData: alice.PublicBinary()}).String())
	f.Add("addr=a@b; keydata=aGVsbG8=")
	f.Add("addr=a@b; _x=; prefer-encrypt=nopreference; keydata=\r\n AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseAutocrypt(v)
		if err != nil {
			return
		}
		// The key was checked once; the round trip is about the syntax.
		h2, err := parseAutocryptSyntax(h.String())
		if err != nil || h2.Addr != h.Addr || !bytes.Equal(h2.KeyData, h.KeyData) || h2.PreferEncrypt != h.PreferEncrypt {
			t.Fatalf("String does not round trip: %v", err)
		}
	})
}
