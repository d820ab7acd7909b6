// Package channel is the secure channel between a bridge (the user's device)
// and the server: TLS 1.3 outside (RFC 8446), and inside it a Noise handshake
// Noise_IK_25519_ChaChaPoly_BLAKE2s (Noise Protocol Framework, revision 34;
// X25519 of RFC 7748, ChaCha20-Poly1305 of RFC 8439, BLAKE2s of RFC 7693),
// followed by a framed transport. A *Conn implements net.Conn, so the HTTP API
// runs on top of it unchanged. Dialing can go through a SOCKS5 proxy
// (RFC 1928, e.g. Tor), which resolves the host name itself so .onion
// addresses work.
//
// # Why two layers
//
// TLS alone is defeated by an interceptor whose certificate the client trusts
// (corporate proxies, a compromised CA). The Noise layer's keys are held only
// by the server and the device, so such an interceptor sees ciphertext only
// (promise 7 of DESIGN.md). The Noise handshake is deliberately NOT bound to
// the TLS session (no channel binding in the prologue): a TLS-terminating
// middlebox that merely forwards bytes keeps working, while one that tries to
// act as the server cannot complete the handshake because the client pins the
// server's Noise static key. For the same reason a client with no TLS
// configuration skips certificate verification: the server is authenticated
// by its Noise key, and TLS only hides the Noise handshake's metadata.
//
// # Handshake
//
// IK: the client knows the server's static key beforehand (printed by
// `server init`, see Fingerprint), and sends its own static key encrypted in
// message 1. The server hands that key and message 1's payload to
// ServerConfig.Authorize. Message 2's payload is one status byte, so a
// refused device learns it was refused (ErrUnauthorized) and nothing else.
//
// Enrolment of a new device uses the same IK handshake, with a one-time
// enrolment token as the payload of message 1; Authorize consumes the token
// and registers the device key. This gives what an XX-first handshake would
// give here: the token is encrypted to the pinned server key (so only the real
// server can read it), the device proves possession of its static key, and the
// server learns that key — without a second handshake pattern to maintain.
// IK's message 1 payload has no forward secrecy against a later compromise of
// the server's static key; the token is one-time, so that exposes nothing
// reusable.
//
// Each handshake message is sent as one frame (below). Both handshake
// messages and the transport use the prologue "smessenger-channel/1" so a
// peer speaking another version fails the handshake instead of misreading.
//
// # Transport
//
// Each frame is a 2-byte big-endian length followed by that many bytes of
// Noise ciphertext (at most 65535, including the 16-byte tag). Noise's
// implicit nonce counter makes a replayed, reordered, dropped or modified
// frame fail to decrypt: the connection is then closed with ErrFrame and no
// byte of that frame, or of any later one, reaches the reader. There is no
// rekeying: a connection would need 2^64 frames to exhaust the nonce.
//
// The handshake runs on the first Read or Write, or explicitly through
// Handshake, so Accept never waits on a slow client; it is bounded by
// HandshakeTimeout (default 10 s) so a silent peer cannot hold a slot.
//
// # Privacy
//
// On the server side, RemoteAddr returns a placeholder, never the peer's IP
// address, and errors from the network are stripped of addresses, so nothing
// built on this package can log or store a user's IP by accident (promise 6).
package channel
