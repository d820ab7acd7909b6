package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smessenger/internal/channel"
)

// InitConfig is what `server init` asks for.
type InitConfig struct {
	// PublicAddress is the host:port bridges will dial (required).
	PublicAddress string
	// Domains are the mail domains served (required, at least one).
	Domains []string
	// APIListen, WKDListen and AdminListen default to DefaultAPIListen,
	// "" (WKD off) and DefaultAdminListen.
	APIListen, WKDListen, AdminListen string
	// TLSCertFile and TLSKeyFile point at a real certificate; when both are
	// empty a self-signed one is generated in the data folder.
	TLSCertFile, TLSKeyFile string
	// Store selects the backend written to the config.
	Store StoreConfig
}

// InitResult is what a bridge needs to trust the new server, and where
// things were written. Init prints nothing; the command line prints this.
type InitResult struct {
	ConfigPath    string
	PublicAddress string
	// ServerKey is the Noise static public key in channel.Fingerprint form;
	// bridges pin it.
	ServerKey string
	// TLSCertFile is the certificate in use; SelfSigned says whether Init
	// made it.
	TLSCertFile string
	SelfSigned  bool
}

// ErrExists is returned by Init when the folder already holds a server.
var ErrExists = errors.New("server: data folder already initialised")

// Init creates a server's data folder: the Noise static key pair, a TLS
// certificate (self-signed unless paths to a real one are given) and
// config.toml. It refuses a folder that already has a config.
func Init(dir string, ic InitConfig) (InitResult, error) {
	if ic.PublicAddress == "" || len(ic.Domains) == 0 {
		return InitResult{}, fmt.Errorf("%w: init needs a public address and at least one domain", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(ic.PublicAddress); err != nil {
		return InitResult{}, fmt.Errorf("%w: public address must be host:port", ErrConfig)
	}
	if (ic.TLSCertFile == "") != (ic.TLSKeyFile == "") {
		return InitResult{}, fmt.Errorf("%w: give both a TLS certificate and its key, or neither", ErrConfig)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return InitResult{}, fmt.Errorf("server: init: %w", err)
	}
	cfgPath := filepath.Join(abs, ConfigFileName)
	if _, err := os.Stat(cfgPath); err == nil {
		return InitResult{}, ErrExists
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("server: init: %w", err)
	}
	kp, err := channel.GenerateKeyPair()
	if err != nil {
		return InitResult{}, err
	}
	cfg := Config{
		DataDir: abs, Domains: lowerAll(ic.Domains), PublicAddress: ic.PublicAddress,
		APIListen: orDefault(ic.APIListen, DefaultAPIListen), WKDListen: ic.WKDListen,
		AdminListen:  orDefault(ic.AdminListen, DefaultAdminListen),
		NoiseKeyFile: "noise.key", TLSCertFile: ic.TLSCertFile, TLSKeyFile: ic.TLSKeyFile,
		Store: ic.Store,
	}
	if cfg.AdminListen != "" {
		if err := checkLoopback(cfg.AdminListen); err != nil {
			return InitResult{}, err
		}
	}
	if err := writeSecret(filepath.Join(abs, cfg.NoiseKeyFile), []byte(base64.RawURLEncoding.EncodeToString(kp.Private)+"\n")); err != nil {
		return InitResult{}, err
	}
	selfSigned := ic.TLSCertFile == ""
	if selfSigned {
		cfg.TLSCertFile, cfg.TLSKeyFile = "tls.crt", "tls.key"
		host, _, _ := net.SplitHostPort(ic.PublicAddress)
		names := append([]string{host, "localhost"}, cfg.Domains...)
		for _, d := range cfg.Domains {
			names = append(names, "openpgpkey."+d)
		}
		if err := writeSelfSigned(cfg.path(cfg.TLSCertFile), cfg.path(cfg.TLSKeyFile), names); err != nil {
			return InitResult{}, err
		}
	}
	if _, err := loadTLS(cfg); err != nil {
		return InitResult{}, err
	}
	if err := WriteConfig(cfgPath, cfg); err != nil {
		return InitResult{}, err
	}
	return InitResult{
		ConfigPath: cfgPath, PublicAddress: ic.PublicAddress,
		ServerKey: channel.Fingerprint(kp.Public), TLSCertFile: cfg.path(cfg.TLSCertFile), SelfSigned: selfSigned,
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}

// writeSecret creates a 0600 file that must not exist yet.
func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("server: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("server: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("server: write %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// writeSelfSigned makes an ECDSA P-256 certificate for names (host names
// or IP literals), valid five years.
func writeSelfSigned(certPath, keyPath string, names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server: tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("server: tls serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("server: tls certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("server: tls key: %w", err)
	}
	if err := writeSecret(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})); err != nil {
		return err
	}
	return writeSecret(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// loadNoiseKey reads the node's Noise static key pair.
func loadNoiseKey(cfg Config) (channel.KeyPair, error) {
	b, err := os.ReadFile(cfg.path(cfg.NoiseKeyFile))
	if err != nil {
		return channel.KeyPair{}, fmt.Errorf("server: noise key: %w", err)
	}
	priv, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return channel.KeyPair{}, fmt.Errorf("%w: noise key file is not base64url", ErrConfig)
	}
	return channel.KeyPairFromPrivate(priv)
}

// loadTLS reads the certificate and key into a TLS 1.3 server config.
func loadTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.path(cfg.TLSCertFile), cfg.path(cfg.TLSKeyFile))
	if err != nil {
		return nil, fmt.Errorf("server: tls certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, nil
}

// PublicNoiseKey returns the public half of the node's Noise static key, the
// key bridges pin (print it with channel.Fingerprint).
func PublicNoiseKey(cfg Config) ([]byte, error) {
	kp, err := loadNoiseKey(cfg)
	if err != nil {
		return nil, err
	}
	return kp.Public, nil
}
