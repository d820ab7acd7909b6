package relay

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"smessenger/internal/store"
)

// dkimHeaders are the fields we sign (RFC 6376 section 5.4.1's list, less
// the rarely present ones). From is mandatory.
var dkimHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Autocrypt",
}

// sign prepends a DKIM-Signature for the sender's domain when we hold its
// key; otherwise, or on error, the payload goes unsigned (and the failure
// is logged) rather than not at all.
func (r *Relay) sign(e store.QueueEntry) []byte {
	domain := domainOf(e.From)
	key, ok := r.cfg.DKIM[domain]
	if !ok || key == nil || r.cfg.DKIMSelector == "" {
		return e.Payload
	}
	out, err := SignDKIM(e.Payload, domain, r.cfg.DKIMSelector, key)
	if err != nil {
		r.log.Warn("relay: DKIM signing failed", "entry", e.ID, "err", err)
		return e.Payload
	}
	return out
}

// SignDKIM returns msg with a DKIM-Signature (relaxed/relaxed, SHA-256)
// prepended.
func SignDKIM(msg []byte, domain, selector string, key crypto.Signer) ([]byte, error) {
	var sig bytes.Buffer
	err := dkim.Sign(&sig, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: dkim: %w", err)
	}
	return sig.Bytes(), nil
}

// GenerateDKIM makes an RSA-2048 DKIM key for domain and returns it as PKCS#8
// PEM with the TXT record value to publish at <selector>._domainkey.<domain>
// (longer than 255 bytes: zone files split it into several quoted strings,
// which DNS joins again).
//
// RSA, not ed25519: RFC 8463 ed25519 signatures are still ignored by many
// large receivers, which would treat our mail as unsigned, while RSA-2048
// is verified everywhere (RFC 8301 makes 1024 the minimum).
func GenerateDKIM(domain, selector string) (privPEM []byte, dnsRecord string, err error) {
	if domain == "" || selector == "" || strings.ContainsAny(domain+selector, " \t\r\n;") {
		return nil, "", errors.New("relay: dkim: bad domain or selector")
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", fmt.Errorf("relay: dkim: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, "", fmt.Errorf("relay: dkim: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("relay: dkim: %w", err)
	}
	privPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	dnsRecord = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
	return privPEM, dnsRecord, nil
}

// ParseDKIMKey reads a PEM private key made by GenerateDKIM (PKCS#8, RSA or
// ed25519) for the DKIM map of Config.
func ParseDKIMKey(privPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(privPEM)
	if b == nil {
		return nil, errors.New("relay: dkim: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("relay: dkim: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("relay: dkim: key cannot sign")
	}
	return s, nil
}
