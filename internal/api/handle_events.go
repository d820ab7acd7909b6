package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

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
func (h *handler) stream(w http.ResponseWriter, r *http.Request, c Caller) error {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	h.m.OpenStreams.Inc()
	defer h.m.OpenStreams.Dec()
	enc := json.NewEncoder(w)
	for {
		evs, err := h.cfg.Store.EventsSince(ctx, c.Account, after, streamPage)
		if err != nil {
			return h.endStream(ctx, err)
		}
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			h.m.EventsPushed.Add(float64(len(evs)))
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		if len(evs) == streamPage {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, h.lim.StreamCheck)
		_, err = h.cfg.Store.WaitEvents(wctx, c.Account, after)
		cancel()
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return h.endStream(ctx, err)
		}
		if _, err := h.cfg.Identify(r); err != nil {
			return nil
		}
		if _, err := w.Write([]byte("{}\n")); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// endStream reports a store failure of a started stream (logged by the
// caller as internal) unless the stream simply ended.
func (h *handler) endStream(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
