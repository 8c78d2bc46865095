// Package central is the Lotería Nacional server: it takes the agencies'
// batches, has them stored durably through a ledger, holds the rounds'
// draws once the agencies have said END (or sales closed), and answers
// each agency with its own winners.
//
// The package knows storage only through ledger.Ledger; services/cmd/central
// wires the file store in.
package central

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loteria/loteria/services/internal/ledger"
)

// Config is what a Server needs to run. Zero fields take the defaults.
type Config struct {
	// Address is the plaintext (seed protocol) listener, host:port; empty
	// for none. It is unauthenticated: see docs/TLS.md.
	Address string
	// TLSAddress is the mutual-TLS listener; empty for none. TLS must be
	// set with it.
	TLSAddress string
	// TLS is the listener's configuration: certificates required and
	// verified; the agency id comes from the client certificate.
	TLS *tls.Config
	// AgencyID reads the agency id from a verified client certificate
	// chain's leaf (required with TLS).
	AgencyID func(state tls.ConnectionState) (int, error)
	// HandshakeReason names a failed handshake for metrics and logs
	// (nil: "failed"); HandshakeReasons are all the names it gives, so
	// their series exist from the start.
	HandshakeReason  func(error) string
	HandshakeReasons []string

	// Agencies is N, the agencies a round's barrier waits for.
	Agencies int
	// Rounds is how many rounds to hold (default 1, the seed's one-shot
	// run); negative means until stopped (0 in the settings).
	Rounds int
	// RoundCutoff closes a round's sales this long after it opened (0:
	// only the barrier closes rounds).
	RoundCutoff time.Duration
	// BarrierTimeout closes a round this long after its first END (0: off).
	BarrierTimeout time.Duration
	// AllowAnonymousEnd counts an END from a plaintext connection that
	// never said which agency it is (a seed client with an empty file),
	// as the seed did. Off by default: any peer could then move the
	// barrier.
	AllowAnonymousEnd bool

	// MaxFrame bounds a frame's payload (default 64 KiB).
	MaxFrame int
	// IdleTimeout drops a peer silent this long while a frame is due.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake, a frame's payload once
	// its header is in, and the time a connection has from its accept to
	// name its agency.
	HandshakeTimeout time.Duration
	// MaxConnections caps the connections served at once; at the cap a
	// new connection evicts the oldest that has not named its agency.
	MaxConnections int
	// MaxConnectionsPerAddress caps the connections from one remote IP
	// address (0: no cap; behind NAT or Docker's port publishing every
	// agency may share one address).
	MaxConnectionsPerAddress int
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// MaxPipeline bounds a connection's batches between read and ack.
	MaxPipeline int
	// MaxInflightBytes bounds the bytes held for batches between read and
	// ack across all connections.
	MaxInflightBytes int64
	// StatusLogInterval is how often a waiting round logs who is missing.
	StatusLogInterval time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// SeedLog logs every batch at INFO as the seed did (LOG_FORMAT=seed);
	// otherwise batches are logged at DEBUG and refusals rate-limited.
	SeedLog bool
}

func (c *Config) defaults() error {
	if c.Address == "" && c.TLSAddress == "" {
		return errors.New("no listener: set SERVER_PORT (plaintext) or TLS_PORT with a certificate")
	}
	if c.TLSAddress != "" && (c.TLS == nil || c.AgencyID == nil) {
		return errors.New("a TLS listener needs a certificate, key and CA (TLS_CERT, TLS_KEY, TLS_CA)")
	}
	if c.Agencies < 1 {
		return fmt.Errorf("CLIENT_COUNT %d: the barrier needs at least 1 agency", c.Agencies)
	}
	if c.Rounds == 0 {
		c.Rounds = 1
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
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
	if c.StatusLogInterval <= 0 {
		c.StatusLogInterval = DefaultStatusLogInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HandshakeReason == nil {
		c.HandshakeReason = func(error) string { return "failed" }
	}
	return nil
}

// Deps are what a Server stores to and reports to. Ledger is required;
// nil others report nowhere.
type Deps struct {
	Ledger     ledger.Ledger
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Tracer     trace.Tracer
}

// Server is one central.
type Server struct {
	cfg    Config
	log    *slog.Logger
	warn   *warnings
	m      *metrics
	tracer trace.Tracer
	led    ledger.Ledger
	rounds *rounds
	budget *budget
	// anon is the budget of connections that have not said which agency
	// they are yet: a fraction of the main one's size, apart from it.
	anon *budget
	// share is what one agency's connection may hold of budget.
	share int64
	pools *pools
	rules *rulesClock
	in    ingest

	ready atomic.Bool

	mu       sync.Mutex
	conns    map[*conn]struct{}
	agencies map[int]*conn // the live connection of each agency
	perAddr  map[string]int
	// unnamed holds the connections that have not named their agency, the
	// oldest first: at the connection cap, a new connection takes the
	// place of the oldest of them (track).
	unnamed list.List
	// holders holds the unnamed connections whose frame holds a charge of
	// the anonymous budget while its payload arrives, the oldest first:
	// a frame that finds that budget spent takes the oldest one's place
	// (conn.acquire).
	holders list.List
	// evicting counts the evicted connections that have not yet ended:
	// they no longer count against the cap.
	evicting int
	shutting bool
	wg       sync.WaitGroup
	// stop ends background work (cut-off timers, status log) on shutdown.
	stop     chan struct{}
	stopOnce sync.Once
}

// New builds a server over a recovered ledger: its rounds, barrier and
// winners are rebuilt from what the ledger holds. Listen and Serve (or
// Run) start it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if deps.Ledger == nil {
		return nil, errors.New("central: no ledger")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Tracer == nil {
		deps.Tracer = noop.NewTracerProvider().Tracer("")
	}
	s := &Server{
		cfg:    cfg,
		log:    deps.Logger,
		m:      newMetrics(deps.Registerer, cfg.Agencies, cfg.HandshakeReasons),
		tracer: deps.Tracer,
		led:    deps.Ledger,
		budget: newBudget(cfg.MaxInflightBytes, true),
		// Not fifo: an unnamed connection's wait is bounded and taken up
		// again (conn.acquire), and frames that trickle are evicted rather
		// than waited for.
		anon:     newBudget(cfg.MaxInflightBytes/anonShare, false),
		share:    connShare(cfg.MaxInflightBytes, cfg.MaxFrame),
		pools:    newPools(cfg.MaxPipeline),
		rules:    newRulesClock(cfg.Now),
		conns:    make(map[*conn]struct{}),
		agencies: make(map[int]*conn),
		perAddr:  make(map[string]int),
		stop:     make(chan struct{}),
	}
	s.warn = newWarnings(deps.Logger)
	if deps.Registerer != nil {
		for _, p := range []struct {
			name string
			b    *budget
		}{{"agencies", s.budget}, {"anonymous", s.anon}} {
			deps.Registerer.MustRegister(
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "loteria_inflight_bytes", ConstLabels: prometheus.Labels{"pool": p.name},
					Help: "Bytes of the in-flight budget held now (frames being read, batches until their ack), by pool."},
					func() float64 { return float64(p.b.inUse()) }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "loteria_inflight_limit_bytes", ConstLabels: prometheus.Labels{"pool": p.name},
					Help: "The in-flight budget's size, by pool."},
					func() float64 { return float64(p.b.limit) }))
		}
	}
	s.cfg.MaxConnections = capToFileLimit(s.cfg.MaxConnections, deps.Logger)
	r, err := newRounds(s)
	if err != nil {
		return nil, err
	}
	s.rounds = r
	return s, nil
}

// capToFileLimit lowers the connection cap to what RLIMIT_NOFILE leaves
// after fdReserve descriptors, so accept never fails for lack of them
// while the cap says there is room. (Go raises the soft limit to the hard
// one at start.)
func capToFileLimit(want int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return want
	}
	room := int64(lim.Cur) - fdReserve
	if room < 1 {
		room = 1
	}
	if int64(want) > room {
		log.Warn("connection cap lowered to fit the file descriptor limit",
			"max_connections", want, "now", room, "rlimit_nofile", lim.Cur,
			"hint", "raise the limit (ulimit -n, or nofile in the container's ulimits) to serve more agencies")
		return int(room)
	}
	return want
}

// Listeners are a central's bound sockets.
type Listeners struct {
	Plain net.Listener // nil when off
	TLS   net.Listener // nil when off
}

// Close closes both.
func (l *Listeners) Close() error {
	var errs []error
	if l.Plain != nil {
		errs = append(errs, l.Plain.Close())
	}
	if l.TLS != nil {
		errs = append(errs, l.TLS.Close())
	}
	return errors.Join(errs...)
}

// Listen binds the configured listeners, with TCP keepalive tuned so a
// vanished peer is found within seconds. It touches nothing else: a
// central whose port is taken fails here, before its store is opened.
func Listen(cfg Config) (*Listeners, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
	}}
	var l Listeners
	if cfg.Address != "" {
		ln, err := lc.Listen(context.Background(), "tcp", cfg.Address)
		if err != nil {
			return nil, listenError("the plaintext listener (SERVER_PORT)", cfg.Address, err)
		}
		l.Plain = ln
	}
	if cfg.TLSAddress != "" {
		ln, err := lc.Listen(context.Background(), "tcp", cfg.TLSAddress)
		if err != nil {
			l.Close()
			return nil, listenError("the TLS listener (TLS_PORT)", cfg.TLSAddress, err)
		}
		l.TLS = ln
	}
	return &l, nil
}

func listenError(what, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s for %s: the port is already in use (another central? `ss -ltnp` shows who holds it): %w", addr, what, err)
	}
	return fmt.Errorf("listen on %s for %s: %w", addr, what, err)
}

// Ready is nil once the server serves with its ledger working.
func (s *Server) Ready() error {
	if err := s.led.Failed(); err != nil {
		return fmt.Errorf("store failed, restart the central once the cause is fixed: %w", err)
	}
	if !s.ready.Load() {
		return errors.New("not serving yet")
	}
	return nil
}

// Ledger is the server's ledger (for tests and the load tool).
func (s *Server) Ledger() ledger.Ledger { return s.led }

// Run listens and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := Listen(s.cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve accepts agencies on ln until ctx ends, then stops accepting, lets
// in-flight batches finish, closes every connection, within
// Config.ShutdownTimeout. It does not close the ledger (its owner does)
// and returns the ledger's failure, if any, so the program exits non-zero.
func (s *Server) Serve(ctx context.Context, ln *Listeners) error {
	s.ready.Store(true)
	if ln.Plain != nil {
		s.log.Info("listening", "address", ln.Plain.Addr().String(), "tls", false, "agencies", s.cfg.Agencies)
	}
	if ln.TLS != nil {
		s.log.Info("listening", "address", ln.TLS.Addr().String(), "tls", true, "agencies", s.cfg.Agencies)
	}
	s.rounds.start()
	var acceptWG sync.WaitGroup
	acceptWG.Add(1)
	go func() {
		defer acceptWG.Done()
		s.ingestLog()
	}()
	for _, l := range []struct {
		ln  net.Listener
		tls bool
	}{{ln.Plain, false}, {ln.TLS, true}} {
		if l.ln == nil {
			continue
		}
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			s.acceptLoop(ctx, l.ln, l.tls)
		}()
	}
	<-ctx.Done()
	err := s.shutdown(ln)
	acceptWG.Wait()
	return err
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, isTLS bool) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, capped, as
			// nats-server does, and keep serving the connections we have.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.m.acceptErrors.Inc()
			s.warn.Warn("accept", "accept failed, backing off", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.m.accepted.Inc()
		c := newConn(s, nc, isTLS)
		if reason := s.track(c); reason != "" {
			s.m.rejected.WithLabelValues(reason).Inc()
			s.warn.Warn("refused_"+reason, "connection refused", "reason", reason, "limit", s.limitOf(reason))
			go c.refuse(wire429(reason))
			continue
		}
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
		}()
	}
}

func (s *Server) limitOf(reason string) int {
	if reason == rejectPerAddress {
		return s.cfg.MaxConnectionsPerAddress
	}
	return s.cfg.MaxConnections
}

// track registers a connection, or says why it is refused.
func (s *Server) track(c *conn) string {
	var victim *conn
	defer func() { s.closeEvicted(victim, true) }() // after s.mu is released
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shutting:
		return rejectShutdown
	case s.cfg.MaxConnectionsPerAddress > 0 && s.perAddr[c.addr] >= s.cfg.MaxConnectionsPerAddress:
		return rejectPerAddress
	case len(s.conns)-s.evicting >= s.cfg.MaxConnections:
		if s.evicting >= maxEvicting {
			return rejectLimit
		}
		if victim = s.oldestUnnamed(); victim == nil {
			return rejectLimit
		}
		s.evict(victim)
	}
	s.conns[c] = struct{}{}
	c.unnamed = s.unnamed.PushBack(c)
	s.perAddr[c.addr]++
	s.wg.Add(1)
	s.m.connected.Inc()
	return ""
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	unlist(&s.unnamed, &c.unnamed)
	unlist(&s.holders, &c.holding)
	if c.evicted.Load() {
		s.evicting--
	}
	if s.perAddr[c.addr]--; s.perAddr[c.addr] <= 0 {
		delete(s.perAddr, c.addr)
	}
	if c.agency != 0 && s.agencies[c.agency] == c {
		delete(s.agencies, c.agency)
	}
	s.m.connected.Dec()
}

// claimOutcome is what claim did, decided under s.mu.
type claimOutcome int

const (
	claimed      claimOutcome = iota
	claimEvicted              // c was closed to make room: it acts for no agency
	claimTaken                // another plaintext connection is the agency's
)

// claim makes c the live connection of agency. On the plaintext
// listener a second live connection is refused (the agency will retry);
// an authenticated one replaces the older, which is closed: it returns
// the older connection so the caller can wait for it to finish.
func (s *Server) claim(c *conn, agency int) (older *conn, out claimOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.evicted.Load() {
		return nil, claimEvicted // its socket is closed: it acts for no agency
	}
	cur := s.agencies[agency]
	if cur != nil && cur != c {
		if !c.tls {
			return nil, claimTaken
		}
		cur.replaced.Store(true)
		cur.nc.SetDeadline(time.Now())
		older = cur
	}
	s.agencies[agency] = c
	unlist(&s.unnamed, &c.unnamed)
	return older, claimed
}

// oldestUnnamed is the oldest connection that has not named its agency,
// with s.mu held, or nil when every connection has named its agency. At
// the connection cap a new connection takes its place (track). Without
// that, peers that connect and never name an agency (a refused frame now
// and then kept a connection open) could hold every place and lock the
// agencies out, over TLS too, since the cap counts both listeners. A new
// connection always gets in while some connection is unnamed, and an
// agency names itself with its first frame, so a flood would need the
// whole cap of newer connections to arrive in that time to push an agency
// out. A connection that has named its agency is never evicted.
func (s *Server) oldestUnnamed() *conn {
	if e := s.unnamed.Front(); e != nil {
		return e.Value.(*conn)
	}
	return nil
}

// takeFromHolders evicts unnamed connections that have held their
// anonymous charges for trickleAfter or longer while their payloads
// arrive, the longest first, until their charges add up to n, and hands
// those charges to the caller: it returns how many bytes of the anonymous
// budget the caller now holds, 0 when such holders cannot cover n (then
// it evicts nobody). Handed over, not given back to the budget, so that
// no other frame waiting for room takes it first: a crowd of waiting
// tricklers used to win it every time. An evicted holder gives nothing
// back (dropAnon tells it). next is when the youngest holder looked at
// may be taken, if one was too young (zero otherwise). An evicted caller
// takes nothing. A holder younger than trickleAfter is a frame
// still on its way: seed clients whose first batches came together took
// each other's places (helper-29: 15 of 24 closed without an ack).
func (s *Server) takeFromHolders(c *conn, n int64, now time.Time) (took int64, next time.Time) {
	var victims []*conn
	s.mu.Lock()
	if c.evicted.Load() {
		s.mu.Unlock()
		return 0, time.Time{} // it is ending: it takes nobody's place
	}
	var can int64
	room := maxEvicting - s.evicting
	for e := s.holders.Front(); e != nil && can < n && room > 0; e, room = e.Next(), room-1 {
		old := e.Value.(*conn)
		if now.Sub(old.holdingSince) < trickleAfter {
			next = old.holdingSince.Add(trickleAfter) // when it could be taken
			break                                     // the rest are younger still
		}
		can += old.holdingAnon
	}
	for can >= n && took < n {
		old := s.holders.Front().Value.(*conn)
		took += old.holdingAnon
		old.handedOver = true
		s.evict(old)
		victims = append(victims, old)
	}
	s.mu.Unlock()
	for _, v := range victims {
		s.closeEvicted(v, false) // in the middle of a read: no wait to wake
	}
	return took, next
}

// unlist takes an element out of its list, if it is in one, with s.mu
// held.
func unlist(l *list.List, e **list.Element) {
	if *e != nil {
		l.Remove(*e)
		*e = nil
	}
}

// evict marks an unnamed connection evicted to make room, with s.mu
// held: it no longer counts against the cap, and closeEvicted, called
// once s.mu is released, ends it.
func (s *Server) evict(old *conn) {
	unlist(&s.unnamed, &old.unnamed)
	unlist(&s.holders, &old.holding)
	old.evicted.Store(true)
	s.evicting++
}

// closeEvicted ends an evicted connection (nil: none), with s.mu not held:
// closing a socket waits until its reader lets go of it. It closes the
// raw connection (a TLS one would first try to write an alert), so a read
// fails at once, and, when the connection may be waiting for the
// anonymous budget (mayWait), wakes that wait, which no read would end.
func (s *Server) closeEvicted(old *conn, mayWait bool) {
	if old == nil {
		return
	}
	old.raw.Close()
	if mayWait {
		s.anon.wake()
	}
}

// holdAnon records that c's frame holds n bytes of the anonymous budget
// while its payload arrives; dropAnon, that it no longer waits for it.
func (s *Server) holdAnon(c *conn, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.evicted.Load() {
		c.holdingAnon, c.holdingSince = n, time.Now()
		c.holding = s.holders.PushBack(c)
	}
}

// dropAnon reports whether c's charge was handed over to another frame,
// which then holds it: c must not give it back, nor use it.
func (s *Server) dropAnon(c *conn) (handedOver bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlist(&s.holders, &c.holding)
	return c.handedOver
}

// release lets another connection act for c's agency.
func (s *Server) release(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.agency != 0 && s.agencies[c.agency] == c {
		delete(s.agencies, c.agency)
	}
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

func (s *Server) shutdown(ln *Listeners) error {
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	s.ready.Store(false)
	s.stopOnce.Do(func() { close(s.stop) })
	// A reader waiting for budget has read no frame: it ends now.
	s.budget.close()
	s.anon.close()
	if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("close listener", "err", err)
	} else {
		s.log.Info("closed", "resource", "listeners")
	}

	// Wake every reader: a connection between frames ends now; one in
	// the middle of a batch finishes it and sends its ack first; one
	// waiting at the barrier is told (v1) or closed (seed).
	s.mu.Lock()
	s.shutting = true
	for c := range s.conns {
		c.nc.SetReadDeadline(time.Now())
		c.wakeShare(true)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(time.Until(deadline))
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
	s.rounds.stopAll()
	s.warn.Flush(context.Background())
	s.log.Info("closed", "resource", "connections")
	if err := s.led.Failed(); err != nil {
		return fmt.Errorf("the store failed during the run: %w", err)
	}
	return nil
}

// agencyLabel is the agency label value of per-agency series, bounded:
// past 1,000 agencies they share one series.
func agencyLabel(agency int) string {
	if agency > maxAgencySeries {
		return "other"
	}
	return strconv.Itoa(agency)
}

// Abort drops every connection at once without answering what is in
// flight, as a crash would look to the agencies (the load tool's restart
// mode uses it); cancel Serve's context after it.
func (s *Server) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting = true
	for c := range s.conns {
		c.nc.Close()
	}
}
