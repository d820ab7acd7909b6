package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus instruments (the node adds the
// connected-devices gauge, which the channel listener knows). The node registers them on
// its own registry and serves them on the admin endpoint.
type Metrics struct {
	OpenStreams  prometheus.Gauge
	Calls        *prometheus.CounterVec
	Latency      *prometheus.HistogramVec
	EventsPushed prometheus.Counter
	StoreErrors  prometheus.Counter
	// WriteGroups is the size of each group of writes the API let into a
	// group-committing store together (see api.Config.GroupCommit).
	WriteGroups prometheus.Histogram
}

// NewMetrics creates the instruments and registers them on reg (nil: not
// registered, useful in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		OpenStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "smessenger", Name: "event_streams",
			Help: "Open live event streams.",
		}),
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "smessenger", Name: "api_calls_total",
			Help: "API calls by route and result code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "smessenger", Name: "api_call_seconds",
			Help:    "API call latency by route (streams: until the stream starts).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"route"}),
		EventsPushed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "smessenger", Name: "events_pushed_total",
			Help: "Events written to live event streams.",
		}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "smessenger", Name: "store_errors_total",
			Help: "Unexpected store failures seen by the API.",
		}),
		WriteGroups: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "smessenger", Name: "api_write_group_size",
			Help:    "Appends and deliveries let into the store together, per group (bbolt group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.OpenStreams, m.Calls, m.Latency, m.EventsPushed, m.StoreErrors, m.WriteGroups)
	}
	return m
}
