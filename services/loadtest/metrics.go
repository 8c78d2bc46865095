package loadtest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	agencies    *prometheus.GaugeVec
	betsAcked   prometheus.Counter
	ackDuration prometheus.Histogram
	errors      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		agencies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loteria_loadtest_agencies", Help: "Simulated agencies by state.",
		}, []string{"state"}),
		betsAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_loadtest_bets_acked_total", Help: "Bets acknowledged to the load tool.",
		}),
		ackDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loteria_loadtest_ack_duration_seconds", Help: "Ack latency seen by the load tool (from when a batch was due).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_loadtest_errors_total", Help: "Failed simulated agencies by reason.",
		}, []string{"reason"}),
	}
	for _, s := range []string{"running", "done", "failed"} {
		m.agencies.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.agencies, m.betsAcked, m.ackDuration, m.errors)
	}
	return m
}
