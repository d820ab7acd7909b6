package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/store"
)

// tokenBytes is the entropy of an enrolment token: 128 bits.
const tokenBytes = 16

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// User is one account as `user list` shows it.
type User struct {
	Account store.Account
	Devices []store.Device
	HasKey  bool
}

// AddUser creates an account for address with a quota in bytes (0:
// unlimited) and returns its id and a one-time enrolment token for its first
// device, valid DefaultTokenTTL. Only the token's hash is stored.
func AddUser(ctx context.Context, st store.Store, address string, quota int64) (acct, token string, err error) {
	if err := api.CheckAddress(address); err != nil {
		return "", "", fmt.Errorf("server: add user: %w", err)
	}
	if quota < 0 {
		return "", "", fmt.Errorf("server: add user: negative quota: %w", store.ErrInvalid)
	}
	a, err := st.CreateAccount(ctx, store.NormalizeAddress(address), quota)
	if err != nil {
		return "", "", fmt.Errorf("server: add user: %w", err)
	}
	token, err = issueToken(ctx, st, a.ID, DefaultTokenTTL)
	if err != nil {
		return string(a.ID), "", err
	}
	return string(a.ID), token, nil
}

// NewEnrolToken issues another one-time token for an existing user (a new
// device), valid ttl (0: DefaultTokenTTL).
func NewEnrolToken(ctx context.Context, st store.Store, address string, ttl time.Duration) (string, error) {
	id, err := st.LookupAddress(ctx, store.NormalizeAddress(address))
	if err != nil {
		return "", fmt.Errorf("server: enrol token: %w", err)
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return issueToken(ctx, st, id, ttl)
}

func issueToken(ctx context.Context, st store.Store, id store.AccountID, ttl time.Duration) (string, error) {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("server: enrol token: %w", err)
	}
	h := sha256.Sum256(raw)
	if err := st.AddEnrolToken(ctx, id, h[:], time.Now().Add(ttl)); err != nil {
		return "", fmt.Errorf("server: enrol token: %w", err)
	}
	return tokenEncoding.EncodeToString(raw), nil
}

// HashEnrolToken turns the payload a device sent at enrolment into the
// stored hash. The payload is the token as printed (base32, any case,
// spaces and dashes ignored) or its 16 raw bytes.
func HashEnrolToken(payload []byte) ([]byte, error) {
	raw := payload
	if len(payload) != tokenBytes {
		s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "\n", "", "\r", "").Replace(string(payload)))
		b, err := tokenEncoding.DecodeString(s)
		if err != nil || len(b) != tokenBytes {
			return nil, fmt.Errorf("server: malformed enrolment token: %w", store.ErrTokenInvalid)
		}
		raw = b
	}
	h := sha256.Sum256(raw)
	return h[:], nil
}

// DeleteUser removes the account that owns address and everything it owns.
// Its devices' open connections on this process are not closed by this
// function; use (*Node).DeleteUser on a running node.
func DeleteUser(ctx context.Context, st store.Store, address string) error {
	id, err := st.LookupAddress(ctx, store.NormalizeAddress(address))
	if err != nil {
		return fmt.Errorf("server: delete user: %w", err)
	}
	if err := st.DeleteAccount(ctx, id); err != nil {
		return fmt.Errorf("server: delete user: %w", err)
	}
	return nil
}

// ListUsers lists every account with its devices.
func ListUsers(ctx context.Context, st store.Store) ([]User, error) {
	accts, err := st.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: list users: %w", err)
	}
	out := make([]User, 0, len(accts))
	for _, a := range accts {
		devs, err := st.ListDevices(ctx, a.ID)
		if err != nil {
			return nil, fmt.Errorf("server: list users: %w", err)
		}
		_, kerr := st.PublicKey(ctx, a.ID)
		out = append(out, User{Account: a, Devices: devs, HasKey: kerr == nil})
	}
	return out, nil
}

// AddAlias adds alias to the account that owns address.
func AddAlias(ctx context.Context, st store.Store, address, alias string) error {
	if err := api.CheckAddress(alias); err != nil {
		return fmt.Errorf("server: add alias: %w", err)
	}
	id, err := st.LookupAddress(ctx, store.NormalizeAddress(address))
	if err != nil {
		return fmt.Errorf("server: add alias: %w", err)
	}
	if err := st.AddAlias(ctx, id, store.NormalizeAddress(alias)); err != nil {
		return fmt.Errorf("server: add alias: %w", err)
	}
	return nil
}
