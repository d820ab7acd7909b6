package imapd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Names of the files GenerateLocalCert keeps in its folder.
const (
	CertFile = "local-cert.pem"
	KeyFile  = "local-key.pem"
)

// GenerateLocalCert returns the bridge's self-signed certificate for
// STARTTLS and IMAPS, creating it in dir on first use and reusing it after,
// so a user who trusted it once keeps trusting it. Its SANs are 127.0.0.1,
// ::1 and localhost, because mbsync checks the name even for a pinned
// certificate. The key file is written with mode 0600.
func GenerateLocalCert(dir string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && coversLoopback(certPath) {
		return certPath, keyPath, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("imapd: existing local certificate unusable: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("imapd: local certificate folder: %w", err)
	}
	certPEM, keyPEM, err := newLocalCert(time.Now())
	if err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

func coversLoopback(certPath string) bool {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || time.Now().After(c.NotAfter) {
		return false
	}
	return slices.Contains(c.DNSNames, "localhost") && c.VerifyHostname("127.0.0.1") == nil && c.VerifyHostname("::1") == nil
}

func newLocalCert(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("imapd: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, fmt.Errorf("imapd: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sMessenger bridge (localhost)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: clients pin it as its own root
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("imapd: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("imapd: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("imapd: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("imapd: write %s: %w", filepath.Base(path), err)
	}
	return nil
}
