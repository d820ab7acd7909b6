package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus series; a nil *metrics records nothing.
type metrics struct {
	queue      prometheus.Gauge
	dead       prometheus.Gauge
	deliveries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smessenger_relay_queue_entries", Help: "Live entries in the outbound queue.",
		}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smessenger_relay_dead_entries", Help: "Entries in the dead-letter list.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smessenger_relay_deliveries_total", Help: "Per-recipient delivery attempts by result.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.queue, m.dead, m.deliveries} {
		if err := reg.Register(c); err != nil {
			// Already registered (a second relay in one process): reuse it.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				switch c.(type) {
				case prometheus.Gauge:
					if c == m.queue {
						m.queue = are.ExistingCollector.(prometheus.Gauge)
					} else {
						m.dead = are.ExistingCollector.(prometheus.Gauge)
					}
				case *prometheus.CounterVec:
					m.deliveries = are.ExistingCollector.(*prometheus.CounterVec)
				}
			}
		}
	}
	return m
}

// delivered counts one recipient outcome: delivered, deferred, failed, expired.
func (m *metrics) delivered(result string) {
	if m != nil {
		m.deliveries.WithLabelValues(result).Inc()
	}
}

// gaugeLoop refreshes the queue gauges from the store every few seconds.
func (r *Relay) gaugeLoop(ctx context.Context) {
	if r.metrics == nil {
		return
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		r.RefreshMetrics(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshMetrics sets the queue gauges from the store now.
func (r *Relay) RefreshMetrics(ctx context.Context) {
	if r.metrics == nil {
		return
	}
	if live, err := r.st.ListQueue(ctx, false); err == nil {
		r.metrics.queue.Set(float64(len(live)))
	}
	if dead, err := r.st.ListQueue(ctx, true); err == nil {
		r.metrics.dead.Set(float64(len(dead)))
	}
}
