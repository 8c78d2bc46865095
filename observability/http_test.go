package observability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startServer starts an HTTPServer on a free loopback port and shuts it
// down when the test ends.
func startServer(t *testing.T, g prometheus.Gatherer, opts HTTPOptions) *HTTPServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := NewHTTPServer("127.0.0.1:0", g, opts)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

type response struct {
	code        int
	contentType string
	body        string
}

func get(t *testing.T, url, accept string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(delay)
	}
}

func TestHTTPServerRoutes(t *testing.T) {
	notReady := errors.New("store still recovering")
	tests := []struct {
		name     string
		opts     HTTPOptions
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz", HTTPOptions{}, "GET", "/healthz", 200, "ok\n"},
		{"healthz HEAD", HTTPOptions{}, "HEAD", "/healthz", 200, ""},
		{"healthz POST", HTTPOptions{}, "POST", "/healthz", 405, ""},
		{"readyz without check", HTTPOptions{}, "GET", "/readyz", 200, "ok\n"},
		{"readyz ready", HTTPOptions{Ready: func() error { return nil }}, "GET", "/readyz", 200, "ok\n"},
		{"readyz not ready", HTTPOptions{Ready: func() error { return notReady }}, "GET", "/readyz", 503, "not ready: store still recovering\n"},
		{"metrics", HTTPOptions{}, "GET", "/metrics", 200, ""},
		{"unknown path", HTTPOptions{}, "GET", "/nope", 404, ""},
		{"pprof disabled", HTTPOptions{}, "GET", "/debug/pprof/", 404, ""},
		{"pprof cmdline disabled", HTTPOptions{}, "GET", "/debug/pprof/cmdline", 404, ""},
		{"pprof enabled", HTTPOptions{Pprof: true}, "GET", "/debug/pprof/", 200, ""},
		{"pprof heap", HTTPOptions{Pprof: true}, "GET", "/debug/pprof/heap?debug=1", 200, ""},
		{"pprof cmdline", HTTPOptions{Pprof: true}, "GET", "/debug/pprof/cmdline", 200, ""},
	}
	reg := NewRegistry("test")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, reg, tt.opts)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+s.Addr()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d (body %q)", tt.method, tt.path, resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestHTTPServerMetricsNegotiationAndExemplars(t *testing.T) {
	reg := NewRegistry("central")
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "loteria_batch_duration_seconds",
		Help:    "test",
		Buckets: []float64{0.1, 1},
	})
	reg.MustRegister(h)

	tracer, _ := newTestTracer(t)
	ctx, span := tracer.Start(context.Background(), "central.batch")
	ObserveWithTrace(ctx, h, 0.05)
	span.End()
	traceID := span.SpanContext().TraceID().String()

	s := startServer(t, reg, HTTPOptions{})
	url := "http://" + s.Addr() + "/metrics"
	exemplar := `trace_id="` + traceID + `"`

	tests := []struct {
		name         string
		accept       string
		wantType     string
		wantExemplar bool
	}{
		{"openmetrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", "application/openmetrics-text", true},
		{"plain text", "", "text/plain", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, url, tt.accept)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if !strings.HasPrefix(r.contentType, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", r.contentType, tt.wantType)
			}
			for _, want := range []string{"loteria_batch_duration_seconds_bucket", BuildInfoName, "go_goroutines"} {
				if !strings.Contains(r.body, want) {
					t.Errorf("body lacks %s", want)
				}
			}
			if got := strings.Contains(r.body, exemplar); got != tt.wantExemplar {
				t.Errorf("exemplar %s present = %v, want %v", exemplar, got, tt.wantExemplar)
			}
			if tt.wantExemplar && !strings.HasSuffix(r.body, "# EOF\n") {
				t.Errorf("OpenMetrics body does not end with # EOF")
			}
		})
	}
}

func TestHTTPServerStart(t *testing.T) {
	s := startServer(t, NewRegistry("test"), HTTPOptions{})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<chosen port>", s.Addr())
	}

	tests := []struct {
		name string
		s    *HTTPServer
		want string
	}{
		{"twice", s, "already started"},
		{"port in use", NewHTTPServer(s.Addr(), NewRegistry("test"), HTTPOptions{}), "listening on"},
		{"empty address", NewHTTPServer("", NewRegistry("test"), HTTPOptions{}), "empty listen address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Start()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start() = %v, want an error containing %q", err, tt.want)
			}
		})
	}

	if got := NewHTTPServer("127.0.0.1:0", NewRegistry("test"), HTTPOptions{}).Addr(); got != "" {
		t.Errorf("Addr before Start = %q, want empty", got)
	}
	if err := NewHTTPServer("127.0.0.1:0", NewRegistry("test"), HTTPOptions{}).Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown before Start = %v, want nil", err)
	}
}

// blockingReady makes /readyz hold a request until released, to have a
// request in flight during Shutdown.
type blockingReady struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockingReady() *blockingReady {
	return &blockingReady{entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockingReady) ready() error {
	close(b.entered)
	<-b.release
	return nil
}

func TestHTTPServerShutdownGraceful(t *testing.T) {
	br := newBlockingReady()
	s := NewHTTPServer("127.0.0.1:0", NewRegistry("test"), HTTPOptions{Ready: br.ready})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()

	inFlight := make(chan response, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			inFlight <- response{code: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inFlight <- response{code: resp.StatusCode, body: string(b)}
	}()
	<-br.entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()

	// Once the listener is closed, new connections are refused...
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	// ...but the request in flight still completes.
	close(br.release)
	if r := <-inFlight; r.code != http.StatusOK || r.body != "ok\n" {
		t.Errorf("in-flight request got %d %q, want 200 ok", r.code, r.body)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

func TestHTTPServerShutdownDeadline(t *testing.T) {
	br := newBlockingReady()
	defer close(br.release)
	s := NewHTTPServer("127.0.0.1:0", NewRegistry("test"), HTTPOptions{Ready: br.ready})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	reqErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		reqErr <- err
	}()
	<-br.entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	// The stuck connection was closed rather than left hanging.
	select {
	case err := <-reqErr:
		if err == nil {
			t.Errorf("stuck request succeeded; want its connection closed")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("stuck request still open after Shutdown gave up; want its connection closed")
	}
}

func TestHealthcheck(t *testing.T) {
	stub := func(code int, body string) string {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(ts.Close)
		return ts.URL
	}
	s := startServer(t, NewRegistry("test"), HTTPOptions{Ready: func() error { return errors.New("draining") }})

	// A port nothing listens on: bind one, note it, close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		url     string
		wantErr string // "" means success
	}{
		{"our healthz", "http://" + s.Addr() + "/healthz", ""},
		{"our readyz not ready", "http://" + s.Addr() + "/readyz", "503 Service Unavailable: not ready: draining"},
		{"200", stub(200, "fine"), ""},
		{"500", stub(500, ""), "500 Internal Server Error"},
		{"204 is not healthy", stub(204, ""), "204 No Content"},
		{"nothing listening", "http://" + closedAddr + "/healthz", "is the process running"},
		{"bad url", "http://[::1/healthz", "invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Healthcheck(t.Context(), tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Healthcheck = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Healthcheck = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHealthcheckHonoursContext(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Healthcheck(ctx, ts.URL); !errors.Is(err, context.Canceled) {
		t.Fatalf("Healthcheck with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestHTTPServerConnectionCap: the server holds at most HTTPMaxConns
// connections; while every one of them is being answered, one more waits
// in the accept queue, unserved, until a response is written: the
// answered connection, idle then, makes room, and its response arrives
// whole. (Without the cap, connections to the metrics port used up the
// central's file descriptors. With the handler's return counted as the
// end, helper-28 saw the response cut in 2 of 30 rounds.)
func TestHTTPServerConnectionCap(t *testing.T) {
	entered := make(chan struct{}, HTTPMaxConns)
	release := make([]chan struct{}, HTTPMaxConns)
	for i := range release {
		release[i] = make(chan struct{})
	}
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("i"))
		if err != nil || i < 0 || i >= len(release) {
			http.Error(w, "bad i", http.StatusBadRequest)
			return
		}
		entered <- struct{}{}
		select {
		case <-release[i]:
		case <-r.Context().Done():
		}
		// A body larger than one write, so a cut response shows.
		writeText(w, http.StatusOK, strings.Repeat("ok", 64<<10))
	})
	s := startServer(t, NewRegistry("test"), HTTPOptions{Routes: map[string]http.Handler{"GET /block": block}})
	released := make([]bool, len(release))
	t.Cleanup(func() { // before Shutdown, which waits for the handlers
		for i, r := range release {
			if !released[i] {
				close(r)
			}
		}
	})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	held := make([]net.Conn, HTTPMaxConns)
	for i := range held {
		held[i] = dial()
		if _, err := fmt.Fprintf(held[i], "GET /block?i=%d HTTP/1.1\r\nHost: x\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
		<-entered // being answered: its handler runs until released
	}
	extra := dial()
	if _, err := io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := extra.Read(make([]byte, 1)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d was answered (n=%d, err=%v), want it held back by the cap of %d", HTTPMaxConns+1, n, err, HTTPMaxConns)
	}
	close(release[0])
	released[0] = true
	held[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil)
	if err != nil {
		t.Fatalf("released connection: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if want := strings.Repeat("ok", 64<<10); err != nil || resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
		t.Fatalf("released connection: status %d, %d bytes of body (%v), want 200 and %d bytes", resp.StatusCode, len(body), err, len(want))
	}
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connection %d once a response was written: %v", HTTPMaxConns+1, err)
	}
}

// TestHTTPServerEvictsSlowPeers: peers that hold every place with half a
// request header do not keep a health check out: at the cap a new
// connection takes the place of the oldest one running no handler. With
// netutil.LimitListener the check waited for the header timeout of the
// peers ahead of it, round after round (helper-27: 200 such peers delayed
// a /healthz by 29.5 s). The header timeout is set far beyond the test's
// deadline, so only an eviction lets the check through.
func TestHTTPServerEvictsSlowPeers(t *testing.T) {
	s := NewHTTPServer("127.0.0.1:0", NewRegistry("test"), HTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	s.srv.ReadHeaderTimeout, s.srv.ReadTimeout = time.Hour, time.Hour
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	slow := make([]net.Conn, HTTPMaxConns+8)
	for i := range slow {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		slow[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Healthcheck(ctx, "http://"+s.Addr()+"/healthz"); err != nil {
		t.Fatalf("health check behind %d slow peers: %v", len(slow), err)
	}
	// The oldest slow peer was closed to make room.
	slow[0].SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := slow[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("oldest slow peer: read %v, want EOF (evicted)", err)
	}
}

// TestLongProfilesLeaveRoomForScrapes: as many delta profiles as the
// server has connection places, each asking for a minute, used to hold
// every place, so /metrics and /healthz waited for them (a scrape timed
// out). At most pprofMaxInFlight run now; the others are answered 429 at
// once, and a scrape is answered while the profiles run.
func TestLongProfilesLeaveRoomForScrapes(t *testing.T) {
	s := startServer(t, NewRegistry("test"), HTTPOptions{Pprof: true})
	base := "http://" + s.Addr()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	codes := make(chan int, HTTPMaxConns)
	for range HTTPMaxConns {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/allocs?seconds=60", nil)
			resp, err := client.Do(req)
			if err != nil {
				codes <- 0 // cancelled at the end: it was running
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	want := HTTPMaxConns - pprofMaxInFlight
	timeout := time.After(10 * time.Second)
	for i := range want {
		select {
		case code := <-codes:
			if code != http.StatusTooManyRequests {
				t.Fatalf("profile request %d ended with %d while the others ran, want 429", i+1, code)
			}
		case <-timeout:
			t.Fatalf("%d of %d profile requests beyond the first %d were answered 429 in 10 s: the others still hold their places", i, want, pprofMaxInFlight)
		}
	}
	// pprofMaxInFlight profiles are running; a scrape gets in at once.
	sc := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := sc.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s while %d profiles run: %v", path, pprofMaxInFlight, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s while profiles run: %d, want 200", path, resp.StatusCode)
		}
	}
	if got := get(t, base+"/debug/pprof/cmdline", "").code; got != http.StatusTooManyRequests {
		t.Fatalf("a profiling request beside %d running ones: %d, want 429", pprofMaxInFlight, got)
	}
	// Once the running ones end, profiling is served again.
	cancel()
	for range pprofMaxInFlight {
		<-codes
	}
	waitFor(t, "a profiling request to be served once the running ones ended", func() bool {
		return get(t, base+"/debug/pprof/cmdline", "").code == http.StatusOK
	})
}
