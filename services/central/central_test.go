package central_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

type harness struct {
	srv   *central.Server
	led   *store.Store
	addr  string
	reg   *prometheus.Registry
	store string
	stop  func() error
	// failOK: the test expects (and checks) a failed shutdown itself.
	failOK bool
}

// harnessOpts are what a test may set beyond the central's Config.
type harnessOpts struct {
	store     string        // the bets file (default: in t.TempDir())
	storeOpts store.Options // FS, limits
	deps      central.Deps  // logger, tracer (Ledger and Registerer are the harness's)
	listener  net.Listener  // served instead of cfg's addresses (e.g. a pipeListener)
	tls       net.Listener  // served as the TLS listener instead of cfg.TLSAddress
}

type harnessOpt func(*harnessOpts)

func withStore(path string) harnessOpt { return func(o *harnessOpts) { o.store = path } }
func withListener(ln net.Listener) harnessOpt {
	return func(o *harnessOpts) { o.listener = ln }
}
func withTLSListener(ln net.Listener) harnessOpt {
	return func(o *harnessOpts) { o.tls = ln }
}
func withDeps(d central.Deps) harnessOpt { return func(o *harnessOpts) { o.deps = d } }
func withStoreOptions(so store.Options) harnessOpt {
	return func(o *harnessOpts) { o.storeOpts = so }
}

// startCentral runs a central on a loopback port, over a real store, until
// the test ends (or stop is called: it shuts the central down, then closes
// the store, and returns the first error).
func startCentral(t testing.TB, cfg central.Config, opt ...harnessOpt) *harness {
	t.Helper()
	var o harnessOpts
	for _, f := range opt {
		f(&o)
	}
	if o.store == "" {
		o.store = filepath.Join(t.TempDir(), "bets.csv")
	}
	if cfg.Address == "" && cfg.TLSAddress == "" {
		cfg.Address = "127.0.0.1:0"
	}
	reg := prometheus.NewRegistry()
	so := o.storeOpts
	so.Registerer = reg
	st, err := store.Open(o.store, so)
	if err != nil {
		t.Fatal(err)
	}
	deps := o.deps
	deps.Registerer, deps.Ledger = reg, st
	srv, err := central.New(cfg, deps)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ln := &central.Listeners{Plain: o.listener, TLS: o.tls}
	if o.listener == nil && o.tls == nil {
		ln, err = central.Listen(cfg)
	}
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	addr := ""
	if ln.Plain != nil {
		addr = ln.Plain.Addr().String()
	} else {
		addr = ln.TLS.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			stopErr = errors.Join(<-done, st.Close())
		})
		return stopErr
	}
	h := &harness{srv: srv, led: st, addr: addr, reg: reg, store: o.store, stop: stop}
	t.Cleanup(func() {
		if err := stop(); err != nil && !t.Failed() && !h.failOK {
			t.Errorf("central shutdown: %v", err)
		}
	})
	return h
}

// hangUp closes a raw connection and waits until the central has let it
// go, so the agency it named may connect again.
func (h *harness) hangUp(t testing.TB, c *rawConn) {
	t.Helper()
	before := testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_connected", "", ""))
	c.nc.Close()
	testenv.Eventually(t, 5*time.Second, "the central to drop the connection", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_connected", "", "")) < before
	})
}

// dataDir is the official data when it is there, otherwise five generated
// files of the same shape, so the tests that need data never skip.
func dataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "datasets", "tp0")
	if _, err := os.Stat(testenv.AgencyFile(dir, 1)); err == nil {
		return dir
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("official data not found at %s (CI is set: the test must run on it)", dir)
	}
	dir = t.TempDir()
	for i, n := range []int{9000, 8500, 5300, 3100, 330} {
		if _, err := datagen.WriteFile(testenv.AgencyFile(dir, i+1), datagen.Options{Seed: 3, Agency: i + 1}, n); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runAgency(ctx context.Context, addr, path string, id, maxBets, inFlight int, protocol string) (agency.Result, error) {
	s, err := agency.OpenFileStream(path, id)
	if err != nil {
		return agency.Result{}, err
	}
	c, err := agency.NewClient(agency.Options{
		Agency: id, Address: addr, MaxBets: maxBets, InFlight: inFlight, Protocol: protocol,
		Timeout: 20 * time.Second, WinnersTimeout: time.Minute,
	}, agency.Deps{})
	if err != nil {
		return agency.Result{}, err
	}
	return c.Run(ctx, s)
}

// TestOfficialData runs the five official agencies over real TCP and checks
// every bet is stored exactly once and every agency gets exactly its own
// winners, computed here from its file.
func TestOfficialData(t *testing.T) {
	dir := dataDir(t)
	want := map[int][]testenv.Bet{}
	total := 0
	for i := 1; i <= 5; i++ {
		want[i] = testenv.ReadAgencyFile(t, testenv.AgencyFile(dir, i), i)
		total += len(want[i])
	}
	if official := filepath.Join(testenv.RepoRoot(t), "..", "shared", "datasets", "tp0"); dir == official && total != 78697 {
		t.Fatalf("official data holds %d bets, its README says 78,697", total)
	}
	for _, tc := range []struct {
		name     string
		maxBets  int
		inFlight int
		protocol string
	}{
		{"maxAmount=10/stop-and-wait/seed", 10, 1, agency.ProtocolSeed},
		{"full-8KiB/pipelined/loteria", 10000, 8, agency.ProtocolLoteria},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startCentral(t, central.Config{Agencies: 5})
			results := make([]agency.Result, 6)
			errs := make([]error, 6)
			var wg sync.WaitGroup
			start := time.Now()
			for i := 1; i <= 5; i++ {
				wg.Go(func() {
					results[i], errs[i] = runAgency(t.Context(), h.addr, testenv.AgencyFile(dir, i), i, tc.maxBets, tc.inFlight, tc.protocol)
				})
			}
			wg.Wait()
			t.Logf("5 agencies, %d bets: %s", total, time.Since(start))
			for i := 1; i <= 5; i++ {
				if errs[i] != nil {
					t.Fatalf("agency %d: %v", i, errs[i])
				}
				if w := testenv.Winners(want[i]); !slices.Equal(results[i].Winners, w) {
					t.Errorf("agency %d winners = %v, want %v", i, results[i].Winners, w)
				}
				if results[i].Bets != len(want[i]) {
					t.Errorf("agency %d: %d bets acked, want %d", i, results[i].Bets, len(want[i]))
				}
			}
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			stored := testenv.ByAgency(testenv.ReadStore(t, h.store))
			for i := 1; i <= 5; i++ {
				if !slices.Equal(stored[i], want[i]) {
					t.Errorf("agency %d: store holds %d bets, want its %d bets exactly once in file order", i, len(stored[i]), len(want[i]))
				}
			}
			if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_batches_received_total", "result", "success")); got == 0 {
				t.Error("no successful batch counted")
			}
		})
	}
}

// counterWith finds one series of a metric family in a registry.
func counterWith(t testing.TB, g prometheus.Gatherer, name, label, value string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return nil
}

// rawConn speaks the protocol byte by byte, as the seed's client does.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return newRawConn(t, nc)
}

func newRawConn(t *testing.T, nc net.Conn) *rawConn {
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(payload string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.nc, "%08d%s", len(payload), payload); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads exactly the bytes of one frame carrying payload.
func (c *rawConn) expect(payload string) {
	c.t.Helper()
	want := fmt.Sprintf("%08d%s", len(payload), payload)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, got); err != nil {
		c.t.Fatalf("reading %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectPrefix reads one frame and checks its payload's start.
func (c *rawConn) expectPrefix(prefix string) string {
	c.t.Helper()
	p, err := wire.ReadFrame(c.br, nil, 1<<20)
	if err != nil {
		c.t.Fatalf("reading a frame starting %q: %v", prefix, err)
	}
	if !strings.HasPrefix(string(p), prefix) {
		c.t.Fatalf("got %q, want it to start with %q", p, prefix)
	}
	return string(p)
}

func (c *rawConn) expectClosed() {
	c.t.Helper()
	if b, err := c.br.ReadByte(); err == nil {
		c.t.Fatalf("connection still open: read %q", b)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("want the central to close the connection, got %v", err)
	}
}

// TestSeedClientByteForByte speaks exactly the seed protocol (no
// extensions) and checks every answer byte for byte.
func TestSeedClientByteForByte(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2})
	a1 := dialRaw(t, h.addr)
	a1.send("1;2\nSantiago Lionel;Lorca;30904465;1999-03-17;7574\nAgustín;Zambrano;21689196;2000-05-10;9325\n")
	a1.expect("success;Batch stored successfully.")
	// An invalid batch gets an error ack; the connection stays open.
	a1.send("1;1\nAna;Pérez;123;1999-02-30;5\n")
	if msg := a1.expectPrefix("error;"); !strings.Contains(msg, "line 2") || !strings.Contains(msg, "birthdate is not a real date") {
		t.Errorf("error ack %q does not say which line and what", msg)
	} else if strings.Contains(msg, "1999-02-30") {
		t.Errorf("error ack %q quotes the bet's birthdate: personal data", msg)
	}
	a1.send("1;1\nMaría José;Abadía;11111111;1980-01-01;7574\n")
	a1.expect("success;Batch stored successfully.")
	a1.send("END")

	a2 := dialRaw(t, h.addr)
	a2.send("2;1\nTiago Nicolás;Rivera;34407251;2001-08-29;1033\n")
	a2.expect("success;Batch stored successfully.")
	a2.send("END")

	a1.expect("30904465;11111111")
	a1.expectClosed()
	a2.expect("NO_WINNERS")
	a2.expectClosed()
}

// TestNoWinnersBeforeBarrier: an agency that sent END hears nothing until
// the last agency has; one that comes back after the draw is answered at
// once; bets after the draw are refused.
func TestNoWinnersBeforeBarrier(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2})
	a1 := dialRaw(t, h.addr)
	a1.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	a1.expect("success;Batch stored successfully.")
	a1.send("END")
	// Agency 2 is still sending: agency 1 must hear nothing yet.
	a2 := dialRaw(t, h.addr)
	a2.send("2;1\nLuis;Gómez;2;1990-01-01;1\n")
	a2.expect("success;Batch stored successfully.")
	a1.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := a1.br.ReadByte(); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("agency 1 heard something before the barrier: %v", err)
	}
	a1.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	a2.send("END")
	a1.expect("1")
	a2.expect("NO_WINNERS")

	again := dialRaw(t, h.addr)
	again.send("1;0\n")
	again.expect("success;Batch stored successfully.")
	again.send("END")
	again.expect("1")

	late := dialRaw(t, h.addr)
	late.send("2;1\nLuis;Gómez;3;1990-01-01;7574\n")
	late.expectPrefix("error;")
}

// BenchmarkOfficialData times the whole official run in one process: five
// agencies with the real client over loopback TCP, durable acks, metrics
// on. One op is one run of 78,697 bets (a fresh central each). The tracing
// dimension prices instrumentation: "off" is a no-op tracer; "exported"
// records every span on both sides and exports them in batches to an
// exporter that drops them (the cost on our side of the wire).
func BenchmarkOfficialData(b *testing.B) {
	dir := testenv.OfficialDataDir(b)
	for _, tc := range []struct {
		name              string
		maxBets, inFlight int
	}{
		{"maxAmount=10/in-flight=64", 10, 64},
		{"full-8KiB/in-flight=64", 10000, 64},
	} {
		for _, tracing := range []string{"off", "exported"} {
			b.Run(tc.name+"/tracing="+tracing, func(b *testing.B) {
				var centralTracer, agencyTracer trace.Tracer
				if tracing == "exported" {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
					defer tp.Shutdown(context.Background())
					centralTracer, agencyTracer = tp.Tracer("central"), tp.Tracer("agency")
				}
				for b.Loop() {
					b.StopTimer()
					h := startCentral(b, central.Config{Agencies: 5}, withDeps(central.Deps{Tracer: centralTracer}))
					b.StartTimer()
					var wg sync.WaitGroup
					for i := 1; i <= 5; i++ {
						wg.Go(func() {
							f, err := agency.OpenFileStream(testenv.AgencyFile(dir, i), i)
							if err != nil {
								b.Error(err)
								return
							}
							c, err := agency.NewClient(agency.Options{Agency: i, Address: h.addr, MaxBets: tc.maxBets, InFlight: tc.inFlight},
								agency.Deps{Tracer: agencyTracer, Metrics: agency.NewMetrics(prometheus.NewRegistry())})
							if err != nil {
								b.Error(err)
								return
							}
							if _, err := c.Run(b.Context(), f); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					if err := h.stop(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(78697*b.N)/b.Elapsed().Seconds(), "bets/s")
			})
		}
	}
}

// discardExporter takes spans and drops them.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// TestRestartRemembersStoredBets: bets stored before a restart take part
// in the draw after it, in stored order, ahead of the ones sent after.
func TestRestartRemembersStoredBets(t *testing.T) {
	store := filepath.Join(t.TempDir(), "bets.csv")
	first := startCentral(t, central.Config{Agencies: 2}, withStore(store))
	c := dialRaw(t, first.addr)
	c.send("1;2\nAna;Pérez;111;1990-01-01;7574\nLuis;Gómez;222;1990-01-01;1\n")
	c.expect("success;Batch stored successfully.")
	c.send("2;0\n")
	c.expectPrefix("error;") // agency 2 on agency 1's connection
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	second := startCentral(t, central.Config{Agencies: 2}, withStore(store))
	a1 := dialRaw(t, second.addr)
	a1.send("1;1\nEva;Sosa;333;1990-01-01;7574\n")
	a1.expect("success;Batch stored successfully.")
	a1.send("END")
	a2 := dialRaw(t, second.addr)
	a2.send("2;0\n")
	a2.expect("success;Batch stored successfully.")
	a2.send("END")
	a1.expect("111;333")
	a2.expect("NO_WINNERS")
}
