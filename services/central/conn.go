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
	queue  []pendingBatch     // batches queued for the store, acks not yet written
	out    []byte             // acks to write
	frames int
}

// pendingBatch is a batch on its way to disk, or already answered.
type pendingBatch struct {
	start  time.Time
	ctx    context.Context
	span   trace.Span
	header wire.BatchHeader
	bets   int
	p      *store.Pending
	rows   *[]byte
	// When the batch was refused before reaching the store:
	errMsg string
	result string
}

// Pools keep idle connections cheap: a connection holds a payload or rows
// buffer only while a batch is in hand.
var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const pooledCap = 64 << 10 // larger buffers are left to the GC

func getBuf() *[]byte { return payloadPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= pooledCap {
		*b = (*b)[:0]
		payloadPool.Put(b)
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

// loop serves frames until the conversation ends and says why.
func (c *conn) loop(ctx context.Context) (string, error) {
	s := c.s
	for {
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		size, err := wire.ReadHeader(c.br, s.cfg.MaxFrame)
		if err != nil {
			return c.readFailed(err)
		}
		buf := getBuf()
		payload, err := wire.ReadPayload(c.br, *buf, size)
		if err != nil {
			putBuf(buf)
			return c.readFailed(err)
		}
		*buf = payload
		c.frames++
		if wire.IsEnd(payload) {
			putBuf(buf)
			return c.end(ctx)
		}
		c.batch(ctx, payload)
		putBuf(buf)
		// Pipelining: while whole frames wait in the buffer, queue them too,
		// so one group commit serves several of this agency's batches.
		for len(c.queue) < s.cfg.MaxPipeline && wire.FrameBuffered(c.br) && !c.nextIsEnd() {
			size, err := wire.ReadHeader(c.br, s.cfg.MaxFrame)
			if err != nil {
				c.flushAcks()
				return c.readFailed(err)
			}
			buf := getBuf()
			payload, err := wire.ReadPayload(c.br, *buf, size)
			if err != nil {
				putBuf(buf)
				c.flushAcks()
				return c.readFailed(err)
			}
			c.frames++
			c.batch(ctx, payload)
			*buf = payload
			putBuf(buf)
		}
		if err := c.flushAcks(); err != nil {
			return closeWriteError, err
		}
	}
}

// nextIsEnd reports whether the buffered frame is END, which must wait for
// the acks before it.
func (c *conn) nextIsEnd() bool {
	b, err := c.br.Peek(wire.HeaderLen + len(wire.End))
	return err == nil && string(b) == "00000003"+wire.End
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
	// Tell the peer why before closing, when the socket still takes it.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(wire.AppendFrame(nil, wire.AppendErrorAck(nil, err.Error())))
	return closeProtocolError, err
}

// batch validates one batch and queues it for the store, or queues its
// error ack. Nothing of an invalid batch reaches the store.
func (c *conn) batch(ctx context.Context, payload []byte) {
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
		c.reject(&pb, resultMalformed, err.Error())
		return
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
		c.reject(&pb, resultWrongAgency, fmt.Sprintf("line 1: agency %d is not one of the %d agencies (1..%d)", h.Agency, s.cfg.Agencies, s.cfg.Agencies))
		return
	case c.agency != 0 && h.Agency != c.agency:
		c.reject(&pb, resultWrongAgency, fmt.Sprintf("line 1: agency %d on a connection of agency %d", h.Agency, c.agency))
		return
	}
	if c.agency == 0 {
		c.agency = h.Agency
		c.stored = s.m.betsStored.WithLabelValues(strconv.Itoa(h.Agency))
	}

	_, vspan := s.tracer.Start(pb.ctx, "central.validate")
	rows := getBuf()
	r := *rows
	for i, f := range bets {
		n, err := validate(f)
		if err != nil {
			vspan.End()
			putBuf(rows)
			c.reject(&pb, resultInvalidBet, "line "+strconv.Itoa(i+2)+": "+err.Error())
			return
		}
		r = store.AppendRow(r, h.Agency, f[wire.FieldFirstName], f[wire.FieldLastName],
			f[wire.FieldDocument], f[wire.FieldBirthdate], n)
	}
	*rows = r
	vspan.End()
	if len(bets) == 0 {
		// An empty batch stores nothing: it only says which agency this
		// connection is, so it is welcome even after the draw.
		putBuf(rows)
		pb.result = resultSuccess
		c.queue = append(c.queue, pb)
		return
	}
	if s.shuttingDown() {
		putBuf(rows)
		c.reject(&pb, resultShuttingDown, "central is shutting down: batch not stored, send it again later")
		return
	}
	err = s.bar.admit(h.Agency, func() error {
		p, err := s.store.Submit(r, len(bets))
		pb.p = p
		return err
	})
	if err != nil {
		putBuf(rows)
		result := resultStoreFailed
		if errors.Is(err, ErrDrawHeld) || errors.Is(err, ErrAgencyFinished) {
			result = resultAfterDraw
		}
		c.reject(&pb, result, err.Error())
		return
	}
	pb.rows = rows
	c.queue = append(c.queue, pb)
}

func validate(f wire.BetFields) (int, error) {
	if err := lottery.ValidateName("first name", f[wire.FieldFirstName]); err != nil {
		return 0, err
	}
	if err := lottery.ValidateName("last name", f[wire.FieldLastName]); err != nil {
		return 0, err
	}
	if err := lottery.ValidateDocument(f[wire.FieldDocument]); err != nil {
		return 0, err
	}
	if err := lottery.ValidateDate(f[wire.FieldBirthdate]); err != nil {
		return 0, err
	}
	return lottery.ParseNumber(f[wire.FieldNumber])
}

func (c *conn) reject(pb *pendingBatch, result, msg string) {
	pb.result, pb.errMsg = result, msg
	c.queue = append(c.queue, *pb)
}

// flushAcks waits for every queued batch in order and writes all their
// acks with one write.
func (c *conn) flushAcks() error {
	s := c.s
	c.out = c.out[:0]
	for i := range c.queue {
		pb := &c.queue[i]
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
			}
			sspan.End()
			putBuf(pb.rows)
			pb.rows, pb.p = nil, nil
		}
		c.answer(pb)
	}
	err := wire.WriteFull(c.nc, c.out)
	end := time.Now()
	for i := range c.queue {
		pb := &c.queue[i]
		observability.ObserveWithTrace(pb.ctx, s.m.batchDuration, end.Sub(pb.start).Seconds())
		pb.span.End()
		c.queue[i] = pendingBatch{}
	}
	c.queue = c.queue[:0]
	if cap(c.out) > pooledCap {
		c.out = nil
	}
	return err
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
