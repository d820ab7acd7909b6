package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultMaxSize caps the plaintext of an opened message (after
// decompression) when OpenOptions.MaxSize is zero.
const DefaultMaxSize = 256 << 20

// SigStatus is the outcome of signature verification on an opened message.
// Callers must look at it: a message that decrypts is not thereby signed.
type SigStatus int

// Signature verification outcomes.
const (
	// SigUnsigned: the message carries no signature.
	SigUnsigned SigStatus = iota
	// SigValid: signed by one of the verifier keys (or the owner's key) and
	// the signature checks.
	SigValid
	// SigInvalid: a signature from a known key that does not check (or the
	// stream was not read to the end).
	SigInvalid
	// SigUnknownSigner: signed by a key the caller did not supply.
	SigUnknownSigner
)

// String returns a lower-case name for s.
func (s SigStatus) String() string {
	switch s {
	case SigUnsigned:
		return "unsigned"
	case SigValid:
		return "valid"
	case SigInvalid:
		return "invalid"
	case SigUnknownSigner:
		return "unknown signer"
	}
	return fmt.Sprintf("SigStatus(%d)", int(s))
}

// SealOptions tunes Seal and SealStream.
type SealOptions struct {
	// Signer, if set, signs the message; it must hold its secret key.
	Signer *Key
	// AEAD asks Seal and SealStream for SEIPDv2 (RFC 9580 AEAD). It is
	// used only if every recipient key advertises SEIPDv2; otherwise
	// SEIPDv1 (with MDC) is used. SealMessage asks for it by itself.
	AEAD bool
	// ForceSEIPDv1 makes SealMessage (and Seal) use SEIPDv1 even when
	// every recipient supports SEIPDv2, e.g. for a blob that an older
	// OpenPGP implementation must read. It wins over AEAD.
	ForceSEIPDv1 bool
}

// OpenOptions tunes Open and OpenStream.
type OpenOptions struct {
	// Verifiers are the keys whose signatures are recognised besides the
	// owner's own key.
	Verifiers []*Key
	// MaxSize caps the plaintext in bytes, decompressed; 0 means
	// DefaultMaxSize.
	MaxSize int64
}

// Opened is the result of Open.
type Opened struct {
	Plaintext []byte
	Signature SigStatus
	// SignerFingerprint is the signer's primary key fingerprint when
	// Signature is SigValid or SigInvalid.
	SignerFingerprint string
	// SignerKeyID is the 16-hex-digit issuer key ID of the signature, if
	// signed; it is all a caller learns about an unknown signer.
	SignerKeyID string
}

// maxChunk is the SEIPDv2 chunk size for streams: small enough to bound
// memory, large enough that the per-chunk tag costs nothing measurable.
const maxChunk = 1 << 18

// sealConfig: a message of known size gets a chunk just large enough to
// hold it, which saves allocating a 256 KiB buffer for a 4 KiB message.
func sealConfig(aead bool, size int) *packet.Config {
	cfg := &packet.Config{DefaultCipher: packet.CipherAES256}
	if aead {
		chunk := uint64(maxChunk)
		for size > 0 && chunk > 1<<10 && chunk/2 >= uint64(size) {
			chunk /= 2
		}
		cfg.AEADConfig = &packet.AEADConfig{DefaultMode: packet.AEADModeGCM, ChunkSize: chunk}
	}
	return cfg
}

// SealStream returns a writer that encrypts what is written to it to every
// key in to (and signs it if opt.Signer is set), writing a binary OpenPGP
// message to dst. Close must be called to finish the message; it does not
// close dst. Memory use does not depend on the message size.
func SealStream(dst io.Writer, to []*Key, opt SealOptions) (io.WriteCloser, error) {
	s, err := newSession(to, opt.AEAD && !opt.ForceSEIPDv1)
	if err != nil {
		return nil, err
	}
	return s.open(dst, opt.Signer, 0)
}

// Seal encrypts plaintext to every key in to, optionally signed, and returns
// the binary OpenPGP message. It signs only if opt.Signer is set: a
// signature costs more than the encryption of a small message.
func Seal(plaintext []byte, to []*Key, opt SealOptions) ([]byte, error) {
	s, err := newSession(to, opt.AEAD && !opt.ForceSEIPDv1)
	if err != nil {
		return nil, err
	}
	return s.seal(plaintext, opt.Signer)
}

// keyring builds the go-crypto keyring for opening: the owner first, then
// the verifiers.
func keyring(key *Key, verifiers []*Key) openpgp.EntityList {
	el := openpgp.EntityList{key.entity}
	for _, v := range verifiers {
		if v != nil && v.entity != key.entity {
			el = append(el, v.entity)
		}
	}
	return el
}

// openConfig sets go-crypto's decompression cap a little above ours: the
// literal packet header also counts towards it, and go-crypto reports
// hitting it as a generic parsing error, whereas our own cap, hit first,
// reports ErrTooLarge. Either way decompression stops at the cap.
func openConfig(max int64) *packet.Config {
	limit := max + 64<<10
	return &packet.Config{MaxDecompressedMessageSize: &limit}
}

func maxSize(opt OpenOptions) int64 {
	if opt.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return opt.MaxSize
}

// mapReadErr turns go-crypto errors into our sentinels. Everything that
// happens after decryption starts is an integrity failure: go-crypto makes
// those errors deliberately generic to avoid decryption oracles.
func mapReadErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrIntegrity), errors.Is(err, ErrNoIntegrity),
		errors.Is(err, ErrNotForKey):
		return err
	case errors.Is(err, pgperrors.ErrMessageTooLarge):
		return fmt.Errorf("%w: decompressed data exceeds the cap", ErrTooLarge)
	case errors.Is(err, pgperrors.ErrKeyIncorrect):
		return ErrNotForKey
	case errors.Is(err, pgperrors.ErrMDCMissing), errors.Is(err, pgperrors.ErrMDCHashMismatch),
		errors.Is(err, pgperrors.ErrAEADTagVerification), errors.Is(err, pgperrors.ErrDecryptSessionKeyParsing):
		return fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	var dec pgperrors.DecryptWithSessionKeyError
	var sig pgperrors.SignatureError
	if errors.As(err, &dec) || errors.As(err, &sig) {
		return fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	if strings.Contains(err.Error(), "not integrity protected") {
		return fmt.Errorf("%w: %v", ErrNoIntegrity, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated message", ErrIntegrity)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// begin parses the message header packets and decrypts the session key.
func begin(src io.Reader, key *Key, opt OpenOptions) (*openpgp.MessageDetails, error) {
	if key == nil || !key.IsPrivate() {
		return nil, fmt.Errorf("%w: no secret key to decrypt with", ErrNotForKey)
	}
	md, err := openpgp.ReadMessage(src, keyring(key, opt.Verifiers), nil, openConfig(maxSize(opt)))
	if err != nil {
		return nil, mapReadErr(err)
	}
	if !md.IsEncrypted {
		return nil, fmt.Errorf("%w: message is not encrypted", ErrNoIntegrity)
	}
	return md, nil
}

// sigResult reads the signature outcome once the body has been read to EOF.
func sigResult(md *openpgp.MessageDetails) (SigStatus, string, string) {
	if !md.IsSigned {
		return SigUnsigned, "", ""
	}
	keyID := fmt.Sprintf("%016X", md.SignedByKeyId)
	if md.SignedBy == nil {
		return SigUnknownSigner, "", keyID
	}
	fp := fingerprintOf(md.SignedBy.Entity)
	if md.SignatureError != nil || md.Signature == nil {
		return SigInvalid, fp, keyID
	}
	return SigValid, fp, keyID
}

// Open decrypts a binary OpenPGP message with key's secret key. Plaintext is
// returned only when the message is integrity protected (MDC or AEAD) and
// the check passed; the signature outcome is in the result.
func Open(ciphertext []byte, key *Key, opt OpenOptions) (*Opened, error) {
	md, err := begin(bytes.NewReader(ciphertext), key, opt)
	if err != nil {
		return nil, err
	}
	max := maxSize(opt)
	var buf bytes.Buffer
	// Plaintext is at most the ciphertext's size (no compression is ever
	// produced by us); bytes.Buffer.ReadFrom wants MinRead spare bytes, and
	// without them it doubles the buffer just before EOF.
	buf.Grow(int(min(int64(len(ciphertext)), max)) + bytes.MinRead)
	n, err := io.Copy(&buf, io.LimitReader(md.UnverifiedBody, max+1))
	if err == nil && n > max {
		err = ErrTooLarge
	}
	if err != nil {
		wipe(buf.Bytes())
		return nil, mapReadErr(err)
	}
	st, fp, id := sigResult(md)
	return &Opened{Plaintext: buf.Bytes(), Signature: st, SignerFingerprint: fp, SignerKeyID: id}, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
