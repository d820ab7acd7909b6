package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smessenger/internal/channel"
	"smessenger/pgp"
)

// LoginConfig describes the setup of a bridge on this machine.
type LoginConfig struct {
	DataDir string
	Address string // the account's primary address
	Name    string // display name for the OpenPGP user id
	// ServerAddr is the server's API address (host:port); ServerKey its
	// Noise key as printed by `server init` (channel.Fingerprint).
	ServerAddr string
	ServerKey  string
	Token      string // one-time enrolment token from `user add`
	// Passphrase protects the secret key and the vault. It never leaves
	// this machine and is not the mail client's password.
	Passphrase []byte
	Proxy      string // "" or a SOCKS5 URL (Tor)
	TLS        *tls.Config
	// ImportedKey, when set, is a secret key exported by another device of
	// the same account (ExportKey), unlocked with ImportPassphrase (nil:
	// Passphrase); the key is used instead of generating a new one.
	ImportedKey      []byte
	ImportPassphrase []byte
	NewServer        func(addr string, cfg channel.ClientConfig) Server
}

// LoginResult is what the user needs to configure a mail client.
type LoginResult struct {
	// BridgePassword is the mail client's password for IMAP and SMTP on
	// this machine; it is shown once and only its hash is stored.
	BridgePassword string
	Fingerprint    string // of the account's OpenPGP key
	Addresses      []string
	DeviceID       string
	DataDir        string
}

// Login sets up the bridge: it generates (or imports) the OpenPGP key and
// generates the device's Noise key here, enrols the device with the token,
// uploads the public key, and writes the vault. Nothing secret is sent: the
// server learns only public keys.
func Login(ctx context.Context, cfg LoginConfig) (*LoginResult, error) {
	if err := checkLogin(&cfg); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, vaultName)); err == nil {
		return nil, ErrVaultExists
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("bridge: data folder: %w", err)
	}
	key, err := loginKey(cfg)
	if err != nil {
		return nil, err
	}
	serverKey, err := channel.ParseFingerprint(cfg.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("bridge: server key: %w", err)
	}
	noise, err := channel.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	who, err := enrol(ctx, cfg, serverKey, noise, key)
	if err != nil {
		return nil, err
	}
	// Iterated and salted S2K (GnuPG's form): the vault's own Argon2id
	// layer already makes guessing costly, and this keeps unlocking fast.
	armored, err := key.ExportPrivate(cfg.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("bridge: protect secret key: %w", err)
	}
	v := &vaultFile{
		Version: vaultVersion, Address: strings.ToLower(cfg.Address), Addresses: who.Addresses,
		Name: cfg.Name, ServerAddr: cfg.ServerAddr, ServerKey: cfg.ServerKey, Proxy: cfg.Proxy,
		DeviceID: who.DeviceID, Fingerprint: key.Fingerprint(), SecretKey: string(armored),
		Created: time.Now().UTC(),
	}
	if len(v.Addresses) > 0 {
		v.Address = v.Addresses[0]
	}
	pw := newBridgePassword()
	v.setBridgePassword(pw)
	err = v.sealSecrets(cfg.Passphrase, vaultSecrets{
		NoisePrivate: noise.Private, NoisePublic: noise.Public, CacheKey: randomBytes(32),
	})
	if err != nil {
		return nil, err
	}
	if err := writeVault(cfg.DataDir, v); err != nil {
		return nil, err
	}
	return &LoginResult{BridgePassword: pw, Fingerprint: v.Fingerprint, Addresses: v.Addresses,
		DeviceID: who.DeviceID, DataDir: cfg.DataDir}, nil
}

func checkLogin(cfg *LoginConfig) error {
	switch {
	case cfg.NewServer == nil:
		return errors.New("bridge: LoginConfig.NewServer is required")
	case cfg.DataDir == "" || cfg.Address == "" || cfg.ServerAddr == "" || cfg.ServerKey == "":
		return errors.New("bridge: data folder, address, server and server key are required")
	case cfg.Token == "":
		return errors.New("bridge: an enrolment token is required")
	case len(cfg.Passphrase) == 0:
		return errors.New("bridge: an empty passphrase is not allowed")
	case !strings.Contains(cfg.Address, "@"):
		return fmt.Errorf("bridge: %q is not an address", cfg.Address)
	}
	return nil
}

func loginKey(cfg LoginConfig) (*pgp.Key, error) {
	if cfg.ImportedKey == nil {
		k, err := pgp.GenerateKey(cfg.Name, cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("bridge: generate key: %w", err)
		}
		return k, nil
	}
	pass := cfg.ImportPassphrase
	if pass == nil {
		pass = cfg.Passphrase
	}
	return ImportKey(cfg.ImportedKey, pass)
}

// enrol registers the device with the token and uploads the public key.
// The token client is used for its first call only (that call's handshake
// consumes the token); later calls use a client without it.
func enrol(ctx context.Context, cfg LoginConfig, serverKey []byte, noise channel.KeyPair, key *pgp.Key) (WhoAmI, error) {
	first := cfg.NewServer(cfg.ServerAddr, channel.ClientConfig{
		ServerKey: serverKey, Static: noise, Payload: []byte(cfg.Token), TLS: cfg.TLS, Proxy: cfg.Proxy,
	})
	who, err := first.WhoAmI(ctx)
	closeServer(first)
	if err != nil {
		return WhoAmI{}, fmt.Errorf("bridge: enrol: %w", err)
	}
	srv := cfg.NewServer(cfg.ServerAddr, channel.ClientConfig{
		ServerKey: serverKey, Static: noise, TLS: cfg.TLS, Proxy: cfg.Proxy,
	})
	defer closeServer(srv)
	if err := srv.SetPublicKey(ctx, key.PublicBinary()); err != nil {
		return WhoAmI{}, fmt.Errorf("bridge: upload public key: %w", err)
	}
	return who, nil
}

func closeServer(s Server) {
	switch c := s.(type) {
	case io.Closer:
		c.Close()
	case interface{ CloseIdleConnections() }:
		c.CloseIdleConnections()
	}
}

// ExportKey returns the account's secret key as an armored OpenPGP file
// protected by pass (the vault's passphrase, verified first), in the form
// GnuPG and Sequoia read, for ImportKey on a second device. The server
// never sees it.
func ExportKey(dataDir string, pass []byte) ([]byte, error) {
	v, err := readVault(dataDir)
	if err != nil {
		return nil, err
	}
	if _, err := v.openSecrets(pass); err != nil {
		return nil, err
	}
	// The vault holds the key in ExportPrivate's form already.
	if _, err := pgp.ImportPrivate([]byte(v.SecretKey), pass); err != nil {
		return nil, fmt.Errorf("bridge: unlock secret key: %w", err)
	}
	return []byte(v.SecretKey), nil
}

// ImportKey reads a secret key file made by ExportKey (or by GnuPG) and
// unlocks it with pass; LoginConfig.ImportedKey takes the same file.
func ImportKey(data, pass []byte) (*pgp.Key, error) {
	k, err := pgp.ImportPrivate(data, pass)
	if errors.Is(err, pgp.ErrBadPassphrase) {
		return nil, fmt.Errorf("%w: %w", ErrWrongPassphrase, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: import key: %w", err)
	}
	return k, nil
}
