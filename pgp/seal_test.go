package pgp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestSealOpen(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	msg := bytes.Repeat([]byte("hello sealed world\n"), 1000)
	for _, aead := range []bool{false, true} {
		for _, signed := range []bool{false, true} {
			name := map[bool]string{false: "v1", true: "v2"}[aead] + map[bool]string{false: "", true: "-signed"}[signed]
			t.Run(name, func(t *testing.T) {
				opt := SealOptions{AEAD: aead}
				if signed {
					opt.Signer = alice
				}
				ct, err := Seal(msg, []*Key{bob.Public(), alice.Public()}, opt)
				if err != nil {
					t.Fatal(err)
				}
				if got := isAEADMessage(bufioOf(ct)); got != aead {
					t.Fatalf("AEAD packet %v, want %v", got, aead)
				}
				for _, k := range []*Key{alice, bob} {
					o, err := Open(ct, k, OpenOptions{Verifiers: []*Key{alice.Public()}})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(o.Plaintext, msg) {
						t.Fatal("plaintext differs")
					}
					want := SigUnsigned
					if signed {
						want = SigValid
					}
					if o.Signature != want {
						t.Fatalf("signature %v, want %v", o.Signature, want)
					}
					if signed && o.SignerFingerprint != alice.Fingerprint() {
						t.Fatalf("signer %s", o.SignerFingerprint)
					}
				}
			})
		}
	}
}

func TestSealAEADFallsBackToV1(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	old := entityWithNoAEAD(t)
	ct, err := Seal([]byte("x"), []*Key{alice.Public(), old}, SealOptions{AEAD: true})
	if err != nil {
		t.Fatal(err)
	}
	if isAEADMessage(bufioOf(ct)) {
		t.Fatal("SEIPDv2 used although one recipient lacks the feature")
	}
}

func TestOpenNegative(t *testing.T) {
	alice, bob, mallory := testKey(t, "alice@example.org"), testKey(t, "bob@example.org"), testKey(t, "mallory@example.org")
	msg := bytes.Repeat([]byte("secret "), 2000)
	v1, _ := Seal(msg, []*Key{bob}, SealOptions{Signer: alice})
	v2, _ := Seal(msg, []*Key{bob}, SealOptions{Signer: alice, AEAD: true})
	tamper := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0x01
		return c
	}
	cases := []struct {
		name string
		ct   []byte
		key  *Key
		want error
		max  int64
	}{
		{"tampered v1", tamper(v1), bob, ErrIntegrity, 0},
		{"tampered v2", tamper(v2), bob, ErrIntegrity, 0},
		{"truncated v1", v1[:len(v1)-30], bob, ErrIntegrity, 0},
		{"truncated v2", v2[:len(v2)-30], bob, ErrIntegrity, 0},
		{"no MDC", craftMessage(t, bob, false, false, msg), bob, ErrNoIntegrity, 0},
		{"to another key", v1, mallory, ErrNotForKey, 0},
		{"public key only", v1, bob.Public(), ErrNotForKey, 0},
		{"compression bomb", craftMessage(t, bob, true, true, make([]byte, 8<<20)), bob, ErrTooLarge, 1 << 20},
		{"too large v2", v2, bob, ErrTooLarge, 100},
		{"garbage", []byte("not openpgp at all"), bob, ErrMalformed, 0},
		{"empty", nil, bob, ErrMalformed, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := Open(c.ct, c.key, OpenOptions{MaxSize: c.max})
			if !errors.Is(err, c.want) || o != nil {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			r, _, err := OpenStream(bytes.NewReader(c.ct), c.key, OpenOptions{MaxSize: c.max})
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("OpenStream: %v, want %v", err, c.want)
			}
		})
	}
	// A crafted compressed message within the cap opens: the bomb case
	// fails because of the cap, not because crafting is broken.
	o, err := Open(craftMessage(t, bob, true, true, msg), bob, OpenOptions{})
	if err != nil || !bytes.Equal(o.Plaintext, msg) {
		t.Fatalf("compressed control: %v", err)
	}
}

func TestSignatureStatus(t *testing.T) {
	alice, bob, mallory := testKey(t, "alice@example.org"), testKey(t, "bob@example.org"), testKey(t, "mallory@example.org")
	ct, _ := Seal([]byte("hi"), []*Key{bob}, SealOptions{Signer: mallory})
	o, err := Open(ct, bob, OpenOptions{Verifiers: []*Key{alice.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Signature != SigUnknownSigner || o.SignerKeyID == "" {
		t.Fatalf("unknown signer: %v %q", o.Signature, o.SignerKeyID)
	}
	forged := sealRawPackets(t, bob, forgedSigned(t, alice))
	o, err = Open(forged, bob, OpenOptions{Verifiers: []*Key{alice.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Signature != SigInvalid || o.SignerFingerprint != alice.Fingerprint() {
		t.Fatalf("forged: %v %s", o.Signature, o.SignerFingerprint)
	}
	// Without alice among the verifiers the same message is unknown-signer.
	o, _ = Open(forged, bob, OpenOptions{})
	if o.Signature != SigUnknownSigner {
		t.Fatalf("forged, no verifier: %v", o.Signature)
	}
	if SigStatus(9).String() == "" || SigValid.String() != "valid" {
		t.Fatal("String")
	}
}

func TestOpenStreamAEAD(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	msg := make([]byte, 3<<20)
	_, _ = rand.Read(msg)
	for _, aead := range []bool{true, false} {
		ct, err := Seal(msg, []*Key{bob}, SealOptions{Signer: alice, AEAD: aead})
		if err != nil {
			t.Fatal(err)
		}
		r, sig, err := OpenStream(bytes.NewReader(ct), bob, OpenOptions{Verifiers: []*Key{alice}})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := sig(); st != SigInvalid && aead {
			t.Fatalf("status before EOF: %v", st)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("stream: %v", err)
		}
		if st, fp := sig(); st != SigValid || fp != alice.Fingerprint() {
			t.Fatalf("status %v %s", st, fp)
		}
		// Truncation in the middle of the AEAD stream: an error, never EOF.
		r, _, err = OpenStream(bytes.NewReader(ct[:len(ct)/2]), bob, OpenOptions{})
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("truncated stream: %v", err)
		}
	}
}

func TestSealStreamErrors(t *testing.T) {
	if _, err := Seal([]byte("x"), nil, SealOptions{}); err == nil {
		t.Fatal("no recipients accepted")
	}
	bob := testKey(t, "bob@example.org")
	if _, err := Seal([]byte("x"), []*Key{bob}, SealOptions{Signer: bob.Public()}); !errors.Is(err, ErrUnusableKey) {
		t.Fatalf("public signer: %v", err)
	}
}

// seipdHeader returns the first octets of the encrypted data packet of a
// binary message: version, then for version 2 the cipher and AEAD mode.
func seipdHeader(t *testing.T, ct []byte) []byte {
	t.Helper()
	for off := 0; off < len(ct); {
		tag, hl, n, ok := packetHeader(ct[off:])
		if !ok {
			t.Fatal("bad packet header")
		}
		if tag == 18 {
			return ct[off+hl : off+hl+3]
		}
		if n < 0 {
			t.Fatal("partial length before the encrypted data")
		}
		off += hl + n
	}
	t.Fatal("no SEIPD packet")
	return nil
}

// TestSealMessageModes: stored blobs are SEIPDv2 with AES-256/GCM for our
// keys by default, SEIPDv1 when forced or when one owner key lacks the
// feature; Seal keeps SEIPDv1 unless asked. Every blob opens.
func TestSealMessageModes(t *testing.T) {
	bob := testKey(t, "bob@example.org")
	raw := fixture(t, "plain.eml")
	cases := []struct {
		name  string
		to    []*Key
		opt   SealOptions
		wantV byte
	}{
		{"default is AEAD", []*Key{bob.Public()}, SealOptions{}, 2},
		{"AEAD flag", []*Key{bob.Public()}, SealOptions{AEAD: true}, 2},
		{"forced v1", []*Key{bob.Public()}, SealOptions{ForceSEIPDv1: true, AEAD: true}, 1},
		{"recipient without AEAD", []*Key{bob.Public(), entityWithNoAEAD(t)}, SealOptions{}, 1},
		{"signed", []*Key{bob.Public()}, SealOptions{Signer: testKey(t, "alice@example.org")}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hb, bb, _, err := SealMessage(raw, c.to, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, blob := range [][]byte{hb, bb} {
				h := seipdHeader(t, blob)
				if h[0] != c.wantV {
					t.Fatalf("SEIPD version %d, want %d", h[0], c.wantV)
				}
				if c.wantV == 2 && (packet.CipherFunction(h[1]) != packet.CipherAES256 || packet.AEADMode(h[2]) != packet.AEADModeGCM) {
					t.Fatalf("suite %d/%d, want AES-256/GCM", h[1], h[2])
				}
			}
			if body, err := OpenBodyBlob(bb, bob); err != nil || !bytes.Equal(body, raw) {
				t.Fatalf("body: %v", err)
			}
			if _, err := OpenHeaderBlob(hb, bob); err != nil {
				t.Fatalf("header: %v", err)
			}
			if c.opt.Signer != nil {
				o, err := Open(bb, bob, OpenOptions{Verifiers: []*Key{c.opt.Signer.Public()}})
				if err != nil || o.Signature != SigValid {
					t.Fatalf("signature: %v %v", err, o)
				}
			}
		})
	}
	if ct, err := Seal(raw, []*Key{bob.Public()}, SealOptions{}); err != nil || seipdHeader(t, ct)[0] != 1 {
		t.Fatalf("Seal without AEAD: %v", err)
	}
}

// TestSealMessageSharesSessionKey: the two blobs carry the same wrapped
// session key (one public-key operation per message) but distinct
// ciphertexts, and each one is a complete message on its own.
func TestSealMessageSharesSessionKey(t *testing.T) {
	bob := testKey(t, "bob@example.org")
	raw := fixture(t, "plain.eml")
	hb, bb, _, err := SealMessage(raw, []*Key{bob.Public()}, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, hl, n, _ := packetHeader(hb)
	if !bytes.Equal(hb[:hl+n], bb[:hl+n]) {
		t.Fatal("the blobs have different key packets")
	}
	if bytes.Equal(hb[hl+n:hl+n+40], bb[hl+n:hl+n+40]) {
		t.Fatal("the encrypted data packets start alike: salt reused")
	}
	hb2, _, _, _ := SealMessage(raw, []*Key{bob.Public()}, SealOptions{})
	if bytes.Equal(hb[:hl+n], hb2[:hl+n]) {
		t.Fatal("two messages share a session key")
	}
	if _, err := OpenBodyBlob(bb, bob); err != nil {
		t.Fatal(err)
	}
}
