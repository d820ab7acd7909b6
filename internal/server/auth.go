package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
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

// identifyTTL is how long one connection reuses its device check. A device
// revoked through this node has its connections closed at once; revoked
// through another node sharing the store (or by the admin command on
// Redis), its calls here are refused within identifyTTL, in line with the
// one second in which events cross nodes.
const identifyTTL = time.Second

// identityKey holds a connection's *identityCache in its context.
type identityKey struct{}

// identityCache is one connection's last successful device check.
type identityCache struct {
	mu      sync.Mutex
	caller  api.Caller
	checked time.Time
}

// connContext is the API server's ConnContext: the channel's, plus an
// empty identity cache that lives as long as the connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ctx = channel.ConnContext(ctx, c)
	return context.WithValue(ctx, identityKey{}, &identityCache{})
}

func (ic *identityCache) get(now time.Time) (api.Caller, bool) {
	if ic == nil {
		return api.Caller{}, false
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.checked.IsZero() || now.Sub(ic.checked) >= identifyTTL || now.Before(ic.checked) {
		return api.Caller{}, false
	}
	return ic.caller, true
}

func (ic *identityCache) put(c api.Caller, now time.Time) {
	if ic == nil {
		return
	}
	ic.mu.Lock()
	ic.caller, ic.checked = c, now
	ic.mu.Unlock()
}

// identify returns the caller of an API request. Besides the channel's
// peer it re-reads the device from the store (at most once per identifyTTL
// per connection), so a device revoked through another node sharing the
// store is refused.
func (n *Node) identify(r *http.Request) (api.Caller, error) {
	p, ok := channel.PeerFromContext(r.Context())
	if !ok {
		return api.Caller{}, api.ErrUnauthorized
	}
	ic, _ := r.Context().Value(identityKey{}).(*identityCache)
	now := time.Now()
	if c, ok := ic.get(now); ok {
		return c, nil
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
	c := api.Caller{Account: dev.Account, DeviceID: dev.ID, DeviceKey: p.DeviceKey}
	ic.put(c, now)
	return c, nil
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
