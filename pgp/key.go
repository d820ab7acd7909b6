package pgp

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// Limits on key material read from outside, so that a "key bomb" (a key
// with thousands of User IDs or subkeys, each costing a signature check)
// fails fast instead of burning CPU and memory.
const (
	maxKeyBytes    = 1 << 20
	maxKeyUIDs     = 100
	maxKeySubkeys  = 50
	maxKeyPackets  = 5000
	maxKeyEntities = 20
)

// Key is one OpenPGP certificate (transferable public key), optionally with
// its unlocked secret key material. A Key is immutable once built and safe
// for concurrent use.
type Key struct {
	entity *openpgp.Entity
}

// keyConfig is the generation profile: a v4 key with a legacy EdDSA
// (Ed25519) primary and a legacy ECDH Curve25519 subkey — the newest
// algorithms GnuPG 2.2 and Sequoia 0.27 read. The self-signature advertises
// SEIPDv2 with AES-256/GCM first, so two sMessenger keys may use AEAD while
// older readers, which ignore that feature bit, keep using SEIPDv1.
func keyConfig() *packet.Config {
	return &packet.Config{
		Algorithm:     packet.PubKeyAlgoEdDSA,
		Curve:         packet.Curve25519,
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
		AEADConfig:    &packet.AEADConfig{DefaultMode: packet.AEADModeGCM},
		V6Keys:        false,
	}
}

// GenerateKey creates a user key with the User ID "name <address>".
func GenerateKey(name, address string) (*Key, error) {
	addr, err := mail.ParseAddress(address)
	if err != nil || addr.Name != "" || !strings.Contains(addr.Address, "@") {
		return nil, fmt.Errorf("pgp: invalid address %q", address)
	}
	if strings.ContainsAny(name, "()<>\x00") {
		return nil, errors.New("pgp: name must not contain ()<> or NUL")
	}
	e, err := openpgp.NewEntity(name, "", addr.Address, keyConfig())
	if err != nil {
		return nil, fmt.Errorf("pgp: generate key: %w", err)
	}
	return &Key{entity: e}, nil
}

// ReadKey reads exactly one public key, armored or binary, and checks that
// it is usable for encryption: errors wrap ErrUnusableKey (expired, revoked,
// no encryption subkey), ErrWeakKey or ErrMalformed and say why. Any secret
// key material in data is dropped; use ImportPrivate for secret keys.
func ReadKey(data []byte) (*Key, error) {
	keys, err := ReadKeys(data)
	if err != nil {
		return nil, err
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("%w: %d keys where one was expected", ErrMalformed, len(keys))
	}
	return keys[0], nil
}

// ReadKeys reads one or more public keys (a keyring), armored or binary.
// Every key must pass the checks of ReadKey.
func ReadKeys(data []byte) ([]*Key, error) {
	el, err := parseKeyring(data)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]*Key, 0, len(el))
	for _, e := range el {
		if err := validateEntity(e, now); err != nil {
			return nil, err
		}
		out = append(out, (&Key{entity: e}).Public())
	}
	return out, nil
}

// unarmor returns the binary form of data, decoding ASCII armor if present.
func unarmor(data []byte) ([]byte, error) {
	// Armor costs 4/3 of the binary plus line breaks: anything much larger
	// cannot hold a key we would accept, so refuse it before any work.
	if len(data) > 2*maxKeyBytes {
		return nil, fmt.Errorf("%w: key data larger than %d bytes", ErrUnusableKey, maxKeyBytes)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, armorBegin) {
		return data, nil
	}
	typ, bin, err := dearmor(trimmed, maxKeyBytes)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("%w: key data larger than %d bytes", ErrUnusableKey, maxKeyBytes)
	}
	if err != nil {
		return nil, err
	}
	if typ != openpgp.PublicKeyType[len("PGP "):] && typ != openpgp.PrivateKeyType[len("PGP "):] {
		return nil, fmt.Errorf("%w: armor type %q is not a key", ErrMalformed, typ)
	}
	return bin, nil
}

// parseKeyring unarmors, parses every packet once while counting them (the
// key-bomb guard, before any signature is verified), then builds the
// entities from the parsed packets. Parsing once, not twice, also halves
// the cost of rejecting malformed input, which is most of what a fuzzer
// (and an attacker) sends.
func parseKeyring(data []byte) (openpgp.EntityList, error) {
	bin, err := unarmor(data)
	if err != nil {
		return nil, err
	}
	if len(bin) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key data larger than %d bytes", ErrUnusableKey, maxKeyBytes)
	}
	packets, err := scanKeyPackets(bin)
	if err != nil {
		return nil, err
	}
	// packet.Reader serves unread packets last-in first-out.
	pr := packet.NewReader(bytes.NewReader(nil))
	for i := len(packets) - 1; i >= 0; i-- {
		pr.Unread(packets[i])
	}
	el, err := readEntities(pr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%w: no key found", ErrMalformed)
	}
	return el, nil
}

// readEntities reads every certificate from pr, skipping certificates that
// go-crypto cannot use (unsupported algorithms, broken structure), as
// openpgp.ReadKeyRing does; if none is usable, the last reason is returned.
func readEntities(pr *packet.Reader) (openpgp.EntityList, error) {
	var el openpgp.EntityList
	var lastErr error
	for {
		e, err := openpgp.ReadEntity(pr)
		if err == io.EOF {
			break
		}
		var unsup pgperrors.UnsupportedError
		var structural pgperrors.StructuralError
		if err != nil && !errors.As(err, &unsup) && !errors.As(err, &structural) {
			return nil, err
		}
		if err != nil {
			lastErr = err
			skipToNextKey(pr)
			continue
		}
		el = append(el, e)
	}
	if len(el) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return el, nil
}

// skipToNextKey drops packets up to the next primary key, which it leaves
// in pr.
func skipToNextKey(pr *packet.Reader) {
	for {
		p, err := pr.Next()
		if err != nil {
			return
		}
		switch p := p.(type) {
		case *packet.PublicKey:
			if !p.IsSubkey {
				pr.Unread(p)
				return
			}
		case *packet.PrivateKey:
			if !p.IsSubkey {
				pr.Unread(p)
				return
			}
		}
	}
}

// walkKeyPackets checks the packet framing of a binary keyring and counts
// packets, certificates, User IDs and subkeys from the packet headers
// alone (RFC 9580 section 4.2), before anything is parsed or verified. It
// costs no allocation, and most damaged input (and every key bomb) fails
// here. Partial and indeterminate lengths are refused: RFC 9580 allows
// them for data packets only, never in a certificate.
func walkKeyPackets(bin []byte) error {
	var packets, entities, uids, subkeys int
	for off := 0; off < len(bin); {
		tag, hl, bodyLen, ok := packetHeader(bin[off:])
		if !ok || bodyLen < 0 || bodyLen > len(bin)-off-hl {
			return fmt.Errorf("%w: bad packet framing at offset %d", ErrMalformed, off)
		}
		off += hl + bodyLen
		if packets++; packets > maxKeyPackets {
			return fmt.Errorf("%w: more than %d packets", ErrUnusableKey, maxKeyPackets)
		}
		switch tag {
		case 5, 6: // secret or public primary key
			entities, uids, subkeys = entities+1, 0, 0
		case 7, 14: // secret or public subkey
			subkeys++
		case 13: // User ID
			uids++
		}
		switch {
		case entities > maxKeyEntities:
			return fmt.Errorf("%w: more than %d keys", ErrUnusableKey, maxKeyEntities)
		case uids > maxKeyUIDs:
			return fmt.Errorf("%w: more than %d User IDs", ErrUnusableKey, maxKeyUIDs)
		case subkeys > maxKeySubkeys:
			return fmt.Errorf("%w: more than %d subkeys", ErrUnusableKey, maxKeySubkeys)
		}
	}
	return nil
}

// scanKeyPackets checks the framing (walkKeyPackets) and then parses every
// packet, without verifying anything. Packets go-crypto does not support
// are dropped, as its packet reader would drop them.
func scanKeyPackets(bin []byte) ([]packet.Packet, error) {
	if err := walkKeyPackets(bin); err != nil {
		return nil, err
	}
	pr := packet.NewReader(bytes.NewReader(bin))
	var out []packet.Packet
	for {
		p, err := pr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			var unsup pgperrors.UnsupportedError
			var unknown pgperrors.UnknownPacketTypeError
			if errors.As(err, &unsup) || errors.As(err, &unknown) {
				continue
			}
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		out = append(out, p)
	}
}

// checkAlgorithm rejects algorithms and sizes that are broken or too weak.
func checkAlgorithm(pk *packet.PublicKey) error {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSAEncryptOnly, packet.PubKeyAlgoRSASignOnly:
		bits, err := pk.BitLength()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if bits < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits (at least 2048 required)", ErrWeakKey, bits)
		}
	case packet.PubKeyAlgoDSA:
		return fmt.Errorf("%w: DSA keys are not accepted", ErrWeakKey)
	case packet.PubKeyAlgoElGamal:
		return fmt.Errorf("%w: ElGamal keys are not accepted", ErrWeakKey)
	}
	return nil
}

// validateEntity checks that e can receive encrypted mail now.
func validateEntity(e *openpgp.Entity, now time.Time) error {
	if err := checkAlgorithm(e.PrimaryKey); err != nil {
		return err
	}
	if e.Revoked(now) {
		return fmt.Errorf("%w: key %s is revoked", ErrUnusableKey, fingerprintOf(e))
	}
	sig, ident := e.PrimarySelfSignature()
	if sig == nil {
		return fmt.Errorf("%w: key %s has no valid self-signature", ErrUnusableKey, fingerprintOf(e))
	}
	if e.PrimaryKey.KeyExpired(sig, now) || sig.SigExpired(now) {
		return fmt.Errorf("%w: key %s has expired", ErrUnusableKey, fingerprintOf(e))
	}
	if ident != nil && ident.Revoked(now) {
		return fmt.Errorf("%w: primary User ID of %s is revoked", ErrUnusableKey, fingerprintOf(e))
	}
	enc, ok := e.EncryptionKey(now)
	if !ok {
		return fmt.Errorf("%w: key %s has no valid encryption subkey", ErrUnusableKey, fingerprintOf(e))
	}
	return checkAlgorithm(enc.PublicKey)
}

func fingerprintOf(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// Fingerprint returns the primary key fingerprint as upper-case hex (40
// digits for a v4 key).
func (k *Key) Fingerprint() string { return fingerprintOf(k.entity) }

// DisplayFingerprint returns the fingerprint in groups of four hex digits
// separated by spaces, the form people compare by eye.
func (k *Key) DisplayFingerprint() string {
	fp := k.Fingerprint()
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fp[i:min(i+4, len(fp))])
	}
	return b.String()
}

// Addresses returns the lower-cased e-mail addresses of the key's
// non-revoked User IDs, sorted and without duplicates.
func (k *Key) Addresses() []string {
	now := time.Now()
	seen := map[string]bool{}
	var out []string
	for _, id := range k.entity.Identities {
		if id.UserId == nil || id.Revoked(now) {
			continue
		}
		a := strings.ToLower(strings.TrimSpace(id.UserId.Email))
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// HasAddress reports whether address (case-insensitive) is one of the key's
// User ID addresses.
func (k *Key) HasAddress(address string) bool {
	address = strings.ToLower(strings.TrimSpace(address))
	for _, a := range k.Addresses() {
		if a == address {
			return true
		}
	}
	return false
}

// Public returns a copy of k without any secret key material.
func (k *Key) Public() *Key {
	e := *k.entity
	e.PrivateKey = nil
	e.Subkeys = make([]openpgp.Subkey, len(k.entity.Subkeys))
	for i, sk := range k.entity.Subkeys {
		sk.PrivateKey = nil
		e.Subkeys[i] = sk
	}
	return &Key{entity: &e}
}

// IsPrivate reports whether k holds secret key material.
func (k *Key) IsPrivate() bool { return k.entity.PrivateKey != nil }

// PublicBinary returns the binary transferable public key.
func (k *Key) PublicBinary() []byte {
	var buf bytes.Buffer
	// Serialize only fails on a broken writer; bytes.Buffer is not one.
	_ = k.entity.Serialize(&buf)
	return buf.Bytes()
}

// PublicArmored returns the ASCII-armored public key.
func (k *Key) PublicArmored() string {
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	_, _ = w.Write(k.PublicBinary())
	_ = w.Close()
	return buf.String()
}

// SupportsAEAD reports whether the key advertises SEIPDv2 (RFC 9580 AEAD
// encryption) in its self-signature's Features.
func (k *Key) SupportsAEAD() bool {
	sig, _ := k.entity.PrimarySelfSignature()
	return sig != nil && sig.SEIPDv2
}

// Entity exposes the underlying go-crypto entity for callers that need
// lower-level operations. It must not be modified.
func (k *Key) Entity() *openpgp.Entity { return k.entity }

// ExportPrivate returns the armored secret key protected by passphrase with
// iterated and salted S2K (SHA-256, maximum count) and CFB, the strongest
// protection GnuPG 2.2 and Sequoia 0.27 can read. ExportPrivateArgon2 gives
// a stronger form for go-crypto readers.
func (k *Key) ExportPrivate(passphrase []byte) ([]byte, error) {
	return k.exportPrivate(passphrase, &packet.Config{S2KConfig: &s2k.Config{
		S2KMode:  s2k.IteratedSaltedS2K,
		Hash:     crypto.SHA256,
		S2KCount: 65011712,
	}})
}

// ExportPrivateArgon2 is ExportPrivate with Argon2 S2K and AEAD secret-key
// protection (RFC 9580 section 3.7.1.4). GnuPG 2.2 and Sequoia 0.27 cannot
// read it; the bridge uses it for its own storage.
func (k *Key) ExportPrivateArgon2(passphrase []byte) ([]byte, error) {
	return k.exportPrivate(passphrase, &packet.Config{
		S2KConfig:  &s2k.Config{S2KMode: s2k.Argon2S2K},
		AEADConfig: &packet.AEADConfig{DefaultMode: packet.AEADModeOCB},
	})
}

func (k *Key) exportPrivate(passphrase []byte, cfg *packet.Config) ([]byte, error) {
	if !k.IsPrivate() {
		return nil, fmt.Errorf("%w: no secret key material", ErrUnusableKey)
	}
	if len(passphrase) == 0 {
		return nil, errors.New("pgp: an empty passphrase is not allowed")
	}
	// Encrypting mutates the entity, so work on a private copy.
	var plain bytes.Buffer
	if err := k.entity.SerializePrivateWithoutSigning(&plain, nil); err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	cp, err := openpgp.ReadEntity(packet.NewReader(&plain))
	if err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	if err := cp.EncryptPrivateKeys(passphrase, cfg); err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	if err := cp.SerializePrivateWithoutSigning(w, nil); err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgp: export: %w", err)
	}
	return out.Bytes(), nil
}

// ImportPrivate reads one secret key (armored or binary), unlocks it with
// passphrase (ignored for an unprotected key) and checks it like ReadKey.
func ImportPrivate(data, passphrase []byte) (*Key, error) {
	el, err := parseKeyring(data)
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: %d keys where one was expected", ErrMalformed, len(el))
	}
	e := el[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("%w: no secret key material", ErrUnusableKey)
	}
	if err := e.DecryptPrivateKeys(passphrase); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPassphrase, err)
	}
	if err := validateEntity(e, time.Now()); err != nil {
		return nil, err
	}
	enc, _ := e.EncryptionKey(time.Now())
	if enc.PrivateKey == nil || enc.PrivateKey.Dummy() {
		return nil, fmt.Errorf("%w: encryption subkey has no secret material", ErrUnusableKey)
	}
	return &Key{entity: e}, nil
}
