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
	Logger  *slog.Logger // narrowed by the caller (the agency program adds agency=<id>)
	Metrics *Metrics
	Tracer  trace.Tracer
	// OnAck, when set, is called for every ack with its latency: from the
	// batch's write, or from when it was due when Pace is set.
	OnAck func(latency time.Duration, bets int)
	// Pace, when set, is called before each batch is packed with the bets
	// sent so far; it may block to hold a rate, and returns when the batch
	// was due. Latency is then measured from that time, so a server that
	// falls behind shows as latency rather than as less load (no
	// coordinated omission).
	Pace func(ctx context.Context, sent int) (due time.Time, err error)
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
	pace   func(context.Context, int) (time.Time, error)
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
	return &Client{opts: opts, log: deps.Logger, m: deps.Metrics, tracer: deps.Tracer, onAck: deps.OnAck, pace: deps.Pace}, nil
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

	// The window: a batch enters before it is written and leaves when its
	// ack is read, so at most InFlight are unacknowledged. A reader
	// goroutine takes acks as they come, so their latency is measured
	// when they arrive, whatever the sender is doing.
	window := make(chan inflight, c.opts.InFlight)
	readerDone := make(chan error, 1)
	go func() { readerDone <- c.readAcks(conn, br, window, &res) }()

	sendErr := c.sendBatches(ctx, conn, src, window)
	close(window)
	ackErr := <-readerDone
	if sendErr != nil || ackErr != nil {
		// Whichever failed first is the cause; the other usually follows
		// from the connection being closed.
		if ackErr != nil && (sendErr == nil || !isConnClosed(ackErr)) {
			return res, ackErr
		}
		return res, sendErr
	}
	c.log.Info("bets sent", "bets", res.Bets, "batches", res.Batches)

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

func isConnClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// sendBatches packs and writes every batch of src, entering each into the
// window first. An agency with no bets sends one empty batch, which tells
// the central which agency this connection is, so its END counts.
func (c *Client) sendBatches(ctx context.Context, conn net.Conn, src Source, window chan<- inflight) error {
	pk := &packer{agency: c.opts.Agency, maxBets: c.opts.MaxBets, maxFrame: wire.MaxAgencyFrame, src: src}
	ext := c.opts.Protocol == ProtocolLoteria
	var (
		b    batch
		seq  uint64
		sent int
	)
	for {
		var due time.Time
		if c.pace != nil {
			var err error
			if due, err = c.pace(ctx, sent); err != nil {
				return err
			}
		}
		seq++
		tmpl := wire.BatchHeader{Agency: c.opts.Agency}
		if ext {
			tmpl.Seq = seq
			tmpl.Traceparent = []byte(traceparentTemplate)
		}
		n, err := pk.next(tmpl)
		if errors.Is(err, io.EOF) {
			if seq > 1 {
				return nil
			}
			n, pk.count, pk.body = 0, 0, pk.body[:0]
		} else if err != nil {
			return c.fail(reasonData, err)
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
		if due.IsZero() {
			due = time.Now()
		}
		p := inflight{sent: due, bets: n, seq: seq, ctx: bctx, span: span}
		select {
		case window <- p:
		case <-ctx.Done():
			return c.endBatch(p, ctx.Err())
		}
		conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
		if err := wire.WriteFull(conn, b.frame); err != nil {
			// The reader owns p now; closing the connection ends its wait.
			conn.Close()
			return c.ioFail("send batch "+strconv.FormatUint(seq, 10), err)
		}
		c.m.batchesSent.Inc()
		c.m.betsSent.Add(float64(n))
		c.m.bytesSent.Add(float64(len(b.frame)))
		sent += n
		if n == 0 {
			return nil
		}
	}
}

// readAcks reads one ack per batch entering the window, in order, until
// the window closes and is drained. On the first failure it closes the
// connection (stopping the sender) and ends the remaining batches' spans.
func (c *Client) readAcks(conn net.Conn, br *bufio.Reader, window <-chan inflight, res *Result) error {
	var ackBuf []byte
	var failed error
	for p := range window {
		if failed != nil {
			c.endBatch(p, errors.New("not acknowledged"))
			continue
		}
		conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
		payload, err := wire.ReadFrame(br, ackBuf[:0], 64<<10)
		if err != nil {
			failed = c.endBatch(p, c.ioFail("read ack of batch "+strconv.FormatUint(p.seq, 10), err))
			conn.Close()
			continue
		}
		ackBuf = payload
		if err := wire.ParseAck(payload); err != nil {
			failed = c.endBatch(p, c.fail(reasonErrorAck, fmt.Errorf("batch %d (%d bets): %w", p.seq, p.bets, err)))
			conn.Close()
			continue
		}
		latency := time.Since(p.sent)
		observability.ObserveWithTrace(p.ctx, c.m.ackDuration, latency.Seconds())
		c.m.betsAcked.Add(float64(p.bets))
		if c.onAck != nil {
			c.onAck(latency, p.bets)
		}
		res.Bets += p.bets
		res.Batches++
		c.endBatch(p, nil)
	}
	return failed
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
