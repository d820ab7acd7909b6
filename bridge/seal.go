package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// errOpen is returned when a sealed record fails authentication: a wrong key,
// a damaged record, or one moved to another place (the AAD binds each record
// to its location).
var errOpen = errors.New("bridge: record failed authentication")

// sealer encrypts small records with XChaCha20-Poly1305 and a random 24-byte
// nonce per record, so nonces never repeat even across processes.
type sealer struct{ key []byte }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("bridge: key must be %d bytes", chacha20poly1305.KeySize)
	}
	return &sealer{key: append([]byte(nil), key...)}, nil
}

// seal returns nonce || ciphertext.
func (s *sealer) seal(plain, aad []byte) []byte {
	aead, _ := chacha20poly1305.NewX(s.key) // key length checked in newSealer
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("bridge: no randomness: " + err.Error()) // crypto/rand never fails on supported systems
	}
	return aead.Seal(out, out, plain, aad)
}

func (s *sealer) open(sealed, aad []byte) ([]byte, error) {
	return s.openAppend(nil, sealed, aad)
}

// sealOverhead is what seal adds to a plaintext: nonce and tag.
const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// openAppend opens sealed and appends the plaintext to dst; when dst has
// the room, nothing is allocated (large bodies are opened chunk by chunk
// into one buffer).
func (s *sealer) openAppend(dst, sealed, aad []byte) ([]byte, error) {
	aead, _ := chacha20poly1305.NewX(s.key)
	if len(sealed) < sealOverhead {
		return nil, errOpen
	}
	nonce, ct := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	plain, err := aead.Open(dst, nonce, ct, aad)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

// kdfParams are the Argon2id parameters stored in the vault so they can be
// raised later without breaking old vaults.
type kdfParams struct {
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// defaultKDF is what new vaults use: RFC 9106's second recommended option
// (64 MiB, 3 passes) — a few hundred milliseconds once per start.
var defaultKDF = kdfParams{Time: 3, Memory: 64 * 1024, Threads: 2}

// maxKDFMemory bounds what a (possibly tampered) vault can make us allocate.
const maxKDFMemory = 1024 * 1024 // 1 GiB in KiB

func (p kdfParams) derive(pass []byte) ([]byte, error) {
	if len(p.Salt) < 16 || p.Time == 0 || p.Time > 64 || p.Memory < 8 || p.Memory > maxKDFMemory || p.Threads == 0 {
		return nil, fmt.Errorf("%w: bad key derivation parameters", ErrVaultDamaged)
	}
	key := argon2.IDKey(pass, p.Salt, p.Time, p.Memory, p.Threads, chacha20poly1305.KeySize)
	// The derivation's memory (64 MiB by default) is garbage now; hand it
	// back to the OS at once rather than keep it in the process's RSS until
	// the runtime's background scavenger gets to it. This runs once per
	// unlock, while the heap is small, so the forced collection is cheap.
	debug.FreeOSMemory()
	return key, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("bridge: no randomness: " + err.Error())
	}
	return b
}
