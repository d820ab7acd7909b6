package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"smessenger/internal/api"
)

// Config is a node's configuration, as stored in config.toml by Init.
// Relative file paths are relative to DataDir.
type Config struct {
	// DataDir holds the keys, the certificate and (for bbolt) the store.
	DataDir string `toml:"data_dir"`
	// Domains are the mail domains this node serves (WKD, addresses).
	Domains []string `toml:"domains"`
	// PublicAddress is the host:port (or onion:port) bridges dial; it is
	// informative (printed for bridge setup), the node listens on APIListen.
	PublicAddress string `toml:"public_address"`
	// APIListen is the bridge API's TCP address (TLS + Noise).
	APIListen string `toml:"api_listen"`
	// WKDListen is the public HTTPS address for WKD; empty disables it.
	WKDListen string `toml:"wkd_listen,omitempty"`
	// WKDPlainHTTP serves WKD without TLS, for a node behind a TLS-
	// terminating reverse proxy.
	WKDPlainHTTP bool `toml:"wkd_plain_http"`
	// AdminListen is the admin endpoint (healthz, readyz, metrics); it must
	// be a loopback address. Empty disables it.
	AdminListen string `toml:"admin_listen"`

	NoiseKeyFile string `toml:"noise_key_file"` // private key, base64url
	TLSCertFile  string `toml:"tls_cert_file"`  // PEM
	TLSKeyFile   string `toml:"tls_key_file"`   // PEM

	// Store says which store the command line opens; New takes an open one.
	Store StoreConfig `toml:"store"`

	// HandshakesPerMinute bounds new API connections per source address
	// (state in memory only, keyed by a rotating keyed hash). 0: default
	// 120; negative: unlimited.
	HandshakesPerMinute int `toml:"handshakes_per_minute,omitzero"`
	// HandshakeTimeout bounds TLS + Noise handshakes; 0: channel default.
	HandshakeTimeout time.Duration `toml:"handshake_timeout,omitzero"`
	// TokenTTL is the lifetime of enrolment tokens; 0: 7 days.
	TokenTTL time.Duration `toml:"token_ttl,omitzero"`
	// Limits bound every API request.
	Limits api.Limits `toml:"limits,omitempty"`
}

// StoreConfig selects the store backend.
type StoreConfig struct {
	Backend  string `toml:"backend"`             // "bolt" (default) or "redis"
	BoltPath string `toml:"bolt_path,omitempty"` // relative to DataDir; default "store.db"
	RedisURL string `toml:"redis_url,omitempty"` // redis://… or unix://…
}

// Defaults of Config.
const (
	DefaultAPIListen           = ":7443"
	DefaultAdminListen         = "127.0.0.1:7480"
	DefaultHandshakesPerMinute = 120
	DefaultTokenTTL            = 7 * 24 * time.Hour
	ConfigFileName             = "config.toml"
)

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("server: invalid configuration")

// LoadConfig reads a config.toml. Relative paths in it are made absolute
// against the file's folder when DataDir is empty or relative.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("server: read config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Config{}, fmt.Errorf("%w: unknown key %q in %s", ErrConfig, und[0].String(), path)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Dir(path)
	} else if !filepath.IsAbs(cfg.DataDir) {
		cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
	}
	return cfg, nil
}

// WriteConfig writes cfg as TOML to path with mode 0600; it refuses to
// overwrite an existing file.
func WriteConfig(path string, cfg Config) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("server: write config: %w", err)
	}
	if err := toml.NewEncoder(f).Encode(cfg); err != nil {
		f.Close()
		return fmt.Errorf("server: write config: %w", err)
	}
	return f.Close()
}

// path resolves a configured file name against DataDir.
func (c Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// BoltPath is the store file for the bolt backend.
func (c Config) BoltPath() string {
	if c.Store.BoltPath == "" {
		return c.path("store.db")
	}
	return c.path(c.Store.BoltPath)
}

// checkLoopback refuses an admin address that is not on a loopback
// interface: metrics must not be public.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: admin_listen %q: %v", ErrConfig, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: admin_listen must be a loopback address", ErrConfig)
	}
	return nil
}
