package central

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// pendingBatch is a batch on its way to disk, or already answered.
type pendingBatch struct {
	start   time.Time
	ctx     context.Context
	span    trace.Span
	agency  int
	seq     uint64
	bets    int // bets in the batch
	newBets int // bets not stored before (the rest are a resend)
	round   *round
	rec     *ledger.Receipt
	pool    *budget // the budget its frame was charged to
	held    int64   // bytes of the in-flight budget its rows hold
	charge  int64   // what it pays the budget while queued (queueCharge)
	// The outcome, once known (before the ledger for a refused batch).
	result string
	code   string
	errMsg string
}

// batch validates one batch and queues it in the ledger, or says why it
// is refused. Nothing of an invalid batch is stored; the ledger moves the
// agency's mark past it so its later batches still fit. closeAfter is set
// when the connection must end after this batch's answer.
func (c *conn) batch(ctx context.Context, payload []byte, ch *charge) (pb *pendingBatch, closeAfter string) {
	s := c.s
	pb = s.pools.pending.Get().(*pendingBatch)
	*pb = pendingBatch{start: time.Now()}
	h, bets, err := wire.ReadBatch(payload)
	if h.Traceparent != nil {
		ctx = observability.ContextWithTraceparent(ctx, string(h.Traceparent))
	}
	pb.ctx, pb.span = s.tracer.Start(ctx, "central.batch", trace.WithSpanKind(trace.SpanKindServer))
	pb.agency, pb.seq, pb.bets = h.Agency, h.Seq, h.Count
	s.m.batchBytes.Observe(float64(len(payload)))
	if err != nil {
		return pb.refuse(resultMalformed, wire.CodeMalformed, err.Error()), ""
	}
	if pb.span.IsRecording() {
		pb.span.SetAttributes(
			attribute.Int("loteria.agency.id", h.Agency),
			attribute.Int64("loteria.batch.seq", int64(h.Seq)),
			attribute.Int64("loteria.batch.from", h.From),
			attribute.Int("loteria.batch.bets", h.Count),
			attribute.Int("loteria.batch.bytes", len(payload)),
		)
	}
	s.m.batchBets.Observe(float64(h.Count))
	switch {
	case h.Agency < 1 || h.Agency > s.cfg.Agencies:
		return pb.refuse(resultWrongAgency, wire.CodeAgency, fmt.Sprintf("line 1: agency %d is not one of the %d agencies (1..%d)", h.Agency, s.cfg.Agencies, s.cfg.Agencies)), ""
	case c.agency != 0 && h.Agency != c.agency:
		return pb.refuse(resultWrongAgency, wire.CodeAgency, fmt.Sprintf("line 1: agency %d on a connection of agency %d", h.Agency, c.agency)), ""
	case c.agency == 0:
		if _, out := s.claim(c, h.Agency); out != claimed {
			if out == claimEvicted {
				// Closed to make room before its claim: it acts for no
				// agency, and no other connection of the agency refused
				// it (it was counted as already_connected, which reads as
				// an agency connecting twice). Its close counts it.
				return pb.refuse(resultEvicted, wire.CodeConnected, "connection closed to make room for another"), closeEvicted
			}
			s.m.rejected.WithLabelValues(rejectConnected).Inc()
			return pb.refuse(resultConnected, wire.CodeConnected, fmt.Sprintf("agency %d is already connected: try again later", h.Agency)), closeRefused
		}
		c.nameAgency(h.Agency)
	}
	if h.Count == 0 {
		// An empty batch stores nothing: it only says which agency this
		// connection is, so it is welcome at any time.
		pb.result = resultSuccess
		return pb, ""
	}
	if s.shuttingDown() {
		return pb.refuse(resultShuttingDown, wire.CodeShuttingDown, "central is shutting down: batch not stored, send it again later"), ""
	}
	from := ledger.AtMark
	if h.HasFrom {
		from = h.From
	}
	b, err := s.led.Begin(h.Agency, from, h.Count)
	if err != nil {
		return c.ledgerRefusal(pb, err), ""
	}
	pb.newBets = b.New()
	skip := h.Count - pb.newBets
	fixed := s.rounds.fixedNumber()
	var vspan trace.Span
	if pb.span.IsRecording() {
		_, vspan = s.tracer.Start(pb.ctx, "central.validate")
	}
	rules := s.rules.rules()
	var winners []string
	var f wire.BetFields
	var bad error
	for i := 0; ; i++ {
		ok, err := bets.Next(&f)
		if err != nil {
			bad = err
			break
		}
		if !ok {
			break
		}
		n, err := rules.ValidateFields(f[wire.FieldFirstName], f[wire.FieldLastName],
			f[wire.FieldDocument], f[wire.FieldBirthdate], f[wire.FieldNumber])
		if err != nil {
			bad = fmt.Errorf("line %d: %w", bets.Line(), err)
			break
		}
		if i < skip {
			b.Add(ledger.Bet{}) // below the mark: the ledger skips it
			continue
		}
		b.Add(ledger.Bet{FirstName: f[wire.FieldFirstName], LastName: f[wire.FieldLastName],
			Document: f[wire.FieldDocument], Birthdate: f[wire.FieldBirthdate], Number: n})
		if fixed && lottery.Wins(n) {
			winners = append(winners, string(f[wire.FieldDocument]))
		}
	}
	if vspan != nil {
		vspan.End()
	}
	if bad != nil {
		result, code := resultInvalidBet, wire.CodeInvalid
		var be *wire.BatchError
		if errors.As(bad, &be) {
			result, code = resultMalformed, wire.CodeMalformed
		}
		// The mark moves past the refused batch, in the round open now.
		if _, _, err := s.rounds.admit(h.Agency, func(*round) (*ledger.Receipt, error) { return b.Reject() }); err != nil {
			b.Discard()
		}
		return pb.refuse(result, code, bad.Error()), ""
	}
	pb.pool, pb.held = ch.pool, ch.spend(int64(b.Bytes()))
	r, rec, err := s.rounds.admit(h.Agency, func(r *round) (*ledger.Receipt, error) {
		rec, err := b.Submit()
		if err == nil && len(winners) > 0 {
			r.book.add(rec, h.Agency, winners)
		}
		return rec, err
	})
	if err != nil {
		b.Discard()
		c.give(pb.pool, pb.held)
		pb.held = 0
		return c.ledgerRefusal(pb, err), ""
	}
	pb.round, pb.rec = r, rec
	return pb, ""
}

// refuse sets a batch's refusal.
func (pb *pendingBatch) refuse(result, code, msg string) *pendingBatch {
	pb.result, pb.code, pb.errMsg = result, code, msg
	return pb
}

// ledgerRefusal turns a ledger or round error into the batch's refusal.
func (c *conn) ledgerRefusal(pb *pendingBatch, err error) *pendingBatch {
	var gap *ledger.GapError
	var re *roundError
	switch {
	case errors.As(err, &gap):
		c.s.m.gaps.Inc()
		return pb.refuse(resultGap, wire.CodeGap, fmt.Sprintf("batch starts at bet %d but the next bet the central expects is %d: resume from there", gap.Got, gap.Expected))
	case errors.As(err, &re):
		return pb.refuse(re.result, re.code, re.msg)
	case errors.Is(err, ledger.ErrConflict):
		return pb.refuse(resultConflict, wire.CodeConflict, "another connection sent bets for this agency at the same time: nothing stored, resume and send again")
	}
	return pb.refuse(resultStoreFailed, wire.CodeStoreFailed, "central could not store the batch: "+err.Error())
}
