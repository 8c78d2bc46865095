package agency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/services/internal/lottery"
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
	// No more winners than the chunk has bets, each DNI at most
	// lottery.MaxDocumentDigits: a bigger frame is refused from its header.
	bets := r.chunkBets()
	limit := min(c.opts.MaxWinnersFrame, maxWinnersFrameFor(bets))
	size, err := wire.ReadHeader(cn.br, limit)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		stopLog()
		return fail(c.fail(reasonSession, fmt.Errorf(
			"the central's answer to END for round %d is bigger than the winners of this round's %d bets could take (%w): stopping; look at the central",
			round, bets, err)))
	}
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
			if exact {
				return fail(c.fail(reasonTimeout, fmt.Errorf("the winners of round %d were not collected within the winners timeout (--winners-timeout %s), which bounds collecting all of this round's earlier rounds: look at the central",
					round, c.opts.WinnersTimeout)))
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
			return fail(retryable(c.fail(reasonErrorAck, fmt.Errorf("END of round %d: %w", round, err))))
		}
		if errors.As(err, &ae) {
			return fail(c.fail(reasonErrorAck, fmt.Errorf("END of round %d: %w%s", round, err, codeHint(ae.Code, c.opts.Agency))))
		}
		return fail(c.fail(reasonSession, fmt.Errorf("winners of round %d: %w", round, err)))
	}
	numbered := w.Round != 0 // the v1 message says the winning number
	if w.Round == 0 {
		w.Round = round // the seed's format does not say
	} else if w.Round < round || (exact && w.Round != round) {
		return fail(c.fail(reasonSession, fmt.Errorf("asked for the winners of round %d, the central sent those of round %d", round, w.Round)))
	}
	if err := r.checkWinners(w, numbered, bets); err != nil {
		return fail(c.fail(reasonSession, err))
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

// maxWinnersFrameFor bounds a winners message for a round of bets bets:
// its list, each DNI with its separator, beside room for the message's
// first line or an error message.
func maxWinnersFrameFor(bets int64) int {
	const room = 64 << 10
	return int(min(int64(room)+bets*(lottery.MaxDocumentDigits+1), 1<<40))
}

// chunkBets is how many bets the chunk holds, or (length unknown) how many
// were written.
func (r *run) chunkBets() int64 {
	if r.chunkLen >= 0 {
		return r.chunkLen
	}
	return max(r.sentHigh-r.chunkStart(), 0)
}

// checkWinners makes sure the central's winners are this agency's, so
// that no DNI it did not bet is ever printed as a winner: each is the
// document of a bet of the chunk that plays the round's number (any
// number when the message does not say it, as the seed's does not), and
// none comes more times than the chunk has such bets, over all the
// rounds of the chunk (a bet is in one round only). The chunk's bets
// are those the sender recorded (chunkKeys) or, when this run did not
// send them all (it resumed after a restart), the chunk read again from
// the stream; a OneShot stream cannot be read again, and its caller
// checks.
func (r *run) checkWinners(w wire.Winners, numbered bool, bets int64) error {
	if int64(len(w.DNIs)) > bets {
		return fmt.Errorf("the central sent %d winners for round %d, more than this round's %d bets: stopping without printing them; look at the central",
			len(w.DNIs), w.Round, bets)
	}
	if len(w.DNIs) == 0 {
		return nil
	}
	if _, ok := r.s.(*oneShot); ok {
		return nil
	}
	if r.wonChunk != r.chunk {
		r.won, r.wonChunk = map[int64]struct{}{}, r.chunk
	}
	var matched int
	if r.keysChunk == r.chunk && r.keys.whole() {
		matched = r.keys.match(w.DNIs, numbered, w.Number, r.won)
	} else {
		var err error
		if matched, err = r.rereadMatch(w, numbered); err != nil {
			return err
		}
	}
	if matched < len(w.DNIs) {
		what := "bets of this round"
		if numbered {
			what = fmt.Sprintf("bets of this round playing %d", w.Number)
		}
		return fmt.Errorf("the central's winners of round %d are not this agency's: %d of the %d DNIs it sent match none of the agency's %s (%d bets), or come more often than they do: stopping without printing them; look at the central (a seed server run twice with the same data stores the bets twice)",
			w.Round, len(w.DNIs)-matched, len(w.DNIs), what, r.chunkBets())
	}
	return nil
}

// chunkKeys is where the sender records the chunk's bets (nil when the
// stream is a OneShot, whose winners are its caller's to check).
func (r *run) chunkKeys() *chunkKeys {
	if _, ok := r.s.(*oneShot); ok {
		return nil
	}
	if r.keysChunk != r.chunk {
		r.keys.reset(r.chunkStart(), r.chunkLen)
		r.keysChunk = r.chunk
	}
	return &r.keys
}

// rereadMatch is chunkKeys.match over the chunk read again from the
// stream: after a restart, which sent only the chunk's last bets.
func (r *run) rereadMatch(w wire.Winners, numbered bool) (int, error) {
	left := make(map[string]int, len(w.DNIs))
	for _, d := range w.DNIs {
		left[d]++
	}
	src, err := r.s.Open(r.chunkStart())
	if err != nil {
		return 0, fmt.Errorf("check the winners of round %d against this agency's bets: %w", w.Round, err)
	}
	if cl, ok := src.(io.Closer); ok {
		defer cl.Close()
	}
	matched := 0
	for idx := r.chunkStart(); matched < len(w.DNIs); idx++ {
		b, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("check the winners of round %d against this agency's bets: %w", w.Round, err)
		}
		if n := left[b.Document]; n > 0 && (!numbered || b.Number == w.Number) {
			if _, done := r.won[idx]; done {
				continue
			}
			r.won[idx] = struct{}{}
			left[b.Document] = n - 1
			matched++
		}
	}
	return matched, nil
}
