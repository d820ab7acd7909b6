package bolt

import (
	"context"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// validAddress is a minimal shape check; the front ends validate fully.
func validAddress(a string) bool {
	at := strings.LastIndexByte(a, '@')
	return at > 0 && at < len(a)-1 && len(a) <= 320 && !strings.ContainsAny(a, " \t\r\n\x00")
}

// CreateAccount creates an account with its primary address and the
// default mailboxes.
func (s *Store) CreateAccount(ctx context.Context, primary string, quotaBytes int64) (store.Account, error) {
	primary = store.NormalizeAddress(primary)
	if !validAddress(primary) || quotaBytes < 0 {
		return store.Account{}, wrap("create account", store.ErrInvalid)
	}
	id, err := randomID(16)
	if err != nil {
		return store.Account{}, wrap("create account", err)
	}
	var out store.Account
	err = s.update(ctx, "create account", func(tx *bbolt.Tx) error {
		addrs := tx.Bucket(bucketAddresses)
		if addrs.Get([]byte(primary)) != nil {
			return store.ErrAddressTaken
		}
		ab, err := tx.Bucket(bucketAccounts).CreateBucket([]byte(id))
		if err != nil {
			return err
		}
		for _, name := range accountBuckets {
			if _, err := ab.CreateBucket(name); err != nil {
				return err
			}
		}
		now := time.Now().UTC()
		a := &account{
			Account: store.Account{ID: store.AccountID(id), Primary: primary, Addresses: []string{primary},
				Created: now, QuotaBytes: quotaBytes},
			// UIDVALIDITY starts at the clock, so a deleted and re-created
			// account does not hand clients UIDVALIDITY values they cached.
			nextUIDValidity: uint32(now.Unix()),
			nextMailbox:     1,
			nextMessage:     1,
			nextDevice:      1,
		}
		for _, d := range store.DefaultMailboxes {
			if _, err := createMailbox(ab, a, d.Name, d.SpecialUse, true); err != nil {
				return err
			}
		}
		if err := addrs.Put([]byte(primary), []byte(id)); err != nil {
			return err
		}
		out = a.Account
		return putAccount(ab, a)
	})
	return out, err
}

// GetAccount returns the account.
func (s *Store) GetAccount(ctx context.Context, id store.AccountID) (store.Account, error) {
	var out store.Account
	err := s.view("get account", func(tx *bbolt.Tx) error {
		_, a, err := loadAccount(tx, id)
		if err == nil {
			out = a.Account
		}
		return err
	})
	return out, err
}

// ListAccounts returns every account, in id order.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	var out []store.Account
	err := s.view("list accounts", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEachBucket(func(k []byte) error {
			_, a, err := loadAccount(tx, store.AccountID(k))
			if err != nil {
				return err
			}
			out = append(out, a.Account)
			return nil
		})
	})
	return out, err
}

// DeleteAccount removes the account and everything it owns: addresses,
// devices, tokens, mail and its outbound queue entries.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	err := s.update(ctx, "delete account", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		for _, addr := range a.Addresses {
			if err := tx.Bucket(bucketAddresses).Delete([]byte(addr)); err != nil {
				return err
			}
		}
		err = ab.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(id, string(k), v)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketDevKeys).Delete(d.NoiseKey)
		})
		if err != nil {
			return err
		}
		if err := deleteRefsTo(tx.Bucket(bucketTokens), id); err != nil {
			return err
		}
		if err := deleteQueueOf(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketAccounts).DeleteBucket([]byte(id))
	})
	if err == nil {
		s.hub.notify(id) // waiters learn the account is gone
	}
	return err
}

// deleteRefsTo deletes every entry of an index bucket that points at acct.
// Deletion happens after the scan: bbolt cursors skip keys deleted under them.
func deleteRefsTo(b *bbolt.Bucket, acct store.AccountID) error {
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if owner, _, _, err := decodeRef(v); err == nil && owner == acct {
			doomed = append(doomed, slices.Clone(k))
		}
		return nil
	})
	for _, k := range doomed {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}

// LookupAddress resolves a primary address or alias.
func (s *Store) LookupAddress(ctx context.Context, address string) (store.AccountID, error) {
	var id store.AccountID
	err := s.view("lookup address", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketAddresses).Get([]byte(store.NormalizeAddress(address)))
		if v == nil {
			return store.ErrNotFound
		}
		id = store.AccountID(v)
		return nil
	})
	return id, err
}

// AddAlias gives the account another address.
func (s *Store) AddAlias(ctx context.Context, id store.AccountID, alias string) error {
	alias = store.NormalizeAddress(alias)
	if !validAddress(alias) {
		return wrap("add alias", store.ErrInvalid)
	}
	return s.update(ctx, "add alias", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		addrs := tx.Bucket(bucketAddresses)
		if addrs.Get([]byte(alias)) != nil {
			return store.ErrAddressTaken
		}
		a.Addresses = append(a.Addresses, alias)
		if err := addrs.Put([]byte(alias), []byte(id)); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
}

// RemoveAlias removes an alias; the primary address cannot be removed.
func (s *Store) RemoveAlias(ctx context.Context, id store.AccountID, alias string) error {
	alias = store.NormalizeAddress(alias)
	return s.update(ctx, "remove alias", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		if alias == a.Primary {
			return store.ErrInvalid
		}
		i := slices.Index(a.Addresses, alias)
		if i < 0 {
			return store.ErrNotFound
		}
		a.Addresses = slices.Delete(a.Addresses, i, i+1)
		if err := tx.Bucket(bucketAddresses).Delete([]byte(alias)); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
}

// SetQuota sets the account's quota; 0 means unlimited.
func (s *Store) SetQuota(ctx context.Context, id store.AccountID, quotaBytes int64) error {
	if quotaBytes < 0 {
		return wrap("set quota", store.ErrInvalid)
	}
	return s.update(ctx, "set quota", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		a.QuotaBytes = quotaBytes
		return putAccount(ab, a)
	})
}

// SetPublicKey replaces the account's OpenPGP public key.
func (s *Store) SetPublicKey(ctx context.Context, id store.AccountID, key []byte) error {
	if len(key) == 0 {
		return wrap("set public key", store.ErrInvalid)
	}
	return s.update(ctx, "set public key", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		return ab.Put(keyPublicKey, key)
	})
}

// PublicKey returns the account's key; ErrNotFound if none was set.
func (s *Store) PublicKey(ctx context.Context, id store.AccountID) ([]byte, error) {
	var key []byte
	err := s.view("public key", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		v := ab.Get(keyPublicKey)
		if v == nil {
			return store.ErrNotFound
		}
		key = slices.Clone(v) // v is only valid inside the transaction
		return nil
	})
	return key, err
}

// AddEnrolToken stores the hash of a one-time enrolment token.
func (s *Store) AddEnrolToken(ctx context.Context, id store.AccountID, tokenHash []byte, expires time.Time) error {
	if len(tokenHash) == 0 || expires.IsZero() {
		return wrap("add token", store.ErrInvalid)
	}
	return s.update(ctx, "add token", func(tx *bbolt.Tx) error {
		if _, err := accountBucket(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketTokens).Put(tokenHash, encodeRef(id, "", expires))
	})
}

// ConsumeEnrolToken deletes the token and returns its account.
func (s *Store) ConsumeEnrolToken(ctx context.Context, tokenHash []byte, now time.Time) (store.AccountID, error) {
	var id store.AccountID
	err := s.update(ctx, "consume token", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		v := b.Get(tokenHash)
		if len(tokenHash) == 0 || v == nil {
			return store.ErrTokenInvalid
		}
		acct, _, expires, err := decodeRef(v)
		if err != nil {
			return err
		}
		if !now.Before(expires) {
			return store.ErrTokenInvalid
		}
		if _, err := accountBucket(tx, acct); err != nil {
			return store.ErrTokenInvalid
		}
		id = acct
		return b.Delete(tokenHash)
	})
	return id, err
}

// AddDevice enrols a device under its Noise static key.
func (s *Store) AddDevice(ctx context.Context, id store.AccountID, noiseKey []byte, name string) (store.Device, error) {
	if len(noiseKey) != 32 {
		return store.Device{}, wrap("add device", store.ErrInvalid)
	}
	var out store.Device
	err := s.update(ctx, "add device", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		keys := tx.Bucket(bucketDevKeys)
		if keys.Get(noiseKey) != nil {
			return store.ErrDeviceExists
		}
		d := store.Device{ID: "d" + uitoa(a.nextDevice), Account: id, NoiseKey: slices.Clone(noiseKey),
			Name: name, Created: time.Now().UTC()}
		a.nextDevice++
		if err := ab.Bucket(bucketDevices).Put([]byte(d.ID), encodeDevice(&d)); err != nil {
			return err
		}
		if err := keys.Put(noiseKey, encodeRef(id, d.ID, time.Time{})); err != nil {
			return err
		}
		out = d
		return putAccount(ab, a)
	})
	return out, err
}

// DeviceByKey finds a device by its Noise static key, revoked ones too.
func (s *Store) DeviceByKey(ctx context.Context, noiseKey []byte) (store.Device, error) {
	var out store.Device
	err := s.view("device by key", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketDevKeys).Get(noiseKey)
		if len(noiseKey) == 0 || v == nil {
			return store.ErrDeviceNotFound
		}
		acct, devID, _, err := decodeRef(v)
		if err != nil {
			return err
		}
		ab, err := accountBucket(tx, acct)
		if err != nil {
			return store.ErrDeviceNotFound
		}
		rec := ab.Bucket(bucketDevices).Get([]byte(devID))
		if rec == nil {
			return store.ErrDeviceNotFound
		}
		out, err = decodeDevice(acct, devID, rec)
		return err
	})
	return out, err
}

// ListDevices returns the account's devices in enrolment order.
func (s *Store) ListDevices(ctx context.Context, id store.AccountID) ([]store.Device, error) {
	var out []store.Device
	err := s.view("list devices", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		return ab.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(id, string(k), v)
			out = append(out, d)
			return err
		})
	})
	slices.SortStableFunc(out, func(a, b store.Device) int { return a.Created.Compare(b.Created) })
	return out, err
}

// RevokeDevice marks a device revoked; its key stays known so it cannot
// be enrolled again unnoticed.
func (s *Store) RevokeDevice(ctx context.Context, id store.AccountID, deviceID string) error {
	return s.update(ctx, "revoke device", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		b := ab.Bucket(bucketDevices)
		v := b.Get([]byte(deviceID))
		if deviceID == "" || v == nil {
			return store.ErrDeviceNotFound
		}
		d, err := decodeDevice(id, deviceID, v)
		if err != nil {
			return err
		}
		d.Revoked = true
		return b.Put([]byte(deviceID), encodeDevice(&d))
	})
}
