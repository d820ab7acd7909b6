// Package api is the bridge-facing API of the sealed network server: the wire
// types and request decoders, the HTTP handlers that run over the TLS + Noise
// channel (internal/channel), and the Go client that bridges use.
//
// The protocol is plain HTTP/1.1 (RFC 9112) over the channel. Control calls
// carry JSON (RFC 8259) bodies. Calls that move sealed blobs use
// application/octet-stream bodies made of length-prefixed frames (see
// frames.go), so that a batch of 500 header blobs is one response without
// base64 bloat. The live event stream is a long-lived chunked response of
// newline-delimited JSON events, flushed per event; on a channel connection
// it takes the connection over from net/http and ends by closing it, so an
// idle stream costs one small goroutine and no buffers (handle_events.go).
//
// On a group-committing store (bbolt) appends and deliveries pass a write
// gate that lets concurrent writes into the store together, so that one
// commit and its fsyncs carry as many of them as possible (coalesce.go).
//
// Every call acts on the account of the authenticated channel peer; no request
// field names an account, so cross-account access is impossible by
// construction. Errors travel as a JSON body with a stable code that the
// client maps back to the store's sentinel errors; internal error text never
// goes on the wire.
package api
