package observability

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server limits. WriteTimeout must outlast the longest pprof profile served
// (net/http/pprof refuses a profile longer than the server's WriteTimeout;
// /debug/pprof/profile defaults to 30s).
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpPprofWriteTimeout = 2 * time.Minute
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 64 << 10
	// HTTPMaxConns bounds the server's open connections: without a bound,
	// idle or slow connections to the metrics port used up the central's
	// file descriptors and agencies could no longer connect (1,300 of
	// them, under ulimit -n 1200). At the bound a new connection takes the
	// place of the oldest one running no handler (evictingListener), so
	// peers that hold the places with half a request cannot keep a scrape
	// or a health check out; it waits only while all of them are being
	// answered. The central leaves this many descriptors out of its
	// connection cap.
	HTTPMaxConns         = 32
	metricsScrapeTimeout = 20 * time.Second
	metricsMaxInFlight   = 8
	// pprofMaxInFlight bounds the /debug/pprof/ requests served at once
	// (more are answered 429), so profiles leave most of HTTPMaxConns's
	// places to scrapes and health checks.
	pprofMaxInFlight       = 2
	healthcheckTimeout     = 3 * time.Second
	healthcheckMaxBodySize = 512
)

// HTTPOptions configures an [HTTPServer].
type HTTPOptions struct {
	// Logger receives errors from serving and from gathering metrics.
	// Nil discards them.
	Logger *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Routes are more handlers, by ServeMux pattern (e.g. "GET /status").
	Routes map[string]http.Handler
	// Ready reports whether the process is ready; nil means always ready.
	// It is called on every /readyz request, so it should be cheap.
	Ready func() error
}

// HTTPServer serves /metrics, /healthz, /readyz and optionally /debug/pprof/
// on its own mux. Start it, then Shutdown it; it cannot be restarted.
type HTTPServer struct {
	addr    string
	log     *slog.Logger
	srv     *http.Server
	handler http.Handler

	mu       sync.Mutex
	ln       net.Listener
	done     chan struct{} // closed when Serve has returned
	serveErr error         // Serve's error other than http.ErrServerClosed; read after done
}

// NewHTTPServer builds a server for addr (host:port; port 0 picks a free
// one) exposing g. Nothing listens until Start.
//
// Routes (GET and HEAD; other methods get 405):
//
//	/metrics        g, in OpenMetrics when the scraper asks for it (so exemplars are served)
//	/healthz        200 "ok": the process is alive
//	/readyz         200 "ok" when opts.Ready is nil or returns nil, else 503 with its error
//	/debug/pprof/   net/http/pprof, only when opts.Pprof
func NewHTTPServer(addr string, g prometheus.Gatherer, opts HTTPOptions) *HTTPServer {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorLog:            promLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: metricsMaxInFlight,
		Timeout:             metricsScrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	ready := opts.Ready
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		writeText(w, http.StatusOK, "ok")
	})
	writeTimeout := httpWriteTimeout
	for pattern, h := range opts.Routes {
		mux.Handle(pattern, h)
	}
	if opts.Pprof {
		// Explicit routes on our mux; importing net/http/pprof also
		// registers on http.DefaultServeMux, which is never served here.
		// One cap for them all: a profile over seconds holds a
		// connection's place while it runs, and 32 of them used to hold
		// every place, so scrapes and health checks waited until they
		// ended.
		sem := make(chan struct{}, pprofMaxInFlight)
		mux.Handle("/debug/pprof/", limitInFlight(sem, http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", limitInFlight(sem, http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", limitInFlight(sem, http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", limitInFlight(sem, http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", limitInFlight(sem, http.HandlerFunc(pprof.Trace)))
		writeTimeout = httpPprofWriteTimeout
	}
	return &HTTPServer{
		addr:    addr,
		log:     log,
		handler: mux,
		srv: &http.Server{
			Handler:           mux,
			ConnState:         connState,
			ReadHeaderTimeout: httpReadHeaderTimeout,
			ReadTimeout:       httpReadTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       httpIdleTimeout,
			MaxHeaderBytes:    httpMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
}

// Handler returns the server's routes, for embedding or httptest.
func (s *HTTPServer) Handler() http.Handler { return s.handler }

// Start listens on the address now, so Addr is known and a busy port is an
// error here, and serves in a goroutine until Shutdown.
func (s *HTTPServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("metrics server: already started")
	}
	if s.addr == "" {
		return errors.New("metrics server: empty listen address (leave the server out to disable it)")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("metrics server: listening on %q (is the port free and the address valid?): %w", s.addr, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	ln = newEvictingListener(ln, HTTPMaxConns)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics_server_failed", "addr", ln.Addr().String(), "error", err)
			s.serveErr = err
		}
	}()
	return nil
}

// Addr returns the address the server listens on (with the port chosen when
// the configured one was 0), or "" before Start.
func (s *HTTPServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server gracefully: no new connections, in-flight
// requests finish. When ctx ends first, the remaining connections are closed
// and ctx's error is returned. It also returns the error that made serving
// stop early, if any. Calling it before Start is allowed.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("metrics server: graceful shutdown cut short: %w", err)
	}
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return err
	}
	select {
	case <-done:
		if s.serveErr != nil {
			err = errors.Join(err, fmt.Errorf("metrics server: serving stopped early: %w", s.serveErr))
		}
	case <-ctx.Done():
		// Close above has already been called; Serve returns promptly.
	}
	return err
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// promLogger adapts slog to promhttp's Println logger.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("metrics_gather_failed", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}

// Healthcheck GETs url and returns nil only when it answers 200, within a
// few seconds at most (less if ctx ends sooner). It is meant for the
// programs' healthcheck subcommand in images without a shell or curl.
func Healthcheck(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: invalid URL %q: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:             nil, // a local probe never goes through a proxy
		DisableKeepAlives: true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: GET %s failed (is the process running and METRICS_ADDR set?): %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthcheckMaxBodySize))
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
		}
		return fmt.Errorf("healthcheck: GET %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}

// HealthcheckCommand is a program's `healthcheck` subcommand, for
// container healthchecks in images without a shell: it probes --url
// (defaultURL when not given) and returns the exit code, 0 when healthy.
func HealthcheckCommand(ctx context.Context, program, defaultURL string, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(program+" healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", defaultURL, "health URL to probe")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := Healthcheck(ctx, *url); err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	return 0
}

// limitInFlight serves h to at most cap(sem) requests at once and answers
// the others 429 at once, rather than queueing them on connections that
// hold places of the server's connection bound.
func limitInFlight(sem chan struct{}, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeText(w, http.StatusTooManyRequests, fmt.Sprintf("%d profiling requests are running already: try again when one has ended", cap(sem)))
		}
	})
}
