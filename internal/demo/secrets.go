package demo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadSecrets reports a demo-secrets file that does not parse.
var ErrBadSecrets = errors.New("demo: demo-secrets file unusable")

// SecretsFileName is the file in the data folder that keeps the demo's
// generated passphrase and the bridge passwords, so reruns reuse them. A
// real bridge never stores its passphrase; the demo does so that it starts
// without questions, and says so.
const SecretsFileName = "demo-secrets"

// maxSecretsFile bounds what is read back.
const maxSecretsFile = 64 << 10

// secrets is the content of the demo-secrets file.
type secrets struct {
	// Passphrase unlocks every demo bridge's vault.
	Passphrase string `json:"passphrase"`
	// BridgePasswords maps an address to its mail client password, which
	// bridge.Login shows once only.
	BridgePasswords map[string]string `json:"bridge_passwords"`
}

// parseSecrets decodes and checks a demo-secrets file.
func parseSecrets(b []byte) (*secrets, error) {
	if len(b) > maxSecretsFile {
		return nil, fmt.Errorf("%w: too large", ErrBadSecrets)
	}
	var s secrets
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSecrets, err)
	}
	if len(s.Passphrase) < 16 {
		return nil, fmt.Errorf("%w: passphrase missing or short", ErrBadSecrets)
	}
	if s.BridgePasswords == nil {
		s.BridgePasswords = map[string]string{}
	}
	for a, p := range s.BridgePasswords {
		if !strings.Contains(a, "@") || p == "" {
			return nil, fmt.Errorf("%w: bad bridge password entry", ErrBadSecrets)
		}
	}
	return &s, nil
}

// loadOrCreateSecrets reads dir/demo-secrets, creating it with a fresh
// passphrase on first use.
func loadOrCreateSecrets(dir string) (*secrets, error) {
	path := filepath.Join(dir, SecretsFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		s := &secrets{Passphrase: base64.RawURLEncoding.EncodeToString(raw[:]), BridgePasswords: map[string]string{}}
		return s, s.save(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return parseSecrets(b)
}

func (s *secrets) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, SecretsFileName), append(b, '\n'), 0o600)
}
