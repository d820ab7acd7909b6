package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// streamHeader starts a detached stream's response. The body is chunked,
// as net/http would send it, so the client can tell a clean end (the last
// chunk) from a cut connection; "Connection: close" because the stream
// closes the connection when it ends.
const streamHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/x-ndjson\r\n" +
	"Cache-Control: no-store\r\n" +
	"Connection: close\r\n" +
	"Transfer-Encoding: chunked\r\n\r\n"

// streamWriteTimeout bounds one write of a detached stream, so a client that
// stops reading cannot hold its goroutine forever.
const streamWriteTimeout = 30 * time.Second

// startDetached runs an event stream on a hijacked connection in its own
// goroutine and returns at once, letting net/http drop its per-connection
// state. ctx is the connection's context (ends when the connection closes
// or the server's base context ends). pipelined means the client sent
// bytes after the request; a stream cannot answer them, so it refuses.
func (h *handler) startDetached(ctx context.Context, nc net.Conn, pipelined bool, r *http.Request, c Caller, after uint64) {
	if pipelined {
		_ = nc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		_, _ = nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		_ = nc.Close()
		return
	}
	if !h.streams.add() {
		_ = nc.Close() // the node is stopping
		return
	}
	// Identify runs on every check with a request whose context lives as
	// long as the stream (the original one ends when the handler returns).
	rs := r.WithContext(ctx)
	go func() {
		defer h.streams.done()
		defer nc.Close()
		defer h.recoverStream()
		if writeTimed(nc, []byte(streamHeader)) != nil {
			return
		}
		err := h.runStream(&streamRun{ctx: ctx, r: rs, c: c, after: after, deep: onFreshStack,
			send: func(p []byte) error { return writeChunk(nc, p) }})
		if err != nil {
			h.m.StoreErrors.Inc()
			h.cfg.Log.Error("api call failed", "route", "event_stream", "err", err)
			return // a cut stream tells the client something went wrong
		}
		_ = writeTimed(nc, []byte("0\r\n\r\n"))
	}()
}

// onFreshStack runs f on a new goroutine and waits for it. A goroutine's
// stack keeps the size of its deepest call until a garbage collection
// finds it mostly unused; running the deep work (TLS and Noise encryption,
// JSON, store reads) elsewhere keeps a parked stream at a couple of KB
// (see BenchmarkIdleStreamsServer). A panic in f is raised again here.
func onFreshStack(f func()) {
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	if p := <-done; p != nil {
		panic(p)
	}
}

// recoverStream keeps a panic in a detached stream from taking the node
// down, as net/http does for handlers.
func (h *handler) recoverStream() {
	if p := recover(); p != nil {
		h.cfg.Log.Error("api event stream panicked", "panic", p)
	}
}

// writeChunk sends p as one HTTP/1.1 chunk in a single write (one channel
// frame).
func writeChunk(nc net.Conn, p []byte) error {
	b := make([]byte, 0, len(p)+12)
	b = strconv.AppendInt(b, int64(len(p)), 16)
	b = append(b, '\r', '\n')
	b = append(b, p...)
	b = append(b, '\r', '\n')
	return writeTimed(nc, b)
}

func writeTimed(nc net.Conn, b []byte) error {
	if err := nc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := nc.Write(b)
	return err
}

// streamSet counts detached streams so a node can wait for them at
// shutdown (net/http's Shutdown does not track hijacked connections).
type streamSet struct {
	mu      sync.Mutex
	n       int
	idle    chan struct{} // closed while n == 0
	stopped bool
}

func (s *streamSet) add() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	if s.n == 0 {
		s.idle = make(chan struct{})
	}
	s.n++
	return true
}

func (s *streamSet) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n--
	if s.n == 0 {
		close(s.idle)
	}
}

// WaitStreams stops new detached event streams and waits until the running
// ones have ended or ctx ends (then it returns ctx's error). Streams end
// when the http.Server's BaseContext ends, so a node cancels that first.
// It is an optional method of the handler NewHandler returns.
func (h *handler) WaitStreams(ctx context.Context) error {
	s := &h.streams
	s.mu.Lock()
	s.stopped = true
	if s.n == 0 {
		s.mu.Unlock()
		return nil
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
