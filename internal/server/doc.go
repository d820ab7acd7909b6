// Package server is a node of the sealed network: it ties the store, the
// TLS + Noise channel (internal/channel) and the bridge API (internal/api)
// together, and adds the public WKD listener (draft-koch-openpgp-webkey-service,
// served by package pgp), the loopback admin endpoint with Prometheus metrics,
// enrolment tokens and account administration.
//
// The API runs HTTP/1.1 (RFC 9112) over the channel, whose outer layer is
// TLS 1.3 (RFC 8446). The node never stores or logs a client's IP address:
// every logger is a logging.New logger, and the pre-handshake rate limit
// keys its in-memory state by an HMAC-SHA256 (RFC 2104) of the address under
// a random key that is replaced every hour.
package server
