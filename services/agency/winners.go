package agency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/services/internal/wire"
)

// endFrame is END on the wire.
var endFrame = []byte("00000003" + wire.End)

// awaitWinners sends the chunk's END in round (the connection's) and
// waits for the winners, at most WinnersTimeout from the chunk's first END
// whatever the reconnects.
func (r *run) awaitWinners(ctx context.Context, cn *conn, round int, out *wire.Winners) error {
	c := r.c
	if r.endRound == 0 {
		r.endRound = round
	}
	if r.winnersBy.IsZero() {
		r.endAt = time.Now()
		r.winnersBy = r.endAt.Add(c.opts.WinnersTimeout)
		c.log.Info(fmt.Sprintf("waiting for the draw of round %d (up to %s)", round, c.opts.WinnersTimeout), "round", round)
	} else {
		c.log.Info(fmt.Sprintf("waiting again for the draw of round %d (up to %s more)", round, time.Until(r.winnersBy).Round(time.Second)), "round", round)
	}
	if err := r.readWinners(ctx, cn, round, false, r.winnersBy, out); err != nil {
		return err
	}
	r.res.BarrierWait = time.Since(r.endAt)
	return nil
}

// readWinners writes END on cn and reads the winners of round (exactly,
// or of round or a later one: a cut-off may move an END on), until by.
func (r *run) readWinners(ctx context.Context, cn *conn, round int, exact bool, by time.Time, out *wire.Winners) error {
	c := r.c
	_, span := c.tracer.Start(ctx, "agency.wait_winners", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("loteria.agency.id", c.opts.Agency), attribute.Int("loteria.round", round)))
	defer span.End()
	fail := func(err error) error {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	cn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if err := wire.WriteFull(cn, endFrame); err != nil {
		return fail(c.ioFail("send END", err))
	}
	c.m.bytesSent.Add(float64(len(endFrame)))
	// Waiting at the barrier is not failing: a connection that got this
	// far renews the retry budget (the winners' deadline bounds the wait).
	r.waited++

	stopLog := r.logWhileWaiting(round, by)
	cn.SetReadDeadline(by)
	// The header and the payload apart, so a timeout says which it was:
	// the draw still waiting, or an answer begun and never finished.
	size, err := wire.ReadHeader(cn.br, c.opts.MaxWinnersFrame)
	var payload []byte
	if err == nil {
		payload, err = wire.ReadPayload(cn.br, nil, size)
	}
	stopLog()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(by) {
			if size > 0 {
				return fail(c.fail(reasonTimeout, fmt.Errorf("the central began its answer to END for round %d (%d bytes announced) and did not finish it within the winners timeout (--winners-timeout %s): look at the central",
					round, size, c.opts.WinnersTimeout)))
			}
			return fail(c.fail(reasonTimeout, fmt.Errorf("no winners for round %d within the winners timeout (--winners-timeout %s): the draw is waiting for agencies that have not finished",
				round, c.opts.WinnersTimeout)))
		}
		return fail(c.ioFail("read winners", err))
	}
	w, err := wire.ParseWinnersMessage(payload)
	if err != nil {
		var ae *wire.AckError
		if errors.As(err, &ae) && c.opts.Protocol == ProtocolLoteria && wire.Retryable(ae.Code) {
			return fail(retryable(c.fail(reasonErrorAck, err)))
		}
		if errors.As(err, &ae) {
			return fail(c.fail(reasonErrorAck, fmt.Errorf("%w%s", err, codeHint(ae.Code, c.opts.Agency))))
		}
		return fail(c.fail(reasonSession, fmt.Errorf("winners of round %d: %w", round, err)))
	}
	if w.Round == 0 {
		w.Round = round // the seed's format does not say
	} else if w.Round < round || (exact && w.Round != round) {
		return fail(c.fail(reasonSession, fmt.Errorf("asked for the winners of round %d, the central sent those of round %d", round, w.Round)))
	}
	span.SetAttributes(attribute.Int("loteria.winners", len(w.DNIs)), attribute.Int("loteria.round", w.Round))
	r.progress++
	*out = w
	return nil
}

// logWhileWaiting logs every WaitLogInterval that the agency still waits
// for the draw; the returned func stops it.
func (r *run) logWhileWaiting(round int, by time.Time) func() {
	c := r.c
	done := make(chan struct{})
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		t := time.NewTicker(c.opts.WaitLogInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				c.log.Info(fmt.Sprintf("still waiting for the draw of round %d", round), "round", round,
					"waited", now.Sub(start).Round(time.Second), "left", by.Sub(now).Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
