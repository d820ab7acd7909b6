package pgp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// session is one session key wrapped for a set of recipients: the
// serialised key packets (PKESK, RFC 9580 section 5.1) and the algorithms
// chosen for them. The same session can seal several messages, each with
// its own random IV (SEIPDv1) or salt (SEIPDv2, which derives a fresh
// message key and nonce from it, RFC 9580 section 5.13.2), so reusing it
// is as safe as sealing each separately. SealMessage uses that to wrap the
// key once for the header blob and the body blob: the public-key step
// (an X25519 exchange for our keys) is most of the cost of sealing a
// small message. Anyone who holds the session key of one blob can read
// the other; both belong to the same owner and the same message.
type session struct {
	pkesk  []byte
	key    []byte
	cipher packet.CipherFunction // SEIPDv1
	aead   bool
	suite  packet.CipherSuite // SEIPDv2
}

// v1Ciphers and v2Suites are the algorithms we seal with, best first: only
// AES. A suite is used when every recipient lists it (RFC 9580 section
// 5.2.3.15); otherwise the algorithm every implementation must support.
var (
	v1Ciphers = []packet.CipherFunction{packet.CipherAES256, packet.CipherAES128}
	v2Suites  = []packet.CipherSuite{
		{Cipher: packet.CipherAES256, Mode: packet.AEADModeGCM},
		{Cipher: packet.CipherAES256, Mode: packet.AEADModeOCB},
		{Cipher: packet.CipherAES128, Mode: packet.AEADModeGCM},
		{Cipher: packet.CipherAES128, Mode: packet.AEADModeOCB},
	}
)

// newSession picks the algorithms for the recipients, draws a session key
// and wraps it for each of them. AEAD (SEIPDv2) is used only if asked for
// and every recipient advertises SEIPDv2; older readers (GnuPG 2.2) do not.
func newSession(to []*Key, aead bool) (*session, error) {
	if len(to) == 0 {
		return nil, errors.New("pgp: no recipients")
	}
	now := time.Now()
	subkeys := make([]*packet.PublicKey, len(to))
	ciphers, suites := slices.Clone(v1Ciphers), slices.Clone(v2Suites)
	for i, k := range to {
		if k == nil {
			return nil, errors.New("pgp: nil recipient key")
		}
		enc, ok := k.entity.EncryptionKey(now)
		if !ok {
			return nil, fmt.Errorf("%w: key %s has no valid encryption subkey", ErrUnusableKey, k.Fingerprint())
		}
		subkeys[i] = enc.PublicKey
		sig, _ := k.entity.PrimarySelfSignature()
		if sig == nil {
			return nil, fmt.Errorf("%w: key %s has no valid self-signature", ErrUnusableKey, k.Fingerprint())
		}
		aead = aead && sig.SEIPDv2
		ciphers = slices.DeleteFunc(ciphers, func(c packet.CipherFunction) bool {
			return !slices.Contains(sig.PreferredSymmetric, uint8(c))
		})
		suites = slices.DeleteFunc(suites, func(s packet.CipherSuite) bool {
			return !slices.Contains(sig.PreferredCipherSuites, [2]uint8{uint8(s.Cipher), uint8(s.Mode)})
		})
	}
	s := &session{aead: aead, cipher: packet.CipherAES128,
		suite: packet.CipherSuite{Cipher: packet.CipherAES128, Mode: packet.AEADModeOCB}}
	if len(ciphers) > 0 {
		s.cipher = ciphers[0]
	}
	if len(suites) > 0 {
		s.suite = suites[0]
	}
	keySize := s.cipher.KeySize()
	if aead {
		keySize = s.suite.Cipher.KeySize()
	}
	s.key = make([]byte, keySize)
	if _, err := io.ReadFull(rand.Reader, s.key); err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	var buf bytes.Buffer
	for _, pk := range subkeys {
		if err := packet.SerializeEncryptedKeyAEAD(&buf, pk, s.cipher, aead, s.key, nil); err != nil {
			return nil, fmt.Errorf("pgp: seal: %w", err)
		}
	}
	s.pkesk = buf.Bytes()
	return s, nil
}

// open starts one message under s: the key packets, then the encrypted
// data packet holding a literal data packet, signed by signer if not nil
// (one-pass signature, literal, signature: RFC 9580 section 10.3).
// Nothing is compressed: our blobs are mostly already-compressed
// attachments or short text, and compression before encryption leaks the
// content's redundancy through the length. size, if known, sizes the
// SEIPDv2 chunks.
func (s *session) open(dst io.Writer, signer *Key, size int) (io.WriteCloser, error) {
	if signer != nil && !signer.IsPrivate() {
		return nil, fmt.Errorf("%w: signer has no secret key", ErrUnusableKey)
	}
	if _, err := dst.Write(s.pkesk); err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	cfg := sealConfig(s.aead, size)
	ew, err := packet.SerializeSymmetricallyEncrypted(dst, s.cipher, s.aead, s.suite, s.key, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	if signer == nil {
		lw, err := packet.SerializeLiteral(ew, true, "", 0)
		if err != nil {
			return nil, fmt.Errorf("pgp: seal: %w", err)
		}
		return lw, nil // closing the literal packet closes ew
	}
	sw, err := openpgp.Sign(ew, signer.entity, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	return &closeBoth{WriteCloser: sw, outer: ew}, nil
}

// closeBoth closes the signing writer, which writes the signature but
// leaves the encrypted packet open, and then the encrypted packet.
type closeBoth struct {
	io.WriteCloser
	outer io.Closer
}

func (c *closeBoth) Close() error {
	if err := c.WriteCloser.Close(); err != nil {
		return err
	}
	return c.outer.Close()
}

// seal encrypts plaintext under s into one binary message.
func (s *session) seal(plaintext []byte, signer *Key) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(s.pkesk) + len(plaintext) + len(plaintext)/256 + 512)
	w, err := s.open(&buf, signer, len(plaintext))
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgp: seal: %w", err)
	}
	return buf.Bytes(), nil
}
