package pgp

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var (
	keyCache   = map[string]*Key{}
	keyCacheMu sync.Mutex
)

// testKey returns the key for address: the fixed key in
// testdata/pgp/<local part>.sec.asc if there is one, else a generated key,
// cached per test binary run so that the many tests needing "alice" do not
// each generate one. Fuzz targets need the fixed keys: every fuzz worker
// is a separate process, and seeds sealed to a key generated in the
// coordinator would not decrypt with the key generated in a worker, so the
// fuzzer would never get past the session key.
func testKey(t testing.TB, address string) *Key {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[address]; ok {
		return k
	}
	local, _, _ := strings.Cut(address, "@")
	path := filepath.Join("..", "testdata", "pgp", local+".sec.asc")
	var k *Key
	if data, err := os.ReadFile(path); err == nil {
		if k, err = ImportPrivate(data, nil); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	} else if k, err = GenerateKey("Test "+address, address); err != nil {
		t.Fatal(err)
	}
	keyCache[address] = k
	return k
}

// TestWriteKeyFixtures regenerates the fixed test keys when
// PGP_WRITE_FIXTURES=1; they are unprotected, test-only secret keys.
func TestWriteKeyFixtures(t *testing.T) {
	if os.Getenv("PGP_WRITE_FIXTURES") != "1" {
		t.Skip("set PGP_WRITE_FIXTURES=1 to regenerate testdata/pgp/{alice,bob}.sec.asc")
	}
	for _, name := range []string{"alice", "bob"} {
		k, err := GenerateKey("Test "+name+"@example.org", name+"@example.org")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, _ := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
		if err := k.entity.SerializePrivateWithoutSigning(w, nil); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		buf.WriteString("\n")
		if err := os.WriteFile(filepath.Join("..", "testdata", "pgp", name+".sec.asc"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// needTool skips (or fails under CI) when an external binary is missing.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

type nopWC struct{ io.Writer }

func (nopWC) Close() error { return nil }

// craftMessage builds an encrypted message by hand from go-crypto's packet
// primitives, for the cases the high-level API refuses to produce: no MDC
// (a tag 9 packet, as PGP 2.x and EFAIL-era clients sent) and compression.
func craftMessage(t testing.TB, to *Key, integrity, compress bool, body []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, ok := to.entity.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	sk := make([]byte, 32)
	_, _ = rand.Read(sk)
	if err := packet.SerializeEncryptedKey(&out, enc.PublicKey, packet.CipherAES256, sk, nil); err != nil {
		t.Fatal(err)
	}
	var inner bytes.Buffer
	var w io.WriteCloser = nopWC{&inner}
	if compress {
		cw, err := packet.SerializeCompressed(w, packet.CompressionZLIB, &packet.CompressionConfig{Level: 9})
		if err != nil {
			t.Fatal(err)
		}
		w = cw
	}
	lw, err := packet.SerializeLiteral(w, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = lw.Write(body)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if integrity {
		ew, err := packet.SerializeSymmetricallyEncrypted(&out, packet.CipherAES256, false, packet.CipherSuite{}, sk, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = ew.Write(inner.Bytes())
		if err := ew.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	block, _ := aes.NewCipher(sk)
	iv := make([]byte, aes.BlockSize)
	_, _ = rand.Read(iv)
	stream, prefix := packet.NewOCFBEncrypter(block, iv, packet.OCFBResync)
	ct := make([]byte, inner.Len())
	stream.XORKeyStream(ct, inner.Bytes())
	n := len(prefix) + len(ct)
	// New-format tag 9 (Symmetrically Encrypted Data) with a 5-octet length.
	out.Write([]byte{0xc0 | 9, 255, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	out.Write(prefix)
	out.Write(ct)
	return out.Bytes()
}

func bufioOf(b []byte) *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(b), peekSize) }

// entityWithNoAEAD is a key generated without the SEIPDv2 feature, like
// GnuPG's.
func entityWithNoAEAD(t testing.TB) *Key {
	e, err := openpgp.NewEntity("Old", "", "old@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return &Key{entity: e}
}

// sealRawPackets wraps an arbitrary packet sequence in PKESK + SEIPDv1, so
// tests can put deliberately broken content behind a valid MDC.
func sealRawPackets(t testing.TB, to *Key, raw []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, _ := to.entity.EncryptionKey(time.Now())
	sk := make([]byte, 32)
	_, _ = rand.Read(sk)
	if err := packet.SerializeEncryptedKey(&out, enc.PublicKey, packet.CipherAES256, sk, nil); err != nil {
		t.Fatal(err)
	}
	ew, err := packet.SerializeSymmetricallyEncrypted(&out, packet.CipherAES256, false, packet.CipherSuite{}, sk, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ew.Write(raw)
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// forgedSigned returns signed packets (OPS, literal, signature) by signer
// whose literal content was altered after signing.
func forgedSigned(t testing.TB, signer *Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, signer.entity, &openpgp.FileHints{IsBinary: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("pay 100 EUR to Bob"))
	_ = w.Close()
	forged := bytes.Replace(buf.Bytes(), []byte("pay 100 EUR to Bob"), []byte("pay 900 EUR to Eve"), 1)
	if bytes.Equal(forged, buf.Bytes()) {
		t.Fatal("literal not found")
	}
	return forged
}

func armorEncoder(w io.Writer) (io.WriteCloser, error) { return armor.Encode(w, "PGP MESSAGE", nil) }

type msgHeader struct{ h textproto.Header }

func (m *msgHeader) contentType() (string, map[string]string, error) {
	return (&message.Header{Header: m.h}).ContentType()
}
