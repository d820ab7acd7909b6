package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smessenger/internal/store"
)

// adminHandler serves /healthz (the process is up), /readyz (listeners are
// serving and the store answers) and /metrics (Prometheus text format).
func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if err := n.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	return mux
}

// errNotServing is reported by readyz before Run serves or after it stops.
var errNotServing = errors.New("server: not serving")

// ready probes the store with a lookup that must answer "not found".
func (n *Node) ready(ctx context.Context) error {
	if !n.serving.Load() {
		return errNotServing
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := n.st.GetAccount(ctx, "readyz-probe")
	if err == nil || errors.Is(err, store.ErrAccountNotFound) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	n.metrics.StoreErrors.Inc()
	return err
}
