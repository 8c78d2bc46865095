package central

import (
	"context"
	"errors"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/services/internal/wire"
)

// end takes the agency's END: it is recorded in the open round (once:
// a second END of the same agency in a round is not counted again), then
// the connection waits for that round's draw, watched for departure, and
// gets its agency's winners of that round.
//
// After END a seed-protocol connection gets its winners or a close, never
// an error frame (the seed's client would read one as a winners list); a
// v1 connection gets a coded error it understands.
func (c *conn) end(ctx context.Context) (string, error) {
	s := c.s
	if c.br != nil && c.br.Buffered() > 0 {
		s.m.protoErrors.WithLabelValues(protoAfterEnd).Inc()
		return c.endFailed(wire.CodeProtocol, "frames after END", closeProtocolError, errors.New("frames after END"))
	}
	if c.agency == 0 && !s.cfg.AllowAnonymousEnd {
		// Any peer could otherwise move the barrier. An agency with no bets
		// names itself with an empty batch "<id>;0" before END. A connection
		// that has not named itself has sent no HELLO, so it speaks the
		// seed's protocol: it is closed with no frame, which its client
		// would print as winners (endFailed).
		s.m.anonymousEnds.Inc()
		s.warn.Warn("end_unnamed", "END refused: the connection never said which agency it is (send \"<id>;0\" first); closed without an answer", "remote", c.addr)
		return c.endFailed(wire.CodeUnnamed, "END from a connection that never said which agency it is: send an empty batch <id>;0 first", closeRefused, nil)
	}
	start := time.Now()
	wctx, span := s.tracer.Start(ctx, "central.barrier_wait", trace.WithAttributes(attribute.Int("loteria.agency.id", c.agency)))
	r, err := s.rounds.end(c.agency, c.round)
	if err != nil {
		span.SetStatus(codes.Error, "END not taken")
		span.End()
		var re *roundError
		if errors.As(err, &re) {
			return c.endFailed(re.code, re.msg, closeRefused, nil)
		}
		return c.endFailed(wire.CodeStoreFailed, "central could not record END: "+err.Error(), closeStoreFailed, err)
	}
	span.SetAttributes(attribute.Int("loteria.round", r.num))
	outcome := c.waitDraw(r)
	switch outcome {
	case waitDeparted:
		span.SetStatus(codes.Error, "agency left while waiting")
		span.End()
		s.log.InfoContext(wctx, "agency left while waiting for the draw", "agency", c.agency, "round", r.num)
		return closePeerClosed, nil
	case waitShutdown:
		span.SetStatus(codes.Error, "shutdown before the draw")
		span.End()
		return c.endFailed(wire.CodeShuttingDown, "central is shutting down before the draw of round "+itoa(r.num)+": reconnect later and send END again", closeShutdown, nil)
	case waitProtocol:
		span.End()
		s.m.protoErrors.WithLabelValues(protoAfterEnd).Inc()
		return c.endFailed(wire.CodeProtocol, "frames after END", closeProtocolError, errors.New("frames after END"))
	}
	span.End()
	w, err := s.rounds.winnersOf(r, c.agency)
	_, sspan := s.tracer.Start(ctx, "central.send_winners", trace.WithAttributes(
		attribute.Int("loteria.agency.id", c.agency), attribute.Int("loteria.round", r.num),
		attribute.Int("loteria.winners", len(w.DNIs))))
	defer sspan.End()
	if err != nil {
		sspan.SetStatus(codes.Error, "draw failed")
		return c.endFailed(wire.CodeStoreFailed, "the draw of round "+itoa(r.num)+" failed: "+err.Error(), closeStoreFailed, err)
	}
	// The conversation is over: the agency may connect again (its next
	// round) while this connection closes.
	s.release(c)
	var payload []byte
	if c.v1 {
		payload = wire.AppendWinnersMessage(nil, w)
	} else {
		payload = wire.AppendWinners(nil, w.DNIs)
	}
	if err := c.writeFrame(payload); err != nil {
		sspan.RecordError(err)
		return closeWriteError, err
	}
	s.m.barrierWait.Observe(time.Since(start).Seconds())
	s.m.winnersSent.Inc()
	if s.cfg.SeedLog {
		s.log.DebugContext(ctx, "winners sent", "agency", c.agency, "round", r.num, "cant_ganadores", len(w.DNIs))
	} else {
		s.log.InfoContext(ctx, "winners sent", "agency", c.agency, "round", r.num, "cant_ganadores", len(w.DNIs))
	}
	return closeDone, nil
}

// endFailed ends a conversation after END: a v1 connection is told why; a
// seed one is closed, since its client would take any frame for winners.
func (c *conn) endFailed(code, msg, reason string, err error) (string, error) {
	if c.v1 {
		c.writeError(code, msg)
	}
	return reason, err
}

type waitOutcome int

const (
	waitDrawn waitOutcome = iota
	waitDeparted
	waitShutdown
	waitProtocol
)

// waitDraw blocks until the round is drawn (or failed), the central shuts
// down, or the agency leaves. The connection's own goroutine waits in a
// read: a departure (EOF, reset, keepalive failure) ends it at once; the
// draw and the shutdown wake it by moving its read deadline.
func (c *conn) waitDraw(r *round) waitOutcome {
	s := c.s
	c.releaseReader()
	c.nc.SetReadDeadline(time.Time{})
	if r.wait(c) {
		return waitDrawn
	}
	defer r.unwait(c)
	s.m.waiting.Inc()
	defer s.m.waiting.Dec()
	var one [1]byte
	for {
		if r.isDone() {
			return waitDrawn
		}
		if s.shuttingDown() {
			return waitShutdown
		}
		if c.replaced.Load() {
			// Its deadline of now may have been cleared above.
			return waitDeparted
		}
		_, err := c.nc.Read(one[:])
		switch {
		case err == nil:
			return waitProtocol
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Woken: by the draw, the shutdown, or nothing (loop).
			c.nc.SetReadDeadline(time.Time{})
			if r.isDone() {
				return waitDrawn
			}
			if s.shuttingDown() {
				return waitShutdown
			}
			if c.replaced.Load() {
				return waitDeparted
			}
		default:
			return waitDeparted
		}
	}
}
