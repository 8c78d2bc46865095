package agency

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
)

// Every test leaves no goroutine behind: ack readers, wait loggers and the
// fake central's connections all end with the run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock moves only when the client sleeps: pacing and backoff are
// then exact and instant.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// genBets is n valid bets of agency 1, about one in twenty winning, from
// the data generator (its own tests vouch for it).
func genBets(seed uint64, n int) []lottery.Bet {
	g := datagen.New(datagen.Options{Seed: seed, Agency: 1, WinnerRatio: 0.05})
	bets := make([]lottery.Bet, n)
	for i := range bets {
		bets[i] = g.Next()
	}
	return bets
}

// lineOf is a bet's wire line without its newline, written here with fmt.
func lineOf(b lottery.Bet) string {
	return fmt.Sprintf("%s;%s;%s;%s;%d", b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
}

func linesOf(bets []lottery.Bet) []string {
	out := make([]string, len(bets))
	for i, b := range bets {
		out[i] = lineOf(b)
	}
	return out
}

// winnersOf is the DNIs of the lines playing 7574, in order: the oracle.
func winnersOf(lines []string) []string {
	w := []string{}
	for _, l := range lines {
		f := strings.Split(l, ";")
		if f[4] == "7574" {
			w = append(w, f[2])
		}
	}
	return w
}

// storedLines is the fake's stored bets of agency 1.
func storedLines(c *agencytest.Central) []string {
	var out []string
	for _, s := range c.Stored(1) {
		out = append(out, s.Line)
	}
	return out
}

func newFake(t *testing.T, opts agencytest.Options) *agencytest.Central {
	t.Helper()
	c, err := agencytest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// harness is a client under test with its observable outputs.
type harness struct {
	client  *Client
	reg     *prometheus.Registry
	m       *Metrics
	clock   *fakeClock
	log     *testenv.Buffer
	mu      sync.Mutex
	winners []RoundWinners
}

func testOptions(addr string) Options {
	return Options{
		Agency: 1, Address: addr, MaxBets: 10, InFlight: 4,
		Timeout: 10 * time.Second, WinnersTimeout: 20 * time.Second,
		RetryBase: time.Millisecond, RetryMax: 8 * time.Millisecond, RetryBudget: time.Minute,
	}
}

func newHarness(t *testing.T, opts Options, deps Deps) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), clock: newFakeClock(), log: &testenv.Buffer{}}
	h.m = NewMetrics(h.reg)
	deps.Metrics = h.m
	deps.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if deps.Clock == nil {
		deps.Clock = h.clock
	}
	deps.OnWinners = func(w RoundWinners) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.winners = append(h.winners, w)
	}
	c, err := NewClient(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	return h
}

func (h *harness) run(t *testing.T, s Stream) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	return h.client.Run(ctx, s)
}

func (h *harness) retries() float64 { return testutil.ToFloat64(h.m.retries) }

func (h *harness) reported() []RoundWinners {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]RoundWinners(nil), h.winners...)
}

// checkStoredOnce: the fake holds exactly want, each bet once, in order.
func checkStoredOnce(t *testing.T, c *agencytest.Central, want []string) {
	t.Helper()
	got := storedLines(c)
	if len(got) != len(want) {
		t.Fatalf("the central stored %d bets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stored bet %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
