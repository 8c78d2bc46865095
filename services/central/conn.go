package central

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// conn is one agency connection, served by one goroutine that owns its
// buffers: read a frame, validate, queue for the store, ack once durable.
type conn struct {
	s  *Server
	nc net.Conn
	br *bufio.Reader

	agency int                // 0 until a batch says which agency this is
	stored prometheus.Counter // loteria_bets_stored_total{agency}
	fields []wire.BetFields   // reused by the parser
	frames int

	// The ack writer's side: batches queued in order, answered by
	// ackLoop, which runs only while some are queued.
	acks       chan *pendingBatch
	ackWG      sync.WaitGroup // batches queued and not yet answered
	ackMu      sync.Mutex
	ackRunning bool
	ackErr     error
	out        []byte          // acks gathered for one write; ackLoop's
	answered   []*pendingBatch // the batches whose acks are in out
}

// pendingBatch is a batch on its way to disk, or already answered.
type pendingBatch struct {
	start   time.Time
	ctx     context.Context
	span    trace.Span
	header  wire.BatchHeader
	bets    int
	p       *store.Pending
	rows    *[]byte
	held    int64    // bytes of the in-flight budget this batch holds
	winners []string // DNIs of its bets playing the winning number
	// When the batch was refused before reaching the store:
	errMsg string
	result string
}

// bufClasses are the buffer size classes of pools.
var bufClasses = [...]int{2 << 10, 16 << 10, 64 << 10}

const pooledCap = 64 << 10 // larger buffers are left to the GC

// pools keep idle connections cheap: a connection holds a payload or rows
// buffer only while a batch is in hand. Buffers come in size classes so a
// small batch does not pin a large buffer while it waits for the disk.
type pools struct {
	pending sync.Pool
	bufs    [len(bufClasses)]sync.Pool
}

func newPools() *pools {
	p := &pools{}
	p.pending.New = func() any { return new(pendingBatch) }
	return p
}

// getBuf returns an empty buffer with room for at least n bytes.
func (p *pools) getBuf(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			if b, ok := p.bufs[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, 0, c)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

func (p *pools) putBuf(b *[]byte) {
	c := cap(*b)
	for i := len(bufClasses) - 1; i >= 0; i-- {
		if c >= bufClasses[i] {
			if c <= pooledCap {
				*b = (*b)[:0]
				p.bufs[i].Put(b)
			}
			return
		}
	}
}

func (c *conn) refuse(msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	frame := wire.AppendFrame(nil, wire.AppendErrorAck(nil, msg))
	c.nc.Write(frame)
	c.nc.Close()
}

func (c *conn) serve(ctx context.Context) {
	s := c.s
	remote := c.nc.RemoteAddr().String()
	log := s.log.With("remote", remote)
	log.Debug("connection open")
	c.br = bufio.NewReaderSize(c.nc, 4096)
	reason, err := c.loop(ctx)
	c.nc.Close()
	s.untrack(c)
	s.m.closed.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "agency", c.agency, "frames", c.frames}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	if reason == closeProtocolError || reason == closeWriteError {
		log.Warn("connection closed", attrs...)
	} else {
		log.Debug("connection closed", attrs...)
	}
}

// loop serves frames until the conversation ends and says why. It reads
// and queues batches while earlier ones are still on their way to disk;
// the ack writer (ackLoop) answers them in order as they become durable,
// so an agency with several batches in flight has them all in the next
// group commit.
func (c *conn) loop(ctx context.Context) (reason string, err error) {
	s := c.s
	defer func() {
		// Every queued batch is answered (or fails to be) before the
		// connection closes: nothing stored goes unacknowledged for lack
		// of waiting.
		if werr := c.drainAcks(); werr != nil && err == nil {
			reason, err = closeWriteError, werr
		}
	}()
	for {
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		if err := c.ackFailed(); err != nil {
			return closeWriteError, err
		}
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		size, err := wire.ReadHeader(c.br, s.cfg.MaxFrame)
		if err != nil {
			return c.readFailed(err)
		}
		buf := s.pools.getBuf(size)
		payload, err := wire.ReadPayload(c.br, *buf, size)
		if err != nil {
			s.pools.putBuf(buf)
			return c.readFailed(err)
		}
		c.frames++
		if wire.IsEnd(payload) {
			*buf = payload
			s.pools.putBuf(buf)
			if err := c.drainAcks(); err != nil {
				return closeWriteError, err
			}
			return c.end(ctx)
		}
		pb := c.batch(ctx, payload)
		*buf = payload
		s.pools.putBuf(buf)
		c.pushAck(pb)
	}
}

// pushAck hands a batch to the ack writer, starting it if it is not
// running; it blocks while MaxPipeline batches wait, which holds the
// agency back through TCP.
func (c *conn) pushAck(pb pendingBatch) {
	if c.acks == nil {
		c.acks = make(chan *pendingBatch, c.s.cfg.MaxPipeline)
	}
	c.ackWG.Add(1)
	p := c.s.pools.pending.Get().(*pendingBatch)
	*p = pb
	c.acks <- p
	c.ackMu.Lock()
	if !c.ackRunning {
		c.ackRunning = true
		go c.ackLoop()
	}
	c.ackMu.Unlock()
}

// ackLoop answers queued batches in order and exits when none is queued,
// so an idle connection holds no second goroutine. Acks of batches that
// are durable together go out in one write.
func (c *conn) ackLoop() {
	for {
		select {
		case pb := <-c.acks:
			if len(c.answered) > 0 && !pb.ready() {
				c.writeAcks()
			}
			c.complete(pb)
			c.answered = append(c.answered, pb)
		default:
			if len(c.answered) > 0 {
				c.writeAcks()
				continue
			}
			c.ackMu.Lock()
			if len(c.acks) == 0 {
				c.ackRunning = false
				c.ackMu.Unlock()
				return
			}
			c.ackMu.Unlock()
		}
	}
}

// ready reports whether a batch can be answered without waiting.
func (pb *pendingBatch) ready() bool {
	if pb.p == nil {
		return true
	}
	select {
	case <-pb.p.Done():
		return true
	default:
		return false
	}
}

// writeAcks writes the acks gathered in c.out with one write, then closes
// the books on their batches.
func (c *conn) writeAcks() {
	s := c.s
	if c.ackFailed() == nil {
		c.nc.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if err := wire.WriteFull(c.nc, c.out); err != nil {
			c.ackMu.Lock()
			c.ackErr = fmt.Errorf("write ack: %w", err)
			c.ackMu.Unlock()
			// Wake the reader, which then ends the connection.
			c.nc.SetReadDeadline(time.Now())
		}
	}
	now := time.Now()
	for i, pb := range c.answered {
		observability.ObserveWithTrace(pb.ctx, s.m.batchDuration, now.Sub(pb.start).Seconds())
		pb.span.End()
		*pb = pendingBatch{}
		s.pools.pending.Put(pb)
		c.answered[i] = nil
		c.ackWG.Done()
	}
	c.answered = c.answered[:0]
	c.out = c.out[:0]
	if cap(c.out) > pooledCap {
		c.out = nil
	}
}

// drainAcks waits until every queued batch is answered and reports a
// failed ack write.
func (c *conn) drainAcks() error {
	c.ackWG.Wait()
	return c.ackFailed()
}

func (c *conn) ackFailed() error {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return c.ackErr
}

func (c *conn) readFailed(err error) (string, error) {
	s := c.s
	var reason string
	switch {
	case errors.Is(err, io.EOF):
		return closePeerClosed, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		return closeIdleTimeout, fmt.Errorf("no frame for %s", s.cfg.IdleTimeout)
	case errors.Is(err, wire.ErrBadHeader):
		reason = protoBadHeader
	case errors.Is(err, wire.ErrFrameTooLarge):
		reason = protoFrameTooLarge
	case errors.Is(err, wire.ErrTruncatedFrame):
		reason = protoTruncated
	default:
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		return closePeerClosed, err
	}
	s.m.protoErrors.WithLabelValues(reason).Inc()
	// Tell the peer why before closing, when the socket still takes it,
	// after the acks of the batches before (one writer at a time).
	c.drainAcks()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(wire.AppendFrame(nil, wire.AppendErrorAck(nil, err.Error())))
	return closeProtocolError, err
}

// batch validates one batch and queues it for the store, or queues its
// error ack. Nothing of an invalid batch reaches the store.
func (c *conn) batch(ctx context.Context, payload []byte) pendingBatch {
	s := c.s
	pb := pendingBatch{start: time.Now()}
	h, bets, err := wire.ParseBatch(payload, c.fields)
	c.fields = bets[:0]
	pb.header, pb.bets = h, len(bets)
	if h.Traceparent != nil {
		ctx = observability.ContextWithTraceparent(ctx, string(h.Traceparent))
	}
	pb.ctx, pb.span = s.tracer.Start(ctx, "central.batch", trace.WithSpanKind(trace.SpanKindServer))
	s.m.batchBytes.Observe(float64(len(payload)))
	if err != nil {
		return reject(pb, resultMalformed, err.Error())
	}
	pb.span.SetAttributes(
		attribute.Int("loteria.agency.id", h.Agency),
		attribute.Int64("loteria.batch.seq", int64(h.Seq)),
		attribute.Int("loteria.batch.bets", len(bets)),
		attribute.Int("loteria.batch.bytes", len(payload)),
	)
	s.m.batchBets.Observe(float64(len(bets)))
	switch {
	case h.Agency < 1 || h.Agency > s.cfg.Agencies:
		return reject(pb, resultWrongAgency, fmt.Sprintf("line 1: agency %d is not one of the %d agencies (1..%d)", h.Agency, s.cfg.Agencies, s.cfg.Agencies))
	case c.agency != 0 && h.Agency != c.agency:
		return reject(pb, resultWrongAgency, fmt.Sprintf("line 1: agency %d on a connection of agency %d", h.Agency, c.agency))
	}
	if c.agency == 0 {
		c.agency = h.Agency
		c.stored = s.m.betsStored.WithLabelValues(strconv.Itoa(h.Agency))
	}

	_, vspan := s.tracer.Start(pb.ctx, "central.validate")
	// A row is the bet line plus the agency and a comma, and quotes when
	// a name needs them: twice the payload always holds them.
	rows := s.pools.getBuf(2 * len(payload))
	r := *rows
	for i, f := range bets {
		n, err := validate(f)
		if err != nil {
			vspan.End()
			s.pools.putBuf(rows)
			return reject(pb, resultInvalidBet, "line "+strconv.Itoa(i+2)+": "+err.Error())
		}
		r = store.AppendRow(r, h.Agency, f[wire.FieldFirstName], f[wire.FieldLastName],
			f[wire.FieldDocument], f[wire.FieldBirthdate], n)
		if lottery.Wins(n) {
			pb.winners = append(pb.winners, string(f[wire.FieldDocument]))
		}
	}
	*rows = r
	vspan.End()
	if len(bets) == 0 {
		// An empty batch stores nothing: it only says which agency this
		// connection is, so it is welcome even after the draw.
		s.pools.putBuf(rows)
		pb.result = resultSuccess
		return pb
	}
	if s.shuttingDown() {
		s.pools.putBuf(rows)
		return reject(pb, resultShuttingDown, "central is shutting down: batch not stored, send it again later")
	}
	pb.held = s.budget.acquire(int64(len(r)))
	err = s.bar.admit(h.Agency, func() error {
		p, err := s.store.Submit(r, len(bets))
		if err == nil {
			// Counted while the barrier admits, so the draw waits for
			// this batch's outcome.
			s.book.pending.Add(1)
		}
		pb.p = p
		return err
	})
	if err != nil {
		s.pools.putBuf(rows)
		s.budget.release(pb.held)
		pb.held = 0
		result := resultStoreFailed
		if errors.Is(err, ErrDrawHeld) || errors.Is(err, ErrAgencyFinished) {
			result = resultAfterDraw
		}
		return reject(pb, result, err.Error())
	}
	pb.rows = rows
	return pb
}

func validate(f wire.BetFields) (int, error) {
	return lottery.ValidateFields(f[wire.FieldFirstName], f[wire.FieldLastName],
		f[wire.FieldDocument], f[wire.FieldBirthdate], f[wire.FieldNumber])
}

func reject(pb pendingBatch, result, msg string) pendingBatch {
	pb.result, pb.errMsg = result, msg
	return pb
}

// complete waits for a batch to be durable (or takes its refusal),
// appends its ack to c.out and records its outcome. It runs on the ack
// writer.
func (c *conn) complete(pb *pendingBatch) {
	s := c.s
	if pb.p != nil {
		_, sspan := s.tracer.Start(pb.ctx, "central.store")
		// The store completes every queued batch, even in shutdown.
		<-pb.p.Done()
		g := pb.p.Group()
		sspan.SetAttributes(attribute.Int64("loteria.group.seq", int64(g.Seq)),
			attribute.Int("loteria.group.batches", g.Batches), attribute.Int("loteria.group.bytes", g.Bytes))
		if err := pb.p.Err(); err != nil {
			sspan.RecordError(err)
			sspan.SetStatus(codes.Error, err.Error())
			pb.result, pb.errMsg = resultStoreFailed, "central could not store the batch: "+err.Error()
		} else {
			pb.result = resultSuccess
			s.book.record(pb.p.Offset(), pb.header.Agency, pb.winners, pb.bets)
		}
		s.book.pending.Done()
		sspan.End()
		s.pools.putBuf(pb.rows)
		s.budget.release(pb.held)
		pb.rows, pb.p, pb.held = nil, nil, 0
	}
	c.answer(pb)
}

// answer appends a batch's ack and records its outcome.
func (c *conn) answer(pb *pendingBatch) {
	s := c.s
	s.m.batches.WithLabelValues(pb.result).Inc()
	pb.span.SetAttributes(attribute.String("loteria.batch.result", pb.result))
	if pb.result == resultSuccess {
		c.out = wire.BeginFrame(c.out)
		start := len(c.out) - wire.HeaderLen
		c.out = append(c.out, wire.AckSuccess...)
		wire.FinishFrame(c.out[start:])
		c.stored.Add(float64(pb.bets))
		s.log.InfoContext(pb.ctx, "apuesta_recibida", "result", "success", "cantidad", pb.bets,
			"agency", pb.header.Agency, "seq", pb.header.Seq)
		return
	}
	pb.span.SetStatus(codes.Error, pb.errMsg)
	c.out = wire.BeginFrame(c.out)
	start := len(c.out) - wire.HeaderLen
	c.out = wire.AppendErrorAck(c.out, pb.errMsg)
	wire.FinishFrame(c.out[start:])
	s.log.WarnContext(pb.ctx, "apuesta_recibida", "result", "fail", "cantidad", pb.bets,
		"agency", pb.header.Agency, "seq", pb.header.Seq, "reason", pb.result, "err", pb.errMsg)
}

// end takes the agency's END: wait at the barrier, then send its winners.
func (c *conn) end(ctx context.Context) (string, error) {
	s := c.s
	start := time.Now()
	wctx, span := s.tracer.Start(ctx, "central.barrier_wait", trace.WithAttributes(attribute.Int("loteria.agency.id", c.agency)))
	finished, done := s.bar.arrive(ctx, c.agency)
	s.m.finished.Set(float64(s.bar.finished()))
	s.log.InfoContext(wctx, "agency finished", "agency", c.agency, "finished", finished, "expected", s.cfg.Agencies)
	select {
	case <-done:
		span.End()
	case <-ctx.Done():
		span.SetStatus(codes.Error, "shutdown before the draw")
		span.End()
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(wire.AppendFrame(nil, wire.AppendErrorAck(nil, "central is shutting down before the draw")))
		return closeShutdown, nil
	}
	winners, err := s.bar.winners(c.agency)
	_, sspan := s.tracer.Start(ctx, "central.send_winners", trace.WithAttributes(
		attribute.Int("loteria.agency.id", c.agency), attribute.Int("loteria.winners", len(winners))))
	defer sspan.End()
	var payload []byte
	if err != nil {
		payload = wire.AppendErrorAck(nil, err.Error())
	} else {
		payload = wire.AppendWinners(nil, winners)
	}
	c.nc.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if err := wire.WriteFull(c.nc, wire.AppendFrame(make([]byte, 0, wire.HeaderLen+len(payload)), payload)); err != nil {
		sspan.RecordError(err)
		return closeWriteError, err
	}
	s.m.barrierWait.Observe(time.Since(start).Seconds())
	s.log.InfoContext(ctx, "winners sent", "agency", c.agency, "cant_ganadores", len(winners))
	return closeDone, nil
}
