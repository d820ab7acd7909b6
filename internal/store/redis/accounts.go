package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
)

func newAccountID() store.AccountID {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return store.AccountID(hex.EncodeToString(b[:]))
}

// CreateAccount creates the account in two steps, in this order:
//  1. the account's keys (with its default mailboxes), under a fresh random
//     id nobody knows yet;
//  2. one directory script that claims the address (SET NX) and lists the
//     account.
//
// A crash between the steps leaves unreachable keys and no directory entry;
// if the address is taken, step 1 is undone.
func (s *Store) CreateAccount(ctx context.Context, primary string, quotaBytes int64) (store.Account, error) {
	addr, err := normAddress(primary)
	if err != nil {
		return store.Account{}, err
	}
	if quotaBytes < 0 {
		return store.Account{}, invalid("quota", quotaBytes)
	}
	id := newAccountID()
	created := parseNanos(nanos(time.Now()))
	args := []any{addr, nanos(created), quotaBytes}
	for _, d := range store.DefaultMailboxes {
		args = append(args, d.Name, d.SpecialUse)
	}
	if _, err := s.acct(ctx, "create account", scCreateAccount, id, args...); err != nil {
		return store.Account{}, err
	}
	ok, err := s.dir(ctx, "create", string(id), dirAddr+addr, dirAccounts)
	if err != nil || ok == 0 {
		// Undo step 1; if this fails too the keys are unreachable garbage.
		_, _ = s.acct(ctx, "create account", scDeleteAccount, id, "all")
		if err == nil {
			err = fmt.Errorf("redis: create account %s: %w", addr, store.ErrAddressTaken)
		}
		return store.Account{}, err
	}
	return store.Account{ID: id, Primary: addr, Addresses: []string{addr}, Created: created, QuotaBytes: quotaBytes}, nil
}

// GetAccount returns the account.
func (s *Store) GetAccount(ctx context.Context, id store.AccountID) (store.Account, error) {
	v, err := s.acct(ctx, "get account", scGetAccount, id)
	if err != nil {
		return store.Account{}, err
	}
	return decodeAccount(id, strs(v)), nil
}

func decodeAccount(id store.AccountID, f []string) store.Account {
	if len(f) < 5 {
		return store.Account{ID: id}
	}
	return store.Account{
		ID:         id,
		Primary:    f[0],
		Addresses:  strings.Fields(f[1]),
		Created:    parseNanos(f[2]),
		QuotaBytes: num(f[3]),
		UsedBytes:  num(f[4]),
	}
}

// ListAccounts returns every account, ordered by primary address. The
// accounts are read in one pipeline per Cluster node, not one call each.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	ids, err := s.rdb.SMembers(ctx, dirAccounts).Result()
	if err != nil {
		return nil, mapErr("list accounts", err)
	}
	// Load first (on every master in a Cluster) so the pipeline can use EVALSHA.
	if err := scGetAccount.Load(ctx, s.rdb).Err(); err != nil {
		return nil, mapErr("list accounts", err)
	}
	cmds := make([]*goredis.Cmd, len(ids))
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = scGetAccount.EvalSha(ctx, p, []string{acctKey(store.AccountID(id))})
		}
		return nil
	})
	out := make([]store.Account, 0, len(ids))
	for i, id := range ids {
		v, err := cmds[i].Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOACCT") {
				continue // being deleted
			}
			return nil, mapErr("list accounts", err)
		}
		out = append(out, decodeAccount(store.AccountID(id), strs(v)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Primary < out[j].Primary })
	return out, nil
}

// DeleteAccount runs in this order, so that a crash at any point leaves a
// state a repeated DeleteAccount finishes, and no directory entry that
// resolves to live data of another account:
//  1. mark the account deleting (it disappears from every read);
//  2. release its addresses and device keys in the directory (only entries
//     that still point to it) and drop it from the account list;
//  3. delete all of its keys in one script.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	v, err := s.acct(ctx, "delete account", scDeleteAccount, id, "mark")
	if err != nil {
		return err
	}
	f := strs(v)
	if len(f) > 0 {
		for _, a := range strings.Fields(f[0]) {
			if _, err := s.dir(ctx, "release", string(id), dirAddr+a); err != nil {
				return err
			}
		}
		for _, rec := range f[1:] {
			key, devID, _ := strings.Cut(rec, "\t")
			if _, err := s.dir(ctx, "release", string(id)+"\t"+devID, dirDev+key); err != nil {
				return err
			}
		}
	}
	if _, err := s.dir(ctx, "forget", string(id), dirAccounts); err != nil {
		return err
	}
	_, err = s.acct(ctx, "delete account", scDeleteAccount, id, "all")
	return err
}

// LookupAddress resolves an address through the directory.
func (s *Store) LookupAddress(ctx context.Context, address string) (store.AccountID, error) {
	a, err := normAddress(address)
	if err != nil {
		return "", fmt.Errorf("redis: lookup: %w", store.ErrNotFound)
	}
	id, err := s.rdb.Get(ctx, dirAddr+a).Result()
	if err != nil {
		return "", mapErr("lookup address", err)
	}
	return store.AccountID(id), nil
}

// AddAlias claims the alias in the directory first, then lists it in the
// account. After a crash between the two, the alias already resolves to the
// account and a repeated AddAlias completes the list (claim returns "ours").
func (s *Store) AddAlias(ctx context.Context, id store.AccountID, alias string) error {
	a, err := normAddress(alias)
	if err != nil {
		return err
	}
	if _, err := s.acct(ctx, "add alias", scExists, id); err != nil {
		return err
	}
	claimed, err := s.dir(ctx, "claim", string(id), dirAddr+a)
	if err != nil {
		return err
	}
	if claimed == 0 {
		return fmt.Errorf("redis: add alias %s: %w", a, store.ErrAddressTaken)
	}
	v, err := s.acct(ctx, "add alias", scAlias, id, "add", a)
	if err != nil {
		if claimed == 1 {
			_, _ = s.dir(ctx, "release", string(id), dirAddr+a)
		}
		return err
	}
	if v == int64(0) && claimed == 2 {
		return fmt.Errorf("redis: add alias %s: %w", a, store.ErrAddressTaken)
	}
	return nil
}

// RemoveAlias drops the alias from the account first, then releases the
// directory entry if it still points here; a crash between the two leaves a
// stale entry that a repeated RemoveAlias releases.
func (s *Store) RemoveAlias(ctx context.Context, id store.AccountID, alias string) error {
	a, err := normAddress(alias)
	if err != nil {
		return fmt.Errorf("redis: remove alias: %w", store.ErrNotFound)
	}
	v, err := s.acct(ctx, "remove alias", scAlias, id, "remove", a)
	if err != nil {
		return err
	}
	released, err := s.dir(ctx, "release", string(id), dirAddr+a)
	if err != nil {
		return err
	}
	if v == int64(0) && released == 0 {
		return fmt.Errorf("redis: remove alias %s: %w", a, store.ErrNotFound)
	}
	return nil
}

// SetQuota sets the account's quota (0: unlimited).
func (s *Store) SetQuota(ctx context.Context, id store.AccountID, quotaBytes int64) error {
	if quotaBytes < 0 {
		return invalid("quota", quotaBytes)
	}
	_, err := s.acct(ctx, "set quota", scSetField, id, "quota", quotaBytes)
	return err
}

// SetPublicKey replaces the account's public key.
func (s *Store) SetPublicKey(ctx context.Context, id store.AccountID, key []byte) error {
	if len(key) == 0 {
		return invalid("public key length", 0)
	}
	_, err := s.acct(ctx, "set public key", scSetField, id, "key", key)
	return err
}

// PublicKey returns the account's public key.
func (s *Store) PublicKey(ctx context.Context, id store.AccountID) ([]byte, error) {
	v, err := s.acct(ctx, "public key", scGetKey, id)
	if err != nil {
		return nil, err
	}
	k, _ := v.(string)
	return []byte(k), nil
}

// tokenGrace keeps a token in Redis past its expiry: ConsumeEnrolToken judges
// expiry by the caller's clock, Redis only cleans up.
const tokenGrace = 24 * time.Hour

// AddEnrolToken stores the token hash in the directory with its account and
// expiry.
func (s *Store) AddEnrolToken(ctx context.Context, id store.AccountID, tokenHash []byte, expires time.Time) error {
	if len(tokenHash) == 0 || len(tokenHash) > 128 {
		return invalid("token hash length", len(tokenHash))
	}
	if _, err := s.acct(ctx, "add token", scExists, id); err != nil {
		return err
	}
	until := expires
	if now := time.Now(); until.Before(now) {
		until = now
	}
	err := s.rdb.Set(ctx, dirTok+hex.EncodeToString(tokenHash), string(id)+"\t"+nanos(expires), 0).Err()
	if err == nil {
		err = s.rdb.PExpireAt(ctx, dirTok+hex.EncodeToString(tokenHash), until.Add(tokenGrace)).Err()
	}
	return mapErr("add token", err)
}

// ConsumeEnrolToken deletes the token (GETDEL, so two callers never both
// succeed) and returns its account if it had not expired at now.
func (s *Store) ConsumeEnrolToken(ctx context.Context, tokenHash []byte, now time.Time) (store.AccountID, error) {
	bad := fmt.Errorf("redis: consume token: %w", store.ErrTokenInvalid)
	if len(tokenHash) == 0 || len(tokenHash) > 128 {
		return "", bad
	}
	v, err := s.rdb.GetDel(ctx, dirTok+hex.EncodeToString(tokenHash)).Result()
	if err == goredis.Nil {
		return "", bad
	}
	if err != nil {
		return "", mapErr("consume token", err)
	}
	idStr, exp, _ := strings.Cut(v, "\t")
	id := store.AccountID(idStr)
	if !now.Before(parseNanos(exp)) {
		return "", bad
	}
	if _, err := s.acct(ctx, "consume token", scExists, id); err != nil {
		return "", bad
	}
	return id, nil
}

// AddDevice writes the device record into the account first, then claims the
// key in the directory (SET NX); if the key is taken the record is removed.
// A crash between leaves a record no key resolves to, which ListDevices shows
// and RevokeDevice can retire.
func (s *Store) AddDevice(ctx context.Context, id store.AccountID, noiseKey []byte, name string) (store.Device, error) {
	if len(noiseKey) != 32 {
		return store.Device{}, invalid("noise key length", len(noiseKey))
	}
	if len(name) > maxName || !plainText(name, false) {
		return store.Device{}, invalid("device name", name)
	}
	created := parseNanos(nanos(time.Now()))
	hk := hex.EncodeToString(noiseKey)
	v, err := s.acct(ctx, "add device", scDevice, id, "add", hk+"\t"+nanos(created)+"\t"+name)
	if err != nil {
		return store.Device{}, err
	}
	devID, _ := v.(string)
	claimed, err := s.dir(ctx, "claim", string(id)+"\t"+devID, dirDev+hk)
	if err != nil || claimed != 1 {
		_, _ = s.acct(ctx, "add device", scDevice, id, "drop", devID)
		if err == nil {
			err = fmt.Errorf("redis: add device: %w", store.ErrDeviceExists)
		}
		return store.Device{}, err
	}
	return store.Device{ID: devID, Account: id, NoiseKey: append([]byte(nil), noiseKey...), Name: name, Created: created}, nil
}

func decodeDevice(id store.AccountID, devID, rec string, revoked bool) store.Device {
	f := strings.SplitN(rec, "\t", 3)
	d := store.Device{ID: devID, Account: id, Revoked: revoked}
	if len(f) == 3 {
		d.NoiseKey, _ = hex.DecodeString(f[0])
		d.Created = parseNanos(f[1])
		d.Name = f[2]
	}
	return d
}

// DeviceByKey resolves a Noise key through the directory, then reads the
// device from its account.
func (s *Store) DeviceByKey(ctx context.Context, noiseKey []byte) (store.Device, error) {
	nf := fmt.Errorf("redis: device by key: %w", store.ErrDeviceNotFound)
	if len(noiseKey) != 32 {
		return store.Device{}, nf
	}
	v, err := s.rdb.Get(ctx, dirDev+hex.EncodeToString(noiseKey)).Result()
	if err == goredis.Nil {
		return store.Device{}, nf
	}
	if err != nil {
		return store.Device{}, mapErr("device by key", err)
	}
	idStr, devID, _ := strings.Cut(v, "\t")
	r, err := s.acct(ctx, "device by key", scDevice, store.AccountID(idStr), "get", devID)
	if err != nil {
		return store.Device{}, nf
	}
	f := strs(r)
	if len(f) != 2 {
		return store.Device{}, nf
	}
	return decodeDevice(store.AccountID(idStr), devID, f[0], f[1] == "1"), nil
}

// ListDevices returns the account's devices in enrolment order.
func (s *Store) ListDevices(ctx context.Context, id store.AccountID) ([]store.Device, error) {
	v, err := s.acct(ctx, "list devices", scDevice, id, "list")
	if err != nil {
		return nil, err
	}
	f := strs(v)
	revoked := map[string]bool{}
	for i := 0; i+1 < len(f); i += 2 {
		if d, ok := strings.CutPrefix(f[i], "r:"); ok {
			revoked[d] = true
		}
	}
	var out []store.Device
	for i := 0; i+1 < len(f); i += 2 {
		if !strings.HasPrefix(f[i], "r:") {
			out = append(out, decodeDevice(id, f[i], f[i+1], revoked[f[i]]))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	return out, nil
}

// RevokeDevice marks the device revoked; DeviceByKey still finds it.
func (s *Store) RevokeDevice(ctx context.Context, id store.AccountID, deviceID string) error {
	if deviceID == "" || len(deviceID) > 20 || !plainText(deviceID, true) {
		return fmt.Errorf("redis: revoke device: %w", store.ErrDeviceNotFound)
	}
	_, err := s.acct(ctx, "revoke device", scDevice, id, "revoke", deviceID)
	return err
}
