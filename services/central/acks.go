package central

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/wire"
)

// ackState is a connection's ack writer: batches queued in order and
// answered as they become durable, by a goroutine that runs only while
// some are queued, so an idle connection holds no second goroutine.
type ackState struct {
	// ch is the queue while the ack writer runs, taken from the server's
	// pool by the first batch and given back when none is queued, so an
	// idle connection holds no queue either.
	ch       chan *pendingBatch
	wg       sync.WaitGroup // batches queued and not yet answered
	mu       sync.Mutex
	running  bool
	queued   int   // batches counted in by pushAck and not yet settled by the ack writer
	err      error // a failed ack write
	unknown  atomic.Bool
	out      []byte          // acks gathered for one write
	answered []*pendingBatch // the batches whose acks are in out
	// The connection's share of the agencies' pool: what it holds, and
	// its reader's wait for room in it (made on the first wait).
	held  int64
	room  *sync.Cond
	woken bool // shutdown: no more waits
}

// queueCharge is what a queued batch costs the in-flight budget beside its
// rows: its pendingBatch, its refusal message and its ack come to some
// 400 B. So the budget bounds how many batches wait across connections,
// not only their bytes, and MaxPipeline bounds one connection's.
const queueCharge = 512

// pushAck hands a batch to the ack writer (it blocks while MaxPipeline
// batches of the connection wait, or while the in-flight budget is spent,
// which holds the agency back through TCP). The reader never
// waits for the disk itself, so a pipelining peer's next frames are read
// while earlier ones are on their way to disk, whatever protocol it
// speaks. (Answering a lone batch on the reader, to spare the hand-off,
// was measured: about 1% of a stop-and-wait run, which fsync bounds, and
// it turned pipelining seed-protocol peers with full frames into
// stop-and-wait ones, whose next frame the reader cannot see coming.)
func (c *conn) pushAck(pb *pendingBatch) {
	a := &c.acks
	// pb.charge was paid with its frame and is released when its ack is
	// written: a refused or empty batch holds no rows, yet waits in the
	// queue like any other behind an ack its peer does not read.
	a.wg.Add(1)
	a.mu.Lock()
	if !a.running {
		a.running = true
		a.ch = c.s.pools.queues.Get().(chan *pendingBatch)
		go c.ackLoop(a.ch)
	}
	ch := a.ch
	a.queued++
	a.mu.Unlock()
	ch <- pb // counted first: the ack writer waits for it rather than stop
}

// ackLoop answers the batches queued in ch in order and exits when none is
// queued. Acks of batches that are durable together go out in one write.
func (c *conn) ackLoop(ch chan *pendingBatch) {
	a := &c.acks
	taken := 0 // batches received since a.queued was last settled
	for {
		var pb *pendingBatch
		select {
		case pb = <-ch:
		default:
			if len(a.answered) > 0 {
				c.writeAcks()
				continue
			}
			a.mu.Lock()
			a.queued -= taken
			taken = 0
			if a.queued == 0 {
				a.running = false
				// Idle: hold no queue and no ack buffers.
				a.ch, a.out, a.answered = nil, nil, nil
				a.mu.Unlock()
				c.s.pools.queues.Put(ch)
				return
			}
			a.mu.Unlock()
			// pushAck counted a batch it has not put in yet: it is on its way.
			pb = <-ch
		}
		taken++
		if len(a.answered) > 0 && !pb.ready() {
			c.writeAcks()
		}
		c.complete(pb)
		c.answered(pb)
	}
}

func (c *conn) answered(pb *pendingBatch) { c.acks.answered = append(c.acks.answered, pb) }

// ready reports whether a batch can be answered without waiting.
func (pb *pendingBatch) ready() bool {
	if pb.rec == nil {
		return true
	}
	select {
	case <-pb.rec.Done():
		return true
	default:
		return false
	}
}

// complete waits for a batch to be durable (or takes its refusal) and
// appends its ack to the pending write.
func (c *conn) complete(pb *pendingBatch) {
	s := c.s
	if rec := pb.rec; rec != nil {
		var err error
		if pb.span.IsRecording() {
			_, sspan := s.tracer.Start(pb.ctx, "central.store")
			err = rec.Wait()
			g := rec.Group
			sspan.SetAttributes(attribute.Int64("loteria.group.seq", int64(g.Seq)),
				attribute.Int("loteria.group.batches", g.Batches), attribute.Int("loteria.group.bytes", g.Bytes),
				attribute.Int("loteria.round", rec.Round))
			if err != nil {
				sspan.SetStatus(codes.Error, "store failed")
			}
			sspan.End()
		} else {
			err = rec.Wait()
		}
		switch {
		case err == nil:
			pb.result = resultSuccess
			if c.stored != nil {
				c.stored.Add(float64(rec.Stored))
			}
			s.m.duplicates.Add(float64(pb.bets - rec.Stored))
			pb.round.addBets(rec.Stored)
		case errors.Is(err, ledger.ErrOutcomeUnknown):
			// Nobody may be told either way: no ack for this batch or any
			// after it; the connection closes and a resume tells the truth.
			pb.result = resultOutcomeUnknown
			c.acks.unknown.Store(true)
			c.nc.SetReadDeadline(time.Now()) // wake the reader: the connection ends
		default:
			pb.refuse(resultStoreFailed, wire.CodeStoreFailed, "central could not store the batch: "+err.Error())
		}
		c.give(pb.pool, pb.held)
		pb.held, pb.rec = 0, nil
	}
	c.answer(pb)
}

// answer appends a batch's ack and records its outcome.
func (c *conn) answer(pb *pendingBatch) {
	s := c.s
	a := &c.acks
	s.m.batch(pb.result)
	s.in.took(pb.newBets, pb.result == resultSuccess)
	if pb.span.IsRecording() {
		pb.span.SetAttributes(attribute.String("loteria.batch.result", pb.result))
		if r := pb.round; r != nil {
			pb.span.SetAttributes(attribute.Int("loteria.round", r.num))
		}
	}
	if a.unknown.Load() {
		return
	}
	start := len(a.out)
	a.out = wire.BeginFrame(a.out)
	if pb.result == resultSuccess {
		a.out = append(a.out, wire.AckSuccess...)
		wire.FinishFrame(a.out[start:])
		if s.cfg.SeedLog {
			s.log.InfoContext(pb.ctx, "apuesta_recibida", "result", "success", "cantidad", pb.bets)
		} else if s.log.Enabled(pb.ctx, slog.LevelDebug) {
			s.log.DebugContext(pb.ctx, "apuesta_recibida", "result", "success", "cantidad", pb.bets,
				"agency", pb.agency, "seq", pb.seq, "new", pb.newBets)
		}
		return
	}
	pb.span.SetStatus(codes.Error, pb.result)
	a.out = wire.AppendCodedError(a.out, pb.code, pb.errMsg)
	wire.FinishFrame(a.out[start:])
	if s.cfg.SeedLog {
		s.log.ErrorContext(pb.ctx, "apuesta_recibida", "result", "fail", "cantidad", 0)
		return
	}
	s.warn.Log(pb.ctx, slog.LevelWarn, "batch_"+pb.result, "apuesta_recibida", "result", "fail",
		"cantidad", pb.bets, "agency", pb.agency, "seq", pb.seq, "reason", pb.result, "err", pb.errMsg)
}

// writeAcks writes the gathered acks with one write, then closes the books
// on their batches.
func (c *conn) writeAcks() {
	s := c.s
	a := &c.acks
	if c.ackFailed() == nil && len(a.out) > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if err := wire.WriteFull(c.nc, a.out); err != nil {
			a.mu.Lock()
			a.err = fmt.Errorf("write ack: %w", err)
			if a.room != nil {
				a.room.Broadcast()
			}
			a.mu.Unlock()
			// Wake the reader, which then ends the connection.
			c.nc.SetReadDeadline(time.Now())
		}
	}
	now := time.Now()
	// Charges go back to the pool they came from: a connection's first
	// batch is charged to the anonymous share, the rest to the main one.
	var charged, anon int64
	for i, pb := range a.answered {
		if pb.pool == s.anon {
			anon += pb.charge
		} else {
			charged += pb.charge
		}
		observability.ObserveWithTrace(pb.ctx, s.m.batchDuration, now.Sub(pb.start).Seconds())
		pb.span.End()
		*pb = pendingBatch{}
		s.pools.pending.Put(pb)
		a.answered[i] = nil
		a.wg.Done()
	}
	c.give(s.budget, charged)
	c.give(s.anon, anon)
	a.answered = a.answered[:0]
	a.out = a.out[:0]
	if cap(a.out) > pooledCap {
		a.out = nil
	}
}

// drainAcks waits until every queued batch is answered and reports a
// failed ack write.
func (c *conn) drainAcks() error {
	c.acks.wg.Wait()
	return c.ackFailed()
}

func (c *conn) ackFailed() error {
	c.acks.mu.Lock()
	defer c.acks.mu.Unlock()
	return c.acks.err
}
