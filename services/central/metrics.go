package central

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Batch results (the `result` label of loteria_batches_received_total).
const (
	resultSuccess        = "success"
	resultMalformed      = "malformed"
	resultInvalidBet     = "invalid_bet"
	resultWrongAgency    = "wrong_agency"
	resultAfterDraw      = "after_draw"
	resultAfterEnd       = "after_end"
	resultGap            = "gap"
	resultConflict       = "conflict"
	resultConnected      = "already_connected"
	resultStoreFailed    = "store_failed"
	resultOutcomeUnknown = "outcome_unknown"
	resultShuttingDown   = "shutting_down"
	resultEvicted        = "evicted"
)

// Reasons a connection closes (the `reason` label).
const (
	closeDone           = "done"
	closePeerClosed     = "peer_closed"
	closeIdleTimeout    = "idle_timeout"
	closeProtocolError  = "protocol_error"
	closeShutdown       = "shutdown"
	closeWriteError     = "write_error"
	closeHandshake      = "tls_handshake"
	closeRefused        = "refused"
	closeReplaced       = "replaced"
	closeStoreFailed    = "store_failed"
	closeOutcomeUnknown = "outcome_unknown"
	closeEvicted        = "evicted"
)

// Reasons a connection is refused at accept (the `reason` label).
const (
	rejectLimit      = "limit"
	rejectPerAddress = "per_address"
	rejectShutdown   = "shutdown"
	rejectConnected  = "already_connected"
)

// Framing errors (the `reason` label of loteria_protocol_errors_total).
const (
	protoBadHeader     = "bad_header"
	protoFrameTooLarge = "frame_too_large"
	protoTruncated     = "truncated_frame"
	protoBadHello      = "bad_hello"
	protoHelloLate     = "hello_not_first"
	protoAfterEnd      = "frame_after_end"
)

// maxAgencySeries bounds per-agency series: past it they share "other".
const maxAgencySeries = 1000

type metrics struct {
	batches       *prometheus.CounterVec
	byResult      map[string]prometheus.Counter // batches' series, resolved once
	betsStored    *prometheus.CounterVec
	duplicates    prometheus.Counter
	gaps          prometheus.Counter
	batchBets     prometheus.Histogram
	batchBytes    prometheus.Histogram
	batchDuration prometheus.Histogram

	expected      prometheus.Gauge
	finished      prometheus.Gauge
	waiting       prometheus.Gauge
	round         prometheus.Gauge
	roundBets     prometheus.Gauge
	roundDuration prometheus.Histogram
	barrierWait   prometheus.Histogram
	endToDraw     prometheus.Gauge
	drawTook      prometheus.Gauge
	draws         prometheus.Counter
	winners       *prometheus.GaugeVec
	winnersSent   prometheus.Counter
	anonymousEnds prometheus.Counter
	fingerprints  prometheus.Counter

	connected    prometheus.Gauge
	accepted     prometheus.Counter
	acceptErrors prometheus.Counter
	closed       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	replaced     prometheus.Counter
	shareWaits   prometheus.Counter
	protoErrors  *prometheus.CounterVec
	tlsErrors    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, agencies int, tlsReasons []string) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_batches_received_total",
			Help: "Batches received, by result (success or the reason they were refused).",
		}, []string{"result"}),
		betsStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_bets_stored_total",
			Help: "Bets acknowledged as stored on disk, by agency (agencies past 1,000 share agency=\"other\").",
		}, []string{"agency"}),
		duplicates: counter("loteria_bets_duplicate_total", "Resent bets acknowledged without being stored again (they were stored before)."),
		gaps:       counter("loteria_batch_gaps_total", "Batches refused because they started past the agency's mark."),
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
		expected:  gauge("loteria_agencies_expected", "Agencies a round's barrier waits for (N)."),
		finished:  gauge("loteria_agencies_finished", "Agencies that have sent END in the open round."),
		waiting:   gauge("loteria_agencies_waiting", "Connections waiting for a draw now (departures are seen at once)."),
		round:     gauge("loteria_round", "The open round (the last one once every round is done)."),
		roundBets: gauge("loteria_round_bets", "Bets stored in the open round."),
		roundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_round_duration_seconds",
			Help:    "Time from a round's opening to its draw.",
			Buckets: []float64{.1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		barrierWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loteria_barrier_wait_seconds",
			Help:    "Time an agency waited for its winners, from its END to the winners being sent.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}),
		endToDraw:     gauge("loteria_barrier_first_end_to_draw_seconds", "In the last drawn round, the time from its first END to its draw done."),
		drawTook:      gauge("loteria_draw_duration_seconds", "How long the last draw took."),
		draws:         counter("loteria_draws_total", "Draws held."),
		winners:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "loteria_winners", Help: "Winners of each agency in the last drawn round."}, []string{"agency"}),
		winnersSent:   counter("loteria_winners_sent_total", "Winners messages sent to agencies."),
		anonymousEnds: counter("loteria_anonymous_ends_total", "ENDs from connections that never named their agency (refused unless allowed)."),
		fingerprints:  counter("loteria_fingerprint_mismatches_total", "HELLOs refused because the agency's stream differs from the one it sent before."),
		connected:     gauge("loteria_agencies_connected", "Agency connections open now."),
		accepted:      counter("loteria_connections_accepted_total", "Connections accepted."),
		acceptErrors:  counter("loteria_accept_errors_total", "Failed accepts (out of file descriptors and the like); the central backs off."),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_connections_closed_total", Help: "Connections closed, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_connections_rejected_total", Help: "Connections refused, by reason.",
		}, []string{"reason"}),
		replaced:   counter("loteria_connections_replaced_total", "Authenticated connections that replaced an older one of the same agency."),
		shareWaits: counter("loteria_connection_share_waits_total", "Times an agency's connection stopped reading because it held its whole share of the in-flight budget (acks it does not read)."),
		protoErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_protocol_errors_total", Help: "Protocol errors, by reason; each ends its connection.",
		}, []string{"reason"}),
		tlsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loteria_tls_handshake_errors_total", Help: "TLS handshakes refused, by reason (expired, unknown_ca, wrong_host, ...).",
		}, []string{"reason"}),
	}
	// Make every known series exist from the start, so rates and alerts
	// see zeros rather than nothing.
	m.byResult = make(map[string]prometheus.Counter)
	for _, r := range []string{resultSuccess, resultMalformed, resultInvalidBet, resultWrongAgency, resultAfterDraw,
		resultAfterEnd, resultGap, resultConflict, resultConnected, resultStoreFailed, resultOutcomeUnknown, resultShuttingDown, resultEvicted} {
		m.byResult[r] = m.batches.WithLabelValues(r)
	}
	for _, r := range []string{closeDone, closePeerClosed, closeIdleTimeout, closeProtocolError, closeShutdown,
		closeWriteError, closeHandshake, closeRefused, closeReplaced, closeStoreFailed, closeOutcomeUnknown, closeEvicted} {
		m.closed.WithLabelValues(r)
	}
	for _, r := range []string{rejectLimit, rejectPerAddress, rejectShutdown, rejectConnected} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{protoBadHeader, protoFrameTooLarge, protoTruncated, protoBadHello, protoHelloLate, protoAfterEnd} {
		m.protoErrors.WithLabelValues(r)
	}
	for _, r := range append(tlsReasons, "bad_identity") {
		m.tlsErrors.WithLabelValues(r)
	}
	if agencies <= maxAgencySeries {
		for a := 1; a <= agencies; a++ {
			m.betsStored.WithLabelValues(agencyLabel(a))
		}
	}
	m.expected.Set(float64(agencies))
	if reg != nil {
		reg.MustRegister(m.batches, m.betsStored, m.duplicates, m.gaps, m.batchBets, m.batchBytes, m.batchDuration,
			m.expected, m.finished, m.waiting, m.round, m.roundBets, m.roundDuration, m.barrierWait, m.endToDraw, m.drawTook,
			m.draws, m.winners, m.winnersSent, m.anonymousEnds, m.fingerprints,
			m.connected, m.accepted, m.acceptErrors, m.closed, m.rejected, m.replaced, m.shareWaits, m.protoErrors, m.tlsErrors)
	}
	return m
}

// batch counts one batch's outcome in loteria_batches_received_total.
func (m *metrics) batch(result string) {
	if c, ok := m.byResult[result]; ok {
		c.Inc()
		return
	}
	m.batches.WithLabelValues(result).Inc()
}

// latencyBuckets span sub-millisecond LAN round trips to seconds.
func latencyBuckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}
