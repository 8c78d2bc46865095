// Package agency is the agency client: it streams an agency's bets to the
// central in batches, sends END and receives the agency's winners.
package agency

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/wire"
)

// Protocol modes.
const (
	ProtocolLoteria = "loteria" // the seed protocol plus our extensions
	ProtocolSeed    = "seed"    // exactly the seed protocol, no extensions
)

// Options configure one conversation with the central.
type Options struct {
	Agency         int
	Address        string
	MaxBets        int // bets per batch at most
	InFlight       int // batches sent before waiting for acks
	Protocol       string
	Timeout        time.Duration // dial, each write, each ack
	WinnersTimeout time.Duration // END → winners
	// DialAttempts is how many times to try connecting (default 1).
	DialAttempts int
	// MaxWinnersFrame bounds the winners message (default 64 MiB).
	MaxWinnersFrame int
}

func (o *Options) defaults() error {
	if o.Agency < 1 {
		return fmt.Errorf("agency id %d: must be 1 or more", o.Agency)
	}
	if o.MaxBets < 1 {
		return fmt.Errorf("batch.maxAmount %d: must be 1 or more", o.MaxBets)
	}
	if o.InFlight < 1 {
		o.InFlight = 1
	}
	switch o.Protocol {
	case "":
		o.Protocol = ProtocolLoteria
	case ProtocolLoteria, ProtocolSeed:
	default:
		return fmt.Errorf("protocol %q: want %q or %q", o.Protocol, ProtocolLoteria, ProtocolSeed)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.WinnersTimeout <= 0 {
		o.WinnersTimeout = 10 * time.Minute
	}
	if o.DialAttempts < 1 {
		o.DialAttempts = 1
	}
	if o.MaxWinnersFrame <= 0 {
		o.MaxWinnersFrame = 64 << 20
	}
	return nil
}

// Deps are what a client reports to; every field may be nil.
type Deps struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Tracer  trace.Tracer
	// OnAck, when set, is called for every ack with its round trip.
	OnAck func(rtt time.Duration, bets int)
}

// Result is what one run achieved.
type Result struct {
	Winners []string
	Bets    int // bets acknowledged
	Batches int // batches acknowledged
	// BarrierWait is the time from sending END to receiving the winners.
	BarrierWait time.Duration
}

// Error is a failed run, with the reason used in metrics.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Client talks to the central for one agency.
type Client struct {
	opts   Options
	log    *slog.Logger
	m      *Metrics
	tracer trace.Tracer
	onAck  func(time.Duration, int)
}

// NewClient checks opts and builds a client.
func NewClient(opts Options, deps Deps) (*Client, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	if deps.Tracer == nil {
		deps.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return &Client{opts: opts, log: deps.Logger, m: deps.Metrics, tracer: deps.Tracer, onAck: deps.OnAck}, nil
}

type inflight struct {
	sent time.Time
	bets int
	seq  uint64
	ctx  context.Context
	span trace.Span
}

// Run sends every bet of src, then END, and returns the agency's winners.
// It fails on the first error ack, lost connection or timeout; ctx's end
// stops it at once and closes the connection.
func (c *Client) Run(ctx context.Context, src Source) (Result, error) {
	var res Result
	conn, err := c.dial(ctx)
	if err != nil {
		return res, c.fail(reasonConnection, err)
	}
	defer conn.Close()
	// Closing the connection is how ctx interrupts a blocked read or write.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	res, err = c.converse(ctx, conn, src)
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	return res, err
}

func (c *Client) fail(reason string, err error) error {
	c.m.errors.WithLabelValues(reason).Inc()
	return &Error{Reason: reason, Err: err}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.opts.Timeout, KeepAlive: 30 * time.Second}
	var err error
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var conn net.Conn
		conn, err = d.DialContext(ctx, "tcp", c.opts.Address)
		if err == nil {
			return conn, nil
		}
		if attempt >= c.opts.DialAttempts || ctx.Err() != nil {
			break
		}
		c.m.retries.Inc()
		c.log.Warn("connect failed, retrying", "address", c.opts.Address, "attempt", attempt, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to central %s: %w", c.opts.Address, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil, fmt.Errorf("connect to central %s: %w", c.opts.Address, err)
}

// traceparentTemplate has the length of every W3C traceparent we send, so
// frames are sized before the batch's span exists.
const traceparentTemplate = "00-00000000000000000000000000000000-0000000000000000-00"

func (c *Client) converse(ctx context.Context, conn net.Conn, src Source) (Result, error) {
	var res Result
	br := bufio.NewReaderSize(conn, 4096)
	pk := &packer{agency: c.opts.Agency, maxBets: c.opts.MaxBets, maxFrame: wire.MaxAgencyFrame, src: src}
	ext := c.opts.Protocol == ProtocolLoteria
	var (
		b      batch
		queue  []inflight
		seq    uint64
		ackBuf []byte
	)
	readAck := func() error {
		p := queue[0]
		queue = queue[1:]
		conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
		payload, err := wire.ReadFrame(br, ackBuf[:0], 64<<10)
		if err != nil {
			return c.endBatch(p, c.ioFail("read ack of batch "+strconv.FormatUint(p.seq, 10), err))
		}
		ackBuf = payload
		if err := wire.ParseAck(payload); err != nil {
			return c.endBatch(p, c.fail(reasonErrorAck, fmt.Errorf("batch %d (%d bets): %w", p.seq, p.bets, err)))
		}
		rtt := time.Since(p.sent)
		observability.ObserveWithTrace(p.ctx, c.m.ackDuration, rtt.Seconds())
		c.m.betsAcked.Add(float64(p.bets))
		if c.onAck != nil {
			c.onAck(rtt, p.bets)
		}
		res.Bets += p.bets
		res.Batches++
		c.endBatch(p, nil)
		return nil
	}
	defer func() {
		for _, p := range queue {
			c.endBatch(p, errors.New("not acknowledged"))
		}
	}()

	for {
		seq++
		tmpl := wire.BatchHeader{Agency: c.opts.Agency}
		if ext {
			tmpl.Seq = seq
			tmpl.Traceparent = []byte(traceparentTemplate)
		}
		n, err := pk.next(tmpl)
		if errors.Is(err, io.EOF) {
			if seq > 1 {
				break
			}
			// No bets at all: an empty batch still tells the central
			// which agency this connection is, so END counts for it.
			n = 0
			pk.count = 0
			pk.body = pk.body[:0]
		} else if err != nil {
			return res, c.fail(reasonData, err)
		}
		bctx, span := c.tracer.Start(ctx, "agency.send_batch", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				attribute.Int("loteria.agency.id", c.opts.Agency),
				attribute.Int64("loteria.batch.seq", int64(seq)),
				attribute.Int("loteria.batch.bets", n),
			))
		hdr := wire.BatchHeader{Agency: c.opts.Agency}
		if ext {
			hdr.Seq = seq
			if tp := observability.Traceparent(bctx); tp != "" {
				hdr.Traceparent = []byte(tp)
			}
		}
		pk.assemble(&b, hdr)
		span.SetAttributes(attribute.Int("loteria.batch.bytes", len(b.frame)))
		for len(queue) >= c.opts.InFlight {
			if err := readAck(); err != nil {
				span.End()
				return res, err
			}
		}
		conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
		if err := wire.WriteFull(conn, b.frame); err != nil {
			p := inflight{ctx: bctx, span: span, seq: seq, bets: n}
			return res, c.endBatch(p, c.ioFail("send batch "+strconv.FormatUint(seq, 10), err))
		}
		c.m.batchesSent.Inc()
		c.m.betsSent.Add(float64(n))
		c.m.bytesSent.Add(float64(len(b.frame)))
		queue = append(queue, inflight{sent: time.Now(), bets: n, seq: seq, ctx: bctx, span: span})
		if n == 0 {
			break
		}
	}
	for len(queue) > 0 {
		if err := readAck(); err != nil {
			return res, err
		}
	}
	c.log.Info("bets sent", "agency", c.opts.Agency, "bets", res.Bets, "batches", res.Batches)

	_, span := c.tracer.Start(ctx, "agency.wait_winners", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("loteria.agency.id", c.opts.Agency)))
	defer span.End()
	start := time.Now()
	conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if err := wire.WriteFull(conn, []byte("00000003"+wire.End)); err != nil {
		return res, c.spanFail(span, c.ioFail("send END", err))
	}
	c.m.bytesSent.Add(11)
	conn.SetReadDeadline(time.Now().Add(c.opts.WinnersTimeout))
	payload, err := wire.ReadFrame(br, nil, c.opts.MaxWinnersFrame)
	if err != nil {
		return res, c.spanFail(span, c.ioFail("read winners", err))
	}
	winners, err := wire.ParseWinners(payload)
	if err != nil {
		return res, c.spanFail(span, c.fail(reasonErrorAck, err))
	}
	res.BarrierWait = time.Since(start)
	res.Winners = winners
	span.SetAttributes(attribute.Int("loteria.winners", len(winners)))
	c.m.winners.Set(float64(len(winners)))
	c.m.done.Set(1)
	return res, nil
}

func (c *Client) ioFail(what string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.fail(reasonTimeout, fmt.Errorf("%s: central did not answer within the timeout: %w", what, err))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, wire.ErrTruncatedFrame) {
		return c.fail(reasonConnection, fmt.Errorf("%s: central closed the connection: %w", what, err))
	}
	return c.fail(reasonConnection, fmt.Errorf("%s: %w", what, err))
}

func (c *Client) endBatch(p inflight, err error) error {
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

func (c *Client) spanFail(span trace.Span, err error) error {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	return err
}
