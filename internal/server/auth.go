package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// ErrRevoked refuses a device whose key was revoked.
var ErrRevoked = errors.New("server: device revoked")

// authorize is the channel's Authorize hook. A known device is accepted
// unless revoked (a payload it sends is then ignored, so a bridge that
// retries its first connection does not burn a new token). An unknown
// device must present a valid enrolment token: the token is consumed and
// the device key registered for the token's account. If registering fails
// after the token was consumed, the token is gone and the admin issues a
// new one; this keeps a token strictly one-time.
func (n *Node) authorize(ctx context.Context, key, payload []byte) (channel.Peer, error) {
	dev, err := n.st.DeviceByKey(ctx, key)
	if err == nil {
		if dev.Revoked {
			return channel.Peer{}, ErrRevoked
		}
		return channel.Peer{DeviceKey: key, Account: string(dev.Account), DeviceID: dev.ID}, nil
	}
	if !errors.Is(err, store.ErrDeviceNotFound) && !errors.Is(err, store.ErrNotFound) {
		n.metrics.StoreErrors.Inc()
		return channel.Peer{}, fmt.Errorf("server: authorize: %w", err)
	}
	if len(payload) == 0 {
		return channel.Peer{}, fmt.Errorf("server: unknown device: %w", store.ErrDeviceNotFound)
	}
	h, err := HashEnrolToken(payload)
	if err != nil {
		return channel.Peer{}, err
	}
	acct, err := n.st.ConsumeEnrolToken(ctx, h, time.Now())
	if err != nil {
		return channel.Peer{}, fmt.Errorf("server: enrol: %w", err)
	}
	dev, err = n.st.AddDevice(ctx, acct, key, "")
	if err != nil {
		return channel.Peer{}, fmt.Errorf("server: enrol: %w", err)
	}
	n.log.Info("device enrolled", "account", string(acct), "device", dev.ID)
	return channel.Peer{DeviceKey: key, Account: string(acct), DeviceID: dev.ID}, nil
}

// identify returns the caller of an API request. Besides the channel's
// peer it re-reads the device from the store on every call, so a device
// revoked through another node sharing the store is refused at once.
func (n *Node) identify(r *http.Request) (api.Caller, error) {
	p, ok := channel.PeerFromContext(r.Context())
	if !ok {
		return api.Caller{}, api.ErrUnauthorized
	}
	dev, err := n.st.DeviceByKey(r.Context(), p.DeviceKey)
	if errors.Is(err, store.ErrDeviceNotFound) || errors.Is(err, store.ErrNotFound) {
		return api.Caller{}, api.ErrUnauthorized
	}
	if err != nil {
		return api.Caller{}, fmt.Errorf("server: identify: %w", err)
	}
	if dev.Revoked || string(dev.Account) != p.Account {
		return api.Caller{}, api.ErrUnauthorized
	}
	return api.Caller{Account: dev.Account, DeviceID: dev.ID, DeviceKey: p.DeviceKey}, nil
}

// validateKey accepts an OpenPGP public key usable for encryption whose
// user ids include the account's primary address, and returns its public
// part only, so that no secret key material is ever stored.
func validateKey(_ context.Context, acct store.Account, key []byte) ([]byte, error) {
	k, err := pgp.ReadKey(key)
	if err != nil {
		return nil, fmt.Errorf("server: public key: %v: %w", err, store.ErrInvalid)
	}
	if !k.HasAddress(acct.Primary) {
		return nil, fmt.Errorf("server: public key has no user id for the primary address: %w", store.ErrInvalid)
	}
	return k.Public().PublicBinary(), nil
}
