package agency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/wire"
)

// traceparentTemplate has the length of every W3C traceparent we send, so
// frames are sized before the batch's span exists.
const traceparentTemplate = "00-00000000000000000000000000000000-0000000000000000-00"

// inflight is a batch written and not yet acknowledged.
type inflight struct {
	due   time.Time // when it was due (written, or scheduled by the pacer)
	from  int64     // stream index of its first bet
	bets  int
	bytes int
	seq   uint64
	ctx   context.Context
	span  trace.Span
}

// maxInFlightBytes bounds the bytes of a connection's unacknowledged
// batches, beside the InFlight count: small batches pipeline deeply (the
// default 1,024 of 10 bets, some 570 KiB, stop here at about 900, enough
// to keep the next group commit fed while one syncs), full 8 KiB frames do
// not pile a megabyte into one commit ahead of the rest (measured: 256 full
// frames in flight made the official run slower than 64).
const maxInFlightBytes = 512 << 10

// coalesceBytes is how much of consecutive frames one write carries at
// most (one write also goes whenever the sender would wait).
const coalesceBytes = 32 << 10

// byteWindow counts the bytes in flight; Acquire waits while a batch would
// take them past the bound (one batch always goes).
type byteWindow struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int
	done bool
}

func newByteWindow() *byteWindow {
	w := &byteWindow{}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *byteWindow) acquire(n int) {
	w.mu.Lock()
	for w.used > 0 && w.used+n > maxInFlightBytes && !w.done {
		w.cond.Wait()
	}
	w.used += n
	w.mu.Unlock()
}

// tryAcquire takes n bytes if that needs no wait.
func (w *byteWindow) tryAcquire(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used > 0 && w.used+n > maxInFlightBytes && !w.done {
		return false
	}
	w.used += n
	return true
}

func (w *byteWindow) release(n int) {
	w.mu.Lock()
	w.used -= n
	w.mu.Unlock()
	w.cond.Signal()
}

// stop wakes a waiting acquire for good (the reader has stopped).
func (w *byteWindow) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	w.cond.Broadcast()
}

func (p inflight) end() int64 { return p.from + int64(p.bets) }

// sendRange sends the chunk's bets from index from on cn, pipelined (at
// most InFlight unacknowledged), and returns once every batch is
// acknowledged or refused, or at the first failure.
func (r *run) sendRange(ctx context.Context, cn *conn, round int, from int64) error {
	c := r.c
	src, err := r.s.Open(from)
	if err != nil {
		return c.fail(reasonData, fmt.Errorf("open the bets at index %d: %w", from, err))
	}
	if cl, ok := src.(io.Closer); ok {
		defer cl.Close()
	}
	// The window: a batch takes a slot before it is written and frees it
	// when its ack is read (a channel of batches alone let one more out:
	// the reader holds the batch whose ack it reads out of the channel).
	// The batches go to a reader goroutine in order, which takes acks as
	// they come, so their latency is measured when they arrive, whatever
	// the sender is doing.
	win := &window{slots: make(chan struct{}, c.opts.InFlight), batches: make(chan inflight, c.opts.InFlight)}
	bytes := newByteWindow()
	readerDone := make(chan error, 1)
	go func() {
		defer bytes.stop()
		readerDone <- r.readAcks(cn, win, bytes)
	}()

	sendErr := r.writeBatches(ctx, cn, src, round, from, win, bytes)
	close(win.batches)
	ackErr := <-readerDone
	if sendErr != nil || ackErr != nil {
		// Whichever failed first is the cause; the other usually follows
		// from the connection being closed.
		if ackErr != nil && (sendErr == nil || !isConnClosed(ackErr)) {
			return ackErr
		}
		return sendErr
	}
	return nil
}

// window bounds the batches written and not acknowledged.
type window struct {
	slots   chan struct{} // one taken per batch, freed when its ack is read
	batches chan inflight // to the reader, in order; never full (a slot each)
}

func (w *window) full() bool { return len(w.slots) == cap(w.slots) }

// writeBatches packs and writes the bets of src (which starts at stream
// index from), entering each batch into the window first.
func (r *run) writeBatches(ctx context.Context, cn *conn, src Source, round int, from int64, win *window, bytes *byteWindow) error {
	c := r.c
	ext := c.opts.Protocol == ProtocolLoteria
	pk := &packer{agency: c.opts.Agency, maxBets: c.opts.MaxBets, maxFrame: wire.MaxAgencyFrame, src: src, index: from, keys: r.chunkKeys()}
	var (
		b    batch
		seq  uint64
		idx  = from
		out  = r.out[:0]
		pend pending
	)
	// write sends the coalesced frames (the caller says how a failure
	// counts); on failure it closes the connection, which ends the
	// reader's wait for their acks.
	write := func() error {
		if len(out) == 0 {
			return nil
		}
		cn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
		err := wire.WriteFull(cn, out)
		out = out[:0]
		if err != nil {
			cn.Close()
			return err
		}
		c.m.batchesSent.Add(float64(pend.batches))
		c.m.betsSent.Add(float64(pend.bets))
		c.m.bytesSent.Add(float64(pend.bytes))
		c.m.retries.Add(float64(pend.retries))
		r.sentHigh = max(r.sentHigh, pend.high)
		pend = pending{}
		return nil
	}
	// flush is write for the sender's own path: a failure is the run's.
	flush := func() error {
		first, last := pend.first, pend.last
		if err := write(); err != nil {
			return c.ioFail(fmt.Sprintf("send batches %d..%d", first, last), err)
		}
		return nil
	}
	// Whatever way the sender stops (bad data, a cancelled context), the
	// frames it coalesced are in the window: they go out, or the reader
	// would wait out the timeout for their acks. The sender's own error
	// is the one returned, so a failure here is not counted again.
	defer func() {
		_ = write()
		r.out = out[:0]
	}()
	// A paced batch goes out when it is due, not with the next one.
	paced := c.opts.Rate > 0 || c.deps.Pace != nil
	for {
		empty := false
		if !pk.more() {
			if err := flush(); err != nil {
				return err
			}
			if ext || seq > 0 {
				if r.chunkLen < 0 {
					r.knownEnd = idx
				}
				return nil
			}
			// In the seed protocol a round without bets sends one empty
			// batch: it tells the central which agency the connection is,
			// so its END counts. (A HELLO says it in ours.)
			empty = true
		}
		due, err := r.due(ctx, idx)
		if err != nil {
			return err
		}
		seq++
		hdr := wire.BatchHeader{Agency: c.opts.Agency}
		if ext {
			hdr.Seq, hdr.From, hdr.HasFrom, hdr.Round = seq, idx, true, round
			hdr.Traceparent = []byte(traceparentTemplate)
		}
		n := 0
		if empty {
			pk.count, pk.body = 0, pk.body[:0]
		} else if n, err = pk.next(hdr); err != nil {
			return c.fail(reasonData, err)
		}
		bctx, span := c.tracer.Start(ctx, "agency.send_batch", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				attribute.Int("loteria.agency.id", c.opts.Agency),
				attribute.Int64("loteria.batch.seq", int64(seq)),
				attribute.Int("loteria.batch.bets", n),
				attribute.Int64("loteria.batch.from", idx),
				attribute.Int("loteria.round", round),
			))
		hdr.Traceparent = nil
		if ext {
			if tp := observability.Traceparent(bctx); tp != "" {
				hdr.Traceparent = []byte(tp)
			}
		}
		pk.assemble(&b, hdr)
		span.SetAttributes(attribute.Int("loteria.batch.bytes", len(b.frame)))
		p := inflight{due: due, from: idx, bets: n, bytes: len(b.frame), seq: seq, ctx: bctx, span: span}
		// Before waiting for room in the window, what is coalesced goes
		// out: its acks are what makes the room.
		if !bytes.tryAcquire(p.bytes) {
			if err := flush(); err != nil {
				return endBatch(p, err)
			}
			bytes.acquire(p.bytes)
		}
		select {
		case win.slots <- struct{}{}:
		default:
			if err := flush(); err != nil {
				return endBatch(p, err)
			}
			select {
			case win.slots <- struct{}{}:
			case <-ctx.Done():
				return endBatch(p, ctx.Err())
			}
		}
		if !paced {
			// Unpaced, an ack's latency runs from the write, not from
			// before the wait for room (which is the previous ack's).
			p.due = c.clock.Now()
		}
		win.batches <- p
		// The reader owns p now. Frames are coalesced into writes of up
		// to coalesceBytes: one 600-byte segment per 10-bet batch, 256 in
		// flight, filled the central's socket buffer with so many small
		// segments that the kernel pruned it and dropped one, and the
		// run stalled for a 200 ms retransmission timeout (measured:
		// TcpExtPruneCalled, TcpRetransSegs; runs of 0.1, 0.3 or 0.5 s).
		out = append(out, b.frame...)
		if pend.batches == 0 {
			pend.first = seq
		}
		pend.last = seq
		pend.batches++
		pend.bets += n
		pend.bytes += len(b.frame)
		if idx < r.sentHigh {
			pend.retries++ // a resend of a batch the central may have
		}
		idx += int64(n)
		pend.high = idx
		// A full window waits for acks next: what it holds goes now.
		if empty || paced || len(out) >= coalesceBytes || win.full() {
			if err := flush(); err != nil {
				return err
			}
		}
		if empty {
			return nil
		}
	}
}

// pending counts the frames coalesced and not yet written.
type pending struct {
	batches, bets, bytes, retries int
	first, last                   uint64 // their seqs
	high                          int64  // the end of the last one's bets
}

// due paces the batch starting at index from and says when it was due.
func (r *run) due(ctx context.Context, from int64) (time.Time, error) {
	c := r.c
	if r.paceBase < 0 {
		r.paceBase = from
	}
	if c.deps.Pace != nil {
		return c.deps.Pace(ctx, int(from-r.paceBase))
	}
	now := c.clock.Now()
	if c.opts.Rate <= 0 {
		return now, nil
	}
	// The chunk's schedule: its first batch at once, each later one when
	// the bets before it have had their time at Rate. A reconnect does not
	// restart it (resent batches are already due); a new round does.
	if r.paceOrigin.IsZero() {
		r.paceOrigin, r.paceIdx = now, from
	}
	due := r.paceOrigin.Add(time.Duration(float64(from-r.paceIdx) * float64(time.Second) / c.opts.Rate))
	if err := c.clock.Sleep(ctx, due.Sub(now)); err != nil {
		return due, err
	}
	return due, nil
}

// readAcks reads one ack per batch entering the window, in order, until
// the window closes and is drained. On the first failure it closes the
// connection (stopping the sender) and ends the remaining batches' spans.
func (r *run) readAcks(cn *conn, win *window, bytes *byteWindow) error {
	c := r.c
	ext := c.opts.Protocol == ProtocolLoteria
	var ackBuf []byte
	var failed error
	for p := range win.batches {
		if failed != nil {
			bytes.release(p.bytes)
			endBatch(p, errors.New("not acknowledged"))
			<-win.slots
			continue
		}
		cn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
		payload, err := wire.ReadFrame(cn.br, ackBuf[:0], 64<<10)
		bytes.release(p.bytes)
		if err != nil {
			failed = endBatch(p, c.ioFail("read ack of batch "+strconv.FormatUint(p.seq, 10), err))
			cn.Close()
			<-win.slots
			continue
		}
		ackBuf = payload
		err = wire.ParseAck(payload)
		var ae *wire.AckError
		switch {
		case err == nil:
			r.acknowledge(p)
			endBatch(p, nil)
		case ext && errors.As(err, &ae) && (ae.Code == wire.CodeInvalid || ae.Code == wire.CodeMalformed):
			r.refused(p, ae)
			endBatch(p, err)
		case ext && errors.As(err, &ae) && wire.Retryable(ae.Code):
			failed = endBatch(p, retryable(c.fail(reasonErrorAck, fmt.Errorf("batch %d (bets %d..%d): %w", p.seq, p.from, p.end()-1, err))))
			cn.Close()
		default:
			hint := ""
			if ae != nil || errors.As(err, &ae) { // not yet looked at in the seed protocol
				hint = codeHint(ae.Code, c.opts.Agency)
			}
			failed = endBatch(p, c.fail(reasonErrorAck, fmt.Errorf("batch %d (%d bets): %w%s", p.seq, p.bets, err, hint)))
			cn.Close()
		}
		<-win.slots
	}
	return failed
}

// acknowledge takes a success ack: the batch's bets are stored.
func (r *run) acknowledge(p inflight) {
	c := r.c
	latency := c.clock.Now().Sub(p.due)
	observability.ObserveWithTrace(p.ctx, c.m.ackDuration, latency.Seconds())
	newly := max(0, p.end()-max(p.from, r.acked))
	r.acked = max(r.acked, p.end())
	r.res.Bets += int(newly)
	r.res.Batches++
	c.m.betsAcked.Add(float64(newly))
	if c.deps.OnAck != nil {
		c.deps.OnAck(latency, int(newly))
	}
	r.progress++
	r.prog.tick()
}

// refused takes an invalid/malformed ack: the central stored nothing of
// the batch and moved the agency's mark past it, so the run goes on.
func (r *run) refused(p inflight, ae *wire.AckError) {
	c := r.c
	newly := max(0, p.end()-max(p.from, r.acked))
	r.acked = max(r.acked, p.end())
	r.rejectedSince += newly
	r.res.RejectedBatches++
	c.m.betsRejected.Add(float64(newly))
	c.m.errors.WithLabelValues(reasonRejected).Inc()
	// Neither the bets nor the central's words are logged: ours describes
	// without quoting (docs/PROTOCOL.md), but the text is the peer's. The
	// stream index of the bet it names lets the operator look it up.
	args := []any{"seq", p.seq, "from", p.from, "bets", p.bets, "code", ae.ShownCode(), "message_bytes", len(ae.Msg)}
	if line, ok := ae.Line(); ok && line <= p.bets {
		idx := p.from + int64(line) - 1
		args = append(args, "bet", idx)
		if fs, ok := r.s.(*FileStream); ok && fs.n > 0 {
			args = append(args, "file_line", idx%fs.n+1)
		}
	}
	c.log.Warn("the central refused a batch: its bets are in no draw; going on (the central's log says why)", args...)
	r.progress++
}

func endBatch(p inflight, err error) error {
	if p.span == nil {
		return err
	}
	if err != nil {
		p.span.RecordError(err)
		p.span.SetStatus(codes.Error, err.Error())
		p.span.SetAttributes(attribute.String("loteria.batch.result", "fail"))
	} else {
		p.span.SetAttributes(attribute.String("loteria.batch.result", "success"))
	}
	p.span.End()
	return err
}

// progressLog writes a progress line at most every ProgressInterval, as
// acks come.
type progressLog struct {
	r         *run
	last      time.Time
	lastAcked int64
}

func (pl *progressLog) init(r *run) { pl.r = r }

func (pl *progressLog) tick() {
	r := pl.r
	c := r.c
	now := c.clock.Now()
	if pl.last.IsZero() {
		pl.last, pl.lastAcked = now, r.acked
		return
	}
	el := now.Sub(pl.last)
	if el < c.opts.ProgressInterval {
		return
	}
	args := []any{"round", r.curRound}
	if r.chunkLen >= 0 {
		args = append(args, "round_acked", r.acked-r.chunkStart(), "round_bets", r.chunkLen)
	}
	args = append(args, "acked", r.acked)
	if t := r.total(); t >= 0 {
		args = append(args, "total", t)
	}
	args = append(args, "rate", fmt.Sprintf("%.0f bets/s", float64(r.acked-pl.lastAcked)/el.Seconds()))
	c.log.Info("progress", args...)
	pl.last, pl.lastAcked = now, r.acked
}
