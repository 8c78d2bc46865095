package central

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Batch results (the `result` label of loteria_batches_received_total).
const (
	resultSuccess      = "success"
	resultMalformed    = "malformed"
	resultInvalidBet   = "invalid_bet"
	resultWrongAgency  = "wrong_agency"
	resultAfterDraw    = "after_draw"
	resultStoreFailed  = "store_failed"
	resultShuttingDown = "shutting_down"
)

// Reasons a connection closes (the `reason` label).
const (
	closeDone          = "done"
	closePeerClosed    = "peer_closed"
	closeIdleTimeout   = "idle_timeout"
	closeProtocolError = "protocol_error"
	closeShutdown      = "shutdown"
	closeWriteError    = "write_error"
)

// Framing errors (the `reason` label of loteria_protocol_errors_total).
const (
	protoBadHeader     = "bad_header"
	protoFrameTooLarge = "frame_too_large"
	protoTruncated     = "truncated_frame"
)

type metrics struct {
	batches       *prometheus.CounterVec
	betsStored    *prometheus.CounterVec
	batchBets     prometheus.Histogram
	batchBytes    prometheus.Histogram
	batchDuration prometheus.Histogram

	expected    prometheus.Gauge
	finished    prometheus.Gauge
	barrierWait prometheus.Histogram
	endToDraw   prometheus.Gauge
	drawTook    prometheus.Gauge
	draws       prometheus.Counter
	winners     *prometheus.GaugeVec

	connected   prometheus.Gauge
	accepted    prometheus.Counter
	closed      *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	protoErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, agencies int) *metrics {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_batches_received_total",
			Help: "Batches received, by result (success or the reason they were rejected).",
		}, []string{"result"}),
		betsStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_bets_stored_total",
			Help: "Bets acknowledged as stored on disk, by agency.",
		}, []string{"agency"}),
		batchBets: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_batch_size_bets",
			Help:    "Bets per batch received.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 150, 200, 300, 500, 1000},
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_batch_size_bytes",
			Help:    "Payload bytes per batch received.",
			Buckets: prometheus.ExponentialBuckets(64, 2, 11), // 64 B .. 64 KiB
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_batch_duration_seconds",
			Help:    "Time from a batch's frame read to its ack written: validation, durable write, ack.",
			Buckets: latencyBuckets(),
		}),
		expected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agencies_expected", Help: "Agencies the barrier waits for (N).",
		}),
		finished: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agencies_finished", Help: "Agencies that have sent END.",
		}),
		barrierWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_barrier_wait_seconds",
			Help:    "Time an agency waited at the barrier, from its END to its winners being sent.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}),
		endToDraw: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_barrier_first_end_to_draw_seconds", Help: "Time from the first END to the draw being done.",
		}),
		drawTook: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_draw_duration_seconds", Help: "How long the draw took (reading the store once).",
		}),
		draws: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_draws_total", Help: "Draws held.",
		}),
		winners: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loteria_winners", Help: "Winners of each agency after the draw.",
		}, []string{"agency"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loteria_agencies_connected", Help: "Agency connections open now.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loteria_connections_accepted_total", Help: "Connections accepted.",
		}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_connections_closed_total", Help: "Connections closed, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_connections_rejected_total", Help: "Connections refused, by reason.",
		}, []string{"reason"}),
		protoErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_protocol_errors_total", Help: "Framing errors, by reason; each ends its connection.",
		}, []string{"reason"}),
	}
	// Make every known series exist from the start, so rates and alerts
	// see zeros rather than nothing.
	for _, r := range []string{resultSuccess, resultMalformed, resultInvalidBet, resultWrongAgency,
		resultAfterDraw, resultStoreFailed, resultShuttingDown} {
		m.batches.WithLabelValues(r)
	}
	for _, r := range []string{closeDone, closePeerClosed, closeIdleTimeout, closeProtocolError, closeShutdown, closeWriteError} {
		m.closed.WithLabelValues(r)
	}
	m.rejected.WithLabelValues("limit")
	for _, r := range []string{protoBadHeader, protoFrameTooLarge, protoTruncated} {
		m.protoErrors.WithLabelValues(r)
	}
	if agencies <= 1000 {
		for a := 1; a <= agencies; a++ {
			m.betsStored.WithLabelValues(strconv.Itoa(a))
		}
	}
	m.expected.Set(float64(agencies))
	if reg != nil {
		reg.MustRegister(m.batches, m.betsStored, m.batchBets, m.batchBytes, m.batchDuration,
			m.expected, m.finished, m.barrierWait, m.endToDraw, m.drawTook, m.draws, m.winners,
			m.connected, m.accepted, m.closed, m.rejected, m.protoErrors)
	}
	return m
}

// latencyBuckets span sub-millisecond LAN round trips to seconds.
func latencyBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}
