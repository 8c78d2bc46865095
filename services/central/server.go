// Package central is the Lotería Nacional server: it takes the agencies'
// batches over TCP, stores them durably, waits at the barrier for every
// agency's END, holds the draw and answers each agency with its winners.
package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
)

// Config is what a Server needs to run. Zero fields take the defaults.
type Config struct {
	// Address to listen on, host:port (":12345" for every interface).
	Address string
	// Agencies is N, the agencies the barrier waits for.
	Agencies int
	// StorePath is the bets file.
	StorePath string
	// MaxFrame bounds a frame's payload (default 64 KiB).
	MaxFrame int
	// IdleTimeout drops a peer silent this long while a frame is due
	// (default 60s). Agencies waiting at the barrier are not idle.
	IdleTimeout time.Duration
	// MaxConnections caps the connections served at once (default 20,000).
	MaxConnections int
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// MaxPipeline bounds the batches of one connection queued for the
	// store before their acks are written (default 64).
	MaxPipeline int
	// MaxInflightBytes bounds the bytes of batches held between read and
	// ack across all connections (default 256 MiB).
	MaxInflightBytes int64
	// DiscardBets parses, validates and acknowledges batches without
	// storing them, to measure what storage costs. Never for real use:
	// acks then promise nothing and the draw finds no bets.
	DiscardBets bool
}

// Defaults of Config.
const (
	DefaultPort            = 12345
	DefaultMaxFrame        = 64 << 10
	DefaultIdleTimeout     = 60 * time.Second
	DefaultMaxConnections  = 20000
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxPipeline     = 64
	DefaultInflightBytes   = 256 << 20
)

func (c *Config) defaults() error {
	if c.Address == "" {
		c.Address = ":" + strconv.Itoa(DefaultPort)
	}
	if c.Agencies < 1 {
		return fmt.Errorf("CLIENT_COUNT %d: the barrier needs at least 1 agency", c.Agencies)
	}
	if c.StorePath == "" {
		return errors.New("no store path: set STORE_PATH or --store")
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxPipeline <= 0 {
		c.MaxPipeline = DefaultMaxPipeline
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = DefaultInflightBytes
	}
	return nil
}

// Deps are what a Server reports to; nil fields report nowhere.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Tracer     trace.Tracer
}

// Server is one central.
type Server struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	tracer trace.Tracer
	store  *store.Store
	bar    *barrier
	budget *budget
	pools  *pools
	book   winnerBook

	ln    net.Listener
	ready atomic.Bool

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutting bool
	active   int
	wg       sync.WaitGroup
}

// New opens the store (recovering it) and builds a server; Listen and
// Serve (or Run) start it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Tracer == nil {
		deps.Tracer = noop.NewTracerProvider().Tracer("")
	}
	st, err := store.Open(cfg.StorePath, store.Options{
		Logger:     deps.Logger.With("component", "store"),
		Registerer: deps.Registerer,
		Discard:    cfg.DiscardBets,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    deps.Logger,
		m:      newMetrics(deps.Registerer, cfg.Agencies),
		tracer: deps.Tracer,
		store:  st,
		budget: newBudget(cfg.MaxInflightBytes),
		pools:  newPools(),
		conns:  make(map[*conn]struct{}),
	}
	if err := s.book.load(st); err != nil {
		st.Close()
		return nil, fmt.Errorf("read the stored bets: %w", err)
	}
	s.bar = newBarrier(cfg.Agencies, s.draw, s.drawn)
	return s, nil
}

// Listen binds the server's address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Address, err)
	}
	s.ln = ln
	s.ready.Store(true)
	s.log.Info("listening", "address", ln.Addr().String(), "agencies", s.cfg.Agencies, "store", s.cfg.StorePath)
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready is nil once the server is listening with its store recovered.
func (s *Server) Ready() error {
	if !s.ready.Load() {
		return errors.New("not listening yet")
	}
	return nil
}

// Store is the server's store (for tests and the load tool).
func (s *Server) Store() *store.Store { return s.store }

// Run listens (if Listen was not called) and serves until ctx ends, then
// shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			s.store.Close()
			return err
		}
	}
	return s.Serve(ctx)
}

// Serve accepts agencies until ctx ends, then stops accepting, lets
// in-flight batches finish (or rejects them), closes every connection and
// the store, within Config.ShutdownTimeout.
func (s *Server) Serve(ctx context.Context) error {
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop(ctx) }()

	var acceptErr error
	select {
	case <-ctx.Done():
	case acceptErr = <-acceptDone:
	}
	return errors.Join(acceptErr, s.shutdown(ctx))
}

func (s *Server) acceptLoop(ctx context.Context) error {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, capped, as
			// nats-server does, and keep serving the connections we have.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed, backing off", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.m.accepted.Inc()
		c := &conn{s: s, nc: nc}
		if !s.track(c) {
			s.m.rejected.WithLabelValues("limit").Inc()
			s.log.Warn("connection refused: limit reached", "remote", nc.RemoteAddr().String(), "limit", s.cfg.MaxConnections)
			go c.refuse("central at its connection limit, try again later")
			continue
		}
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
		}()
	}
}

// track registers a connection, or refuses it at the cap or in shutdown.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting || s.active >= s.cfg.MaxConnections {
		return false
	}
	s.active++
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.m.connected.Inc()
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.active--
	s.m.connected.Dec()
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

func (s *Server) shutdown(ctx context.Context) error {
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	s.ready.Store(false)
	lnErr := s.ln.Close()
	if lnErr != nil && !errors.Is(lnErr, net.ErrClosed) {
		s.log.Warn("close listener", "err", lnErr)
	} else {
		s.log.Info("closed", "resource", "listener")
	}

	// Wake every reader: a connection between frames ends now; one in
	// the middle of a batch finishes it and sends its ack first.
	s.mu.Lock()
	s.shutting = true
	for c := range s.conns {
		c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	// Keep a little of the bound for the store.
	grace := time.Until(deadline) - time.Until(deadline)/5
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		s.log.Warn("connections still open at the shutdown bound: closed them", "connections", n)
		<-done
	}
	s.log.Info("closed", "resource", "connections")

	err := s.store.Close()
	if err != nil {
		s.log.Error("close store", "err", err)
	} else {
		s.log.Info("closed", "resource", "store", "path", s.cfg.StorePath)
	}
	return err
}

// draw holds the draw: once every admitted batch's outcome is in (the
// barrier admits no more), the winners recorded as batches became durable
// are laid out per agency in stored order.
func (s *Server) draw(ctx context.Context) (*lottery.Result, error) {
	ctx, span := s.tracer.Start(ctx, "central.draw")
	defer span.End()
	return s.book.result(ctx)
}

func (s *Server) drawn(firstEnd time.Time, took time.Duration, res *lottery.Result, err error) {
	if err != nil {
		s.log.Error("sorteo", "result", "fail", "err", err)
		return
	}
	s.m.draws.Inc()
	s.m.drawTook.Set(took.Seconds())
	s.m.endToDraw.Set(time.Since(firstEnd).Seconds())
	winners := 0
	if s.cfg.Agencies <= 1000 {
		for a := 1; a <= s.cfg.Agencies; a++ {
			s.m.winners.WithLabelValues(strconv.Itoa(a)).Set(float64(len(res.Winners(a))))
		}
	}
	res.Agencies(func(_ int, w []string) { winners += len(w) })
	s.log.Info("sorteo", "result", "success", "bets", res.Bets(), "winners", winners, "took", took)
}
