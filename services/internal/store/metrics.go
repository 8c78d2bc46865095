package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	fsync        prometheus.Histogram
	groupBatches prometheus.Histogram
	bytes        prometheus.Counter
	size         prometheus.Gauge
	journal      prometheus.Gauge
	failed       prometheus.Gauge
	quarantined  prometheus.Gauge
	recovery     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_store_fsync_duration_seconds",
			Help:    "Time to make one group commit durable (fdatasync of the bets file and of the journal, in parallel).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16), // 25µs .. ~0.8s
		}),
		groupBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_store_group_commit_batches",
			Help:    "Batches made durable by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_store_bytes_written_total",
			Help: "Bytes appended to the bets file.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_store_size_bytes",
			Help: "Committed size of the bets file.",
		}),
		journal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_store_journal_bytes",
			Help: "Size of the journal.",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_store_failed",
			Help: "1 once a write or sync failed: the store takes nothing more until the central restarts.",
		}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_store_quarantined_bytes",
			Help: "Bytes recovery moved aside at open (past the last commit; never acknowledged).",
		}),
		recovery: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_store_recovery_seconds",
			Help: "How long opening the store took (lock, recovery, replay).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.fsync, m.groupBatches, m.bytes, m.size, m.journal, m.failed, m.quarantined, m.recovery)
	}
	return m
}
