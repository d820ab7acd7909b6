package channel

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// MaxPayload bounds the payload of handshake message 1 (the enrolment
// token). It keeps message 1 small so an unauthenticated peer cannot make the
// server buffer much.
const MaxPayload = 4096

const (
	// prologue is mixed into the handshake hash: a peer speaking another
	// version of this protocol fails the handshake instead of misreading.
	prologue = "smessenger-channel/1"
	// helloMin is the size of IK message 1 with no payload: e (32),
	// encrypted s (32+16), and the payload's tag (16).
	helloMin = 32 + 32 + tagSize + tagSize
	// replyLen is the size of message 2: e (32) and the one-byte status
	// with its tag.
	replyLen = 32 + 1 + tagSize
)

// Status byte in message 2.
const (
	statusOK      = 0
	statusRefused = 1
)

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Peer is who the server authenticated.
type Peer struct {
	// DeviceKey is the device's Noise static public key, as proven in the
	// handshake (the channel sets it; Authorize cannot change it).
	DeviceKey []byte
	// Account and DeviceID are what Authorize returned.
	Account  string
	DeviceID string
}

// serverHandshake: TLS, read message 1, ask Authorize, answer with message 2.
func (c *Conn) serverHandshake(ctx context.Context) error {
	cfg := c.server
	if err := cfg.check(); err != nil {
		return err
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%w: tls: %w", ErrHandshake, err)
		}
	}
	body, err := c.fr.next(helloMin)
	if err != nil {
		return fmt.Errorf("%w: reading message 1: %w", ErrHandshake, err)
	}
	hs, deviceKey, payload, err := readHello(cfg, body)
	c.fr.release()
	if err != nil {
		return err
	}
	// Registered before Authorize: a CloseDevice that runs after the store
	// has revoked the key but before Authorize returns still finds this conn.
	if c.ln != nil {
		c.ln.track(c, deviceKey)
	}
	peer, authErr := authorize(ctx, cfg, deviceKey, payload)
	status := byte(statusOK)
	if authErr != nil {
		status = statusRefused
	}
	reply, csIn, csOut, err := hs.WriteMessage(nil, []byte{status})
	if err == nil {
		err = writeFrame(c.conn, reply)
	}
	if authErr != nil {
		return fmt.Errorf("%w: %w: %w", ErrHandshake, ErrUnauthorized, authErr)
	}
	if err != nil {
		return fmt.Errorf("%w: writing message 2: %w", ErrHandshake, err)
	}
	peer.DeviceKey = deviceKey
	c.peer = peer
	// The initiator's first cipher state encrypts toward the responder.
	c.recv, c.send = csIn, csOut
	return nil
}

// readHello processes IK message 1 on the server: it proves the sender holds
// the device key it presents and yields that key and the payload (both
// copies, safe to keep).
func readHello(cfg *ServerConfig, msg []byte) (*noise.HandshakeState, []byte, []byte, error) {
	if len(msg) < helloMin || len(msg) > helloMin+MaxPayload {
		return nil, nil, nil, fmt.Errorf("%w: message 1 has %d bytes", ErrHandshake, len(msg))
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Pattern:       noise.HandshakeIK,
		Initiator:     false,
		Prologue:      []byte(prologue),
		StaticKeypair: noise.DHKey{Private: cfg.Static.Private, Public: cfg.Static.Public},
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		// Most likely the client pinned another server key.
		return nil, nil, nil, fmt.Errorf("%w: message 1 does not decrypt", ErrHandshake)
	}
	key := append([]byte(nil), hs.PeerStatic()...)
	if err := checkPublic(key); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return hs, key, payload, nil
}

// authorize calls the configured callback, turning a panic in it into a
// refusal so one bad request cannot take the server down.
func authorize(ctx context.Context, cfg *ServerConfig, key, payload []byte) (p Peer, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("channel: Authorize panicked: %v", r)
		}
	}()
	return cfg.Authorize(ctx, key, payload)
}

// clientHandshake: TLS, send message 1, read and check message 2.
func (c *Conn) clientHandshake(ctx context.Context) error {
	cfg := c.client
	if err := cfg.check(); err != nil {
		return err
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%w: tls: %w", ErrHandshake, err)
		}
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      []byte(prologue),
		StaticKeypair: noise.DHKey{Private: cfg.Static.Private, Public: cfg.Static.Public},
		PeerStatic:    cfg.ServerKey,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	hello, _, _, err := hs.WriteMessage(nil, cfg.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if err := writeFrame(c.conn, hello); err != nil {
		return fmt.Errorf("%w: writing message 1: %w", ErrHandshake, err)
	}
	body, err := c.fr.next(replyLen)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: server closed the connection (wrong server key, or not a sMessenger server)", ErrHandshake)
	}
	if err != nil {
		return fmt.Errorf("%w: reading message 2: %w", ErrHandshake, err)
	}
	status, csOut, csIn, err := hs.ReadMessage(nil, body)
	c.fr.release()
	if err != nil || len(status) != 1 {
		return fmt.Errorf("%w: server reply does not authenticate (not the pinned server)", ErrHandshake)
	}
	if status[0] != statusOK {
		return fmt.Errorf("%w: %w", ErrHandshake, ErrUnauthorized)
	}
	c.send, c.recv = csOut, csIn
	return nil
}
