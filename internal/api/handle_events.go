package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"smessenger/internal/channel"
	"smessenger/internal/store"
)

func (h *handler) events(w http.ResponseWriter, r *http.Request, c Caller) error {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryUint(r, "limit", 100)
	if err != nil {
		return err
	}
	if limit == 0 || limit > MaxEventsPerCall {
		return invalidf("limit must be between 1 and %d", MaxEventsPerCall)
	}
	evs, err := h.cfg.Store.EventsSince(r.Context(), c.Account, after, int(limit))
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []store.Event{}
	}
	return writeJSON(w, evs)
}

// streamPage is how many backlog events are read per store call.
const streamPage = 500

// stream sends the backlog after ?after=N and then every new event as one
// JSON line, flushed per batch. It ends when the client goes away, the
// connection is closed under it (device revoked on this node), the node
// shuts down, or a periodic check finds the device revoked (another node).
// Idle periods produce an empty "{}" line, which keeps proxies from timing
// the connection out and lets the client notice a dead server.
//
// On a channel connection the stream takes the connection over (hijack)
// and runs in a goroutine of its own after the handler returns, so that an
// idle stream holds one small goroutine and no buffer: net/http would keep
// its serving goroutine, a background reader goroutine and about 10 KB of
// read, write and chunking buffers per connection for as long as the
// handler runs (see BenchmarkIdleStreamsServer in internal/server). The
// price is that a client that vanishes is noticed at the next keep-alive
// write rather than at once.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, c Caller) error {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	if cc := channel.ConnFromContext(r.Context()); cc != nil {
		if nc, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			h.startDetached(cc.Context(), nc, brw.Reader.Buffered() > 0, r, c, after)
			return nil
		}
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	return h.runStream(&streamRun{ctx: ctx, r: r, c: c, after: after, deep: func(f func()) { f() },
		send: func(p []byte) error {
			if _, err := w.Write(p); err != nil {
				return err
			}
			return rc.Flush()
		}})
}

// streamRun is one event stream's state.
type streamRun struct {
	ctx   context.Context
	r     *http.Request // for Identify; its context lives as long as ctx
	c     Caller
	after uint64               // last event sent
	send  func(p []byte) error // writes and flushes complete lines
	deep  func(f func())       // runs f, which may need a deep stack
}

// runStream is the stream's loop. The work between waits (store reads,
// JSON, the encrypted write) goes through s.deep: a detached stream runs it
// on a short-lived goroutine, so its own goroutine, parked for hours, keeps
// the small stack the wait needs instead of the largest one a write took.
func (h *handler) runStream(s *streamRun) error {
	h.m.OpenStreams.Inc()
	defer h.m.OpenStreams.Dec()
	for {
		var more, stop bool
		var err error
		s.deep(func() { more, stop, err = h.push(s) })
		if stop {
			return err
		}
		if more {
			continue
		}
		wctx, cancel := context.WithTimeout(s.ctx, h.lim.StreamCheck)
		_, err = h.cfg.Store.WaitEvents(wctx, s.c.Account, s.after)
		cancel()
		if err == nil {
			continue
		}
		if s.ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return h.endStream(s.ctx, err)
		}
		s.deep(func() { stop = h.keepAlive(s) })
		if stop {
			return nil
		}
	}
}

// push sends one page of events after s.after. more reports a full page
// (read again before waiting); stop ends the stream, with err for a store
// failure to log.
func (h *handler) push(s *streamRun) (more, stop bool, err error) {
	evs, err := h.cfg.Store.EventsSince(s.ctx, s.c.Account, s.after, streamPage)
	if err != nil {
		return false, true, h.endStream(s.ctx, err)
	}
	if len(evs) == 0 {
		return false, false, nil
	}
	// A buffer per batch, dropped before the wait, so an idle stream holds
	// none.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return false, true, err
		}
	}
	if err := s.send(buf.Bytes()); err != nil {
		return false, true, nil
	}
	s.after = evs[len(evs)-1].Seq
	h.m.EventsPushed.Add(float64(len(evs)))
	return len(evs) == streamPage, false, nil
}

// keepAlive re-checks the device (revocation through another node) and
// sends an empty line; it reports whether the stream must end.
func (h *handler) keepAlive(s *streamRun) (stop bool) {
	if _, err := h.cfg.Identify(s.r); err != nil {
		return true
	}
	return s.send(keepAliveLine) != nil
}

var keepAliveLine = []byte("{}\n")

// endStream reports a store failure of a started stream (logged by the
// caller as internal) unless the stream simply ended.
func (h *handler) endStream(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
