package agency

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the agency's instruments. One Metrics may serve many clients
// (the load tool runs thousands in one process); nil disables them.
type Metrics struct {
	BetsInFile   prometheus.Gauge
	betsSent     prometheus.Counter
	betsAcked    prometheus.Counter
	batchesSent  prometheus.Counter
	bytesSent    prometheus.Counter
	ackDuration  prometheus.Histogram
	errors       *prometheus.CounterVec
	retries      prometheus.Counter
	winners      prometheus.Gauge
	done         prometheus.Gauge
	round        prometheus.Gauge
	betsRejected prometheus.Counter
}

// Error reasons.
const (
	reasonErrorAck   = "error_ack"
	reasonConnection = "connection"
	reasonTimeout    = "timeout"
	reasonData       = "data"
	reasonRejected   = "rejected" // a batch the central refused (validation); the run goes on
	reasonSession    = "session"  // the central's WELCOME or winners do not fit what the agency knows
)

// NewMetrics builds the agency metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BetsInFile: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agency_bets_in_file", Help: "Bets in the agency's data per round (its file, or the bets generated per round).",
		}),
		betsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_bets_sent_total", Help: "Bets sent to the central (acknowledged or not; resends count again).",
		}),
		betsAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_bets_acked_total", Help: "Bets the central confirmed as stored (each once, whatever the resends).",
		}),
		batchesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_batches_sent_total", Help: "Batches sent to the central.",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_bytes_sent_total", Help: "Bytes written to the central's socket.",
		}),
		ackDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_agency_ack_duration_seconds",
			Help:    "Time from writing a batch (or from when it was due, when paced) to reading its ack.",
			Buckets: latencyBuckets(),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_agency_errors_total", Help: "Errors by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_retries_total", Help: "Reconnections after a failure, plus batches resent after one.",
		}),
		winners: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agency_winners", Help: "Winners received from the draw.",
		}),
		done: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agency_done", Help: "1 once the agency has received its winners (of a first round).",
		}),
		round: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agency_round", Help: "The central's round the agency is sending in or waiting for.",
		}),
		betsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_agency_bets_rejected_total", Help: "Bets the central refused (validation): in no draw.",
		}),
	}
	for _, r := range []string{reasonErrorAck, reasonConnection, reasonTimeout, reasonData, reasonRejected, reasonSession} {
		m.errors.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.BetsInFile, m.betsSent, m.betsAcked, m.batchesSent, m.bytesSent,
			m.ackDuration, m.errors, m.retries, m.winners, m.done, m.round, m.betsRejected)
	}
	return m
}

// latencyBuckets span sub-millisecond LAN round trips to seconds.
func latencyBuckets() []float64 {
	return []float64{
		.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
	}
}
