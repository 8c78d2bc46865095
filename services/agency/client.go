// Package agency is the agency client: it streams an agency's bets to the
// central in batches, round after round, sends END and receives the
// agency's winners. In the loteria protocol it resumes by itself: every
// connection opens with HELLO, the central's WELCOME says which bets it
// already has (its mark), and after a lost connection or a retryable error
// the client reconnects with backoff and sends from there.
package agency

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loteria/loteria/services/internal/tlsconf"
	"github.com/loteria/loteria/services/internal/wire"
)

// Protocol modes.
const (
	ProtocolLoteria = "loteria" // the seed protocol plus our extensions and the session
	ProtocolSeed    = "seed"    // exactly the seed protocol, no extensions: no resume
)

// UntilStopped as Options.Rounds sends round after round until the
// context ends.
const UntilStopped = -1

// DefaultServer is the default central address: the central's host name
// inside Docker Compose.
const DefaultServer = "server:12345"

// Options configure an agency's conversation with the central.
type Options struct {
	Agency   int
	Address  string
	MaxBets  int // bets per batch at most
	InFlight int // batches sent before waiting for acks
	Protocol string
	// Timeout bounds the dial (TLS handshake included), each write, the
	// WELCOME and each ack.
	Timeout time.Duration
	// WinnersTimeout bounds the wait for a round's winners, from its
	// first END, across reconnects.
	WinnersTimeout time.Duration
	// Rounds is how many chunks of the stream to send, one per round
	// (0 means 1; UntilStopped: until the context ends).
	Rounds int
	// Rate paces the bets to this many per second (0: as fast as the
	// window allows). Deps.Pace, when set, takes its place.
	Rate float64
	// RetryBase and RetryMax shape the backoff between reconnects
	// (defaults 100 ms and 10 s); RetryBudget is how long the agency may
	// keep failing without progress before it gives up (default 5 min).
	RetryBase, RetryMax, RetryBudget time.Duration
	// DialAttempts, when positive, also gives up after that many
	// attempts in a row without progress.
	DialAttempts int
	// TLS, when set, wraps every connection in TLS with this config; nil
	// is plaintext TCP.
	TLS *tls.Config
	// MaxWinnersFrame bounds the winners message (default 64 MiB).
	MaxWinnersFrame int
	// ProgressInterval is how often a long run logs its progress
	// (default 5 s); WaitLogInterval how often it says it is still
	// waiting for a draw (default 30 s).
	ProgressInterval, WaitLogInterval time.Duration
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
	switch {
	case o.Rounds == 0:
		o.Rounds = 1
	case o.Rounds < 0 && o.Rounds != UntilStopped:
		return fmt.Errorf("rounds %d: want 1 or more, or 0 for until stopped", o.Rounds)
	}
	if o.Rate < 0 {
		return fmt.Errorf("rate %g bets/s: want 0 (off) or more", o.Rate)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.WinnersTimeout <= 0 {
		o.WinnersTimeout = 10 * time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 10 * time.Second
	}
	if o.RetryMax < o.RetryBase {
		return fmt.Errorf("retry max %s is below retry base %s", o.RetryMax, o.RetryBase)
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = 5 * time.Minute
	}
	if o.DialAttempts < 0 {
		o.DialAttempts = 0
	}
	if o.MaxWinnersFrame <= 0 {
		o.MaxWinnersFrame = 64 << 20
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 5 * time.Second
	}
	if o.WaitLogInterval <= 0 {
		o.WaitLogInterval = 30 * time.Second
	}
	return nil
}

// Deps are what a client reports to; every field may be nil.
type Deps struct {
	Logger  *slog.Logger // narrowed by the caller (the agency program adds agency=<id>)
	Metrics *Metrics
	Tracer  trace.Tracer
	// OnAck, when set, is called for every ack with its latency (from the
	// batch's write, or from when it was due when paced) and the bets it
	// newly confirmed (a resend's bets count once).
	OnAck func(latency time.Duration, bets int)
	// Pace, when set, is called before each batch is packed with the bets
	// sent so far (the batch's first stream index minus the run's first);
	// it may block to hold a rate, and returns when the batch was due.
	// Latency is then measured from that time, so a server that falls
	// behind shows as latency rather than as less load (no coordinated
	// omission). A resent batch is due when it was first.
	Pace func(ctx context.Context, sent int) (due time.Time, err error)
	// OnWinners, when set, is called with each round's winners as they
	// arrive, in round order.
	OnWinners func(RoundWinners)
	// Clock paces, backs off and measures the retry budget (nil: real
	// time).
	Clock Clock
	// Rand draws the backoff's jitter (nil: math/rand/v2's random source).
	Rand Rand
	// WrapConn, when set, wraps every plaintext connection once it is
	// dialled (tests watch what is written, and how).
	WrapConn func(net.Conn) net.Conn
}

// RoundWinners are one round's winners of the agency.
type RoundWinners struct {
	Round   int      // the central's round number (in --protocol=seed: 1, 2, ... as sent)
	Number  int      // the winning number, 0 when the central did not say
	Winners []string // DNIs, in stored order; empty when none
}

// Result is what one run achieved.
type Result struct {
	// Winners are the last round's winners; Rounds every round's, in
	// order: the last MaxKeptRounds of them at least, twice that at most
	// (a run until stopped would grow without end; Deps.OnWinners sees
	// every one). RoundsDone counts them all.
	Winners    []string
	Rounds     []RoundWinners
	RoundsDone int
	Bets       int // bets of this run the central confirmed as stored (each once)
	Batches    int // batches acknowledged (a resend counts again)
	// Resumed is the central's mark when the run started: the bets it
	// already had.
	Resumed int64
	// Rejected is how many of the agency's bets the central refused, this
	// run and before it; RejectedBatches how many batches this run.
	Rejected        int64
	RejectedBatches int
	// BarrierWait is the last round's time from its first END to its
	// winners.
	BarrierWait time.Duration
}

// MaxKeptRounds is how many rounds' winners a Result keeps.
const MaxKeptRounds = 1024

// Error is a failed run, with the reason used in metrics.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrRejected is wrapped by the error of a run that finished but whose
// bets the central partly refused.
var ErrRejected = errors.New("the central refused some of the agency's bets")

// RejectedError is returned with a complete Result when the central
// refused bets (validation): they are in no draw.
type RejectedError struct {
	Bets    int64 // refused in all, as the central counts them
	Batches int   // refused batches this run
	Before  int64 // bets refused before this run started
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%v: %d bets refused (%d %s in this run, %d bets before it); they are in no draw (the warnings above say which; the central's log says why)",
		ErrRejected, e.Bets, e.Batches, plural(e.Batches, "batch", "batches"), e.Before)
}

func (e *RejectedError) Unwrap() error { return ErrRejected }

// Client talks to the central for one agency.
type Client struct {
	opts   Options
	log    *slog.Logger
	m      *Metrics
	tracer trace.Tracer
	deps   Deps
	clock  Clock
	rand   Rand
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
	c := &Client{opts: opts, log: deps.Logger, m: deps.Metrics, tracer: deps.Tracer, deps: deps, clock: deps.Clock, rand: deps.Rand}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.rand == nil {
		c.rand = globalRand{}
	}
	return c, nil
}

// Run sends the stream's chunks, one per round (Options.Rounds), each
// followed by END and its winners, and returns what it achieved. In the
// loteria protocol it resumes after every retryable failure until the
// retry budget is spent; in the seed protocol the first failure after
// connecting is final. A run whose bets the central partly refused returns
// its complete Result with a *RejectedError. ctx's end stops it at once
// and closes the connection.
func (c *Client) Run(ctx context.Context, s Stream) (Result, error) {
	var res Result
	if err := validFingerprint(s.Fingerprint()); err != nil && c.opts.Protocol == ProtocolLoteria {
		return res, err
	}
	if s.Len() < 0 && c.opts.Rounds != 1 {
		return res, errors.New("a stream of unknown length has one round: --rounds must be 1")
	}
	r := newRun(c, s, &res)
	var err error
	if c.opts.Protocol == ProtocolSeed {
		err = r.seed(ctx)
	} else {
		err = r.loteria(ctx)
	}
	if err != nil && ctx.Err() != nil {
		err = stopped(ctx)
	}
	if err == nil {
		// Done: every round's winners are in (an agency looping until
		// stopped never gets here; the stack's alerts rely on that).
		c.m.done.Set(1)
		if total := r.rejectedTotal(); total > 0 {
			res.Rejected = total
			err = &RejectedError{Bets: total, Batches: res.RejectedBatches, Before: r.rejectedBefore}
		}
	}
	return res, err
}

// stopped is the error of a run ended by its context.
func stopped(ctx context.Context) error { return fmt.Errorf("stopped: %w", context.Cause(ctx)) }

func (c *Client) fail(reason string, err error) error {
	c.m.errors.WithLabelValues(reason).Inc()
	return &Error{Reason: reason, Err: err}
}

// conn is one connection to the central.
type conn struct {
	net.Conn
	br   *bufio.Reader
	stop func() bool
}

func (cn *conn) close() {
	cn.stop()
	cn.Conn.Close()
}

// dial connects once (TLS when configured). A refused or reset dial is
// retryable; a host name that does not exist at the default address is
// not: it is the compose host name, run outside compose.
func (c *Client) dial(ctx context.Context, connectedBefore bool) (*conn, error) {
	d := &net.Dialer{Timeout: c.opts.Timeout, KeepAlive: 30 * time.Second}
	var (
		nc  net.Conn
		err error
	)
	if c.opts.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: c.opts.TLS}
		nc, err = td.DialContext(ctx, "tcp", c.opts.Address)
	} else {
		nc, err = d.DialContext(ctx, "tcp", c.opts.Address)
		if err == nil && c.deps.WrapConn != nil {
			nc = c.deps.WrapConn(nc)
		}
	}
	if err != nil {
		err = fmt.Errorf("connect to central %s: %w", c.opts.Address, err)
		var cve *tls.CertificateVerificationError
		var rhe tls.RecordHeaderError
		switch {
		case errors.As(err, &cve):
			return nil, c.fail(reasonConnection, fmt.Errorf("%w: the central's certificate is not one this agency trusts: check its TLS CA and server name settings", err))
		case errors.As(err, &rhe):
			return nil, c.fail(reasonConnection, fmt.Errorf("%w: the central does not speak TLS at this address (its plaintext port?)", err))
		}
		if !connectedBefore && isComposeHostMissing(c.opts.Address, err) {
			return nil, c.fail(reasonConnection, fmt.Errorf("%w; %s is the central's host name inside Docker Compose: outside compose, point the agency at the central, e.g. --server 127.0.0.1:12345 (env CLI_SERVER_ADDRESS)", err, DefaultServer))
		}
		return nil, retryable(c.fail(reasonConnection, err))
	}
	cn := &conn{Conn: nc, br: bufio.NewReaderSize(nc, 4096)}
	// Closing the connection is how ctx interrupts a blocked read or write.
	cn.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return cn, nil
}

// isComposeHostMissing: a DNS "no such host" for the default address.
func isComposeHostMissing(addr string, err error) bool {
	var de *net.DNSError
	if addr != DefaultServer || !errors.As(err, &de) {
		return false
	}
	return de.IsNotFound
}

// ioFail classifies a read or write failure on the connection, with the
// reason for metrics. All are retryable (the central may come back) but
// one: over TLS, the central ending the session with an alert that refuses
// the agency's certificate (another CA, expired, no agency named). In TLS
// 1.3 that alert is the error of the first read after the handshake, not
// of the dial; like a central certificate the agency does not trust, it is
// a setting to fix, and the same certificate would be refused again.
func (c *Client) ioFail(what string, err error) error {
	if c.opts.TLS != nil && tlsconf.HandshakeReason(err) == tlsconf.ReasonPeerRefused {
		return c.fail(reasonConnection, fmt.Errorf("%s: %w: the central refused this agency's certificate: check that it was issued by the central's CA (TLS_CA), has not expired and names this agency (bin/certs issues them)", what, err))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return retryable(c.fail(reasonTimeout, fmt.Errorf("%s: central did not answer within the timeout (--timeout %s): %w", what, c.opts.Timeout, err)))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, wire.ErrTruncatedFrame) {
		return retryable(c.fail(reasonConnection, fmt.Errorf("%s: central closed the connection: %w", what, err)))
	}
	return retryable(c.fail(reasonConnection, fmt.Errorf("%s: %w", what, err)))
}

func isConnClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
