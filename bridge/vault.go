package bridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sentinel errors of the vault; test with errors.Is.
var (
	// ErrWrongPassphrase: the passphrase does not unlock the vault.
	ErrWrongPassphrase = errors.New("bridge: wrong passphrase")
	// ErrNoVault: the data folder holds no vault (run login first).
	ErrNoVault = errors.New("bridge: no vault in the data folder")
	// ErrVaultExists: login refuses to overwrite an existing vault.
	ErrVaultExists = errors.New("bridge: a vault already exists in the data folder")
	// ErrVaultDamaged: the vault file cannot be parsed or is inconsistent.
	ErrVaultDamaged = errors.New("bridge: vault file damaged")
)

// vaultName is the vault's file name inside the data folder.
const vaultName = "vault.json"

// vaultVersion is the schema version of vault.json.
const vaultVersion = 1

// maxVaultSize bounds what we read from disk before parsing.
const maxVaultSize = 1 << 20

// vaultFile is vault.json. The OpenPGP secret key is stored as pgp's
// passphrase-protected (S2K) armored export; the other secrets (the device's
// Noise private key and the cache key) are sealed with a key derived from the
// passphrase. The AAD of the sealed part binds the account, the server and
// its pinned key, and the bridge password hash, so editing any of them makes
// unlocking fail instead of silently talking to another server.
type vaultFile struct {
	Version      int       `json:"version"`
	Address      string    `json:"address"`
	Addresses    []string  `json:"addresses"`
	Name         string    `json:"name,omitempty"`
	ServerAddr   string    `json:"server_addr"`
	ServerKey    string    `json:"server_key"`
	Proxy        string    `json:"proxy,omitempty"`
	DeviceID     string    `json:"device_id,omitempty"`
	Fingerprint  string    `json:"fingerprint"`
	SecretKey    string    `json:"secret_key"`
	KDF          kdfParams `json:"kdf"`
	Sealed       []byte    `json:"sealed"`
	PasswordSalt []byte    `json:"password_salt"`
	PasswordHash []byte    `json:"password_hash"`
	Created      time.Time `json:"created"`
}

// vaultSecrets is the sealed part of the vault.
type vaultSecrets struct {
	NoisePrivate []byte `json:"noise_private"`
	NoisePublic  []byte `json:"noise_public"`
	CacheKey     []byte `json:"cache_key"`
}

func (v *vaultFile) aad() []byte {
	parts := []string{"smessenger-vault-v1", v.Address, v.ServerAddr, v.ServerKey, v.Fingerprint,
		base64.StdEncoding.EncodeToString(v.PasswordSalt), base64.StdEncoding.EncodeToString(v.PasswordHash)}
	return []byte(strings.Join(parts, "\x00"))
}

// sealSecrets derives the vault key from pass with fresh parameters and seals s.
func (v *vaultFile) sealSecrets(pass []byte, s vaultSecrets) error {
	v.KDF = defaultKDF
	v.KDF.Salt = randomBytes(16)
	key, err := v.KDF.derive(pass)
	if err != nil {
		return err
	}
	sl, err := newSealer(key)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("bridge: encode vault secrets: %w", err)
	}
	v.Sealed = sl.seal(plain, v.aad())
	return nil
}

// openSecrets unlocks the sealed part with pass.
func (v *vaultFile) openSecrets(pass []byte) (vaultSecrets, error) {
	var s vaultSecrets
	key, err := v.KDF.derive(pass)
	if err != nil {
		return s, err
	}
	sl, err := newSealer(key)
	if err != nil {
		return s, err
	}
	plain, err := sl.open(v.Sealed, v.aad())
	if err != nil {
		return s, ErrWrongPassphrase
	}
	if err := json.Unmarshal(plain, &s); err != nil || len(s.CacheKey) != 32 || len(s.NoisePrivate) == 0 {
		return s, fmt.Errorf("%w: sealed secrets malformed", ErrVaultDamaged)
	}
	return s, nil
}

// setBridgePassword stores a salted hash of the mail client's password. The
// password is 144 random bits, so a fast hash is enough and keeps IMAP
// logins cheap; the passphrase itself is never hashed into the vault.
func (v *vaultFile) setBridgePassword(pw string) {
	v.PasswordSalt = randomBytes(16)
	v.PasswordHash = hashBridgePassword(v.PasswordSalt, pw)
}

func hashBridgePassword(salt []byte, pw string) []byte {
	h := sha256.New()
	h.Write([]byte("smessenger-bridge-password\x00"))
	h.Write(salt)
	h.Write([]byte(pw))
	return h.Sum(nil)
}

func (v *vaultFile) checkBridgePassword(pw string) bool {
	if len(v.PasswordHash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hashBridgePassword(v.PasswordSalt, pw), v.PasswordHash) == 1
}

// newBridgePassword returns a random password for the mail client: 144
// bits in 29 base32 characters. Letters and digits only, because base64url
// could begin with "-", which command-line clients (swaks, curl, msmtp's
// passwordeval users) take for an option.
func newBridgePassword() string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(18))
}

// parseVault decodes vault.json and checks its shape; it never panics.
func parseVault(data []byte) (*vaultFile, error) {
	var v vaultFile
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVaultDamaged, err)
	}
	switch {
	case v.Version != vaultVersion:
		return nil, fmt.Errorf("%w: unknown version %d", ErrVaultDamaged, v.Version)
	case v.Address == "" || v.ServerAddr == "" || v.ServerKey == "" || v.SecretKey == "":
		return nil, fmt.Errorf("%w: missing fields", ErrVaultDamaged)
	case len(v.Sealed) == 0 || len(v.PasswordHash) != sha256.Size:
		return nil, fmt.Errorf("%w: missing secrets", ErrVaultDamaged)
	}
	if len(v.Addresses) == 0 {
		v.Addresses = []string{v.Address}
	}
	return &v, nil
}

// readVault loads the vault of dataDir.
func readVault(dataDir string) (*vaultFile, error) {
	f, err := os.Open(filepath.Join(dataDir, vaultName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoVault
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: open vault: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVaultSize+1))
	if err != nil {
		return nil, fmt.Errorf("bridge: read vault: %w", err)
	}
	if len(data) > maxVaultSize {
		return nil, fmt.Errorf("%w: file too large", ErrVaultDamaged)
	}
	return parseVault(data)
}

// writeVault writes the vault atomically (temp file, fsync, rename) with
// owner-only permissions.
func writeVault(dataDir string, v *vaultFile) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bridge: encode vault: %w", err)
	}
	return writeFileAtomic(filepath.Join(dataDir, vaultName), data)
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("bridge: write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	// One err throughout: a failed write or fsync must not be renamed into
	// place as if it had worked.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("bridge: write %s: %w", filepath.Base(path), err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable; best effort where unsupported
		d.Close()
	}
	return nil
}
