package loadtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/datagen"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	// Every value falls in a bucket whose range holds it, and buckets are
	// ordered and tight (relative width under 1/64).
	values := []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 4095, 4096, 1 << 20, 1<<40 + 12345, math.MaxInt64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Int64N(1<<45))
	}
	for _, v := range values {
		b := bucketOf(v)
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, b, lo, hi)
		}
		if b >= numBuckets {
			t.Fatalf("value %d maps past the last bucket", v)
		}
		if v >= 128 && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/64 of its values", b, lo, hi)
		}
	}
	for b := 1; b < 40*subCount; b++ {
		_, prevHi := bucketRange(b - 1)
		lo, _ := bucketRange(b)
		if lo != prevHi+1 {
			t.Fatalf("gap or overlap between buckets %d and %d: %d then %d", b-1, b, prevHi, lo)
		}
	}
}

func TestPercentilesAgainstSortedValues(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
		n    int
	}{
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }, 10000},
		{"exponential mean 2ms", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * 2e6) }, 20000},
		{"bimodal", func(r *rand.Rand) time.Duration {
			if r.IntN(100) < 2 {
				return time.Second + time.Duration(r.Int64N(int64(time.Second)))
			}
			return 100*time.Microsecond + time.Duration(r.Int64N(int64(time.Millisecond)))
		}, 5000},
		{"one value", func(r *rand.Rand) time.Duration { return 1234567 }, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			h := NewHistogram()
			vals := make([]time.Duration, tc.n)
			var sum time.Duration
			for i := range vals {
				vals[i] = tc.gen(r)
				sum += vals[i]
				h.Record(vals[i])
			}
			slices.Sort(vals)
			s := h.Snapshot()
			exact := func(p float64) time.Duration {
				return vals[int(math.Ceil(p*float64(len(vals))))-1]
			}
			check := func(name string, got, want time.Duration) {
				t.Helper()
				// Never under the exact value, and over it by at most a
				// bucket's width (1/64).
				if got < want || float64(got-want) > float64(want)/64+1 {
					t.Errorf("%s = %v, exact %v", name, got, want)
				}
			}
			check("p50", s.P50, exact(0.50))
			check("p90", s.P90, exact(0.90))
			check("p95", s.P95, exact(0.95))
			check("p99", s.P99, exact(0.99))
			check("p99.9", s.P999, exact(0.999))
			if s.Min != vals[0] || s.Max != vals[len(vals)-1] {
				t.Errorf("min/max = %v/%v, want %v/%v", s.Min, s.Max, vals[0], vals[len(vals)-1])
			}
			if want := sum / time.Duration(len(vals)); s.Mean != want {
				t.Errorf("mean = %v, want %v", s.Mean, want)
			}
			if s.Count != int64(tc.n) {
				t.Errorf("count = %d, want %d", s.Count, tc.n)
			}
		})
	}
	if s := NewHistogram().Snapshot(); s != (Snapshot{}) {
		t.Errorf("empty histogram snapshot = %+v", s)
	}
}

func TestRates(t *testing.T) {
	for _, tc := range []struct {
		count int64
		d     time.Duration
		want  float64
	}{
		{1000, time.Second, 1000},
		{1500, 500 * time.Millisecond, 3000},
		{7, 0, 0},
		{0, time.Second, 0},
	} {
		if got := rate(tc.count, tc.d); got != tc.want {
			t.Errorf("rate(%d, %v) = %v, want %v", tc.count, tc.d, got, tc.want)
		}
	}
}

func TestPacerSchedulesFromBetsSent(t *testing.T) {
	// 10 agencies at 10,000 bets/s: 1,000 bets/s each, one bet per ms.
	p := newPacer(Config{Agencies: 10, Rate: 10000, Batch: 100}, 1)
	ctx := context.Background()
	first, err := p.wait(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A call for bet 0 done in the past does not block and reports the
	// schedule, not the time of the call.
	for _, sent := range []int{100, 250, 0} {
		due, _ := p.wait(ctx, sent)
		if want := first.Add(time.Duration(sent) * time.Millisecond); !due.Equal(want) {
			t.Errorf("batch from bet %d due %v after start, want %v", sent, due.Sub(first), want.Sub(first))
		}
	}
	// Agencies are spread over one batch's time.
	q := newPacer(Config{Agencies: 10, Rate: 10000, Batch: 100}, 6)
	if q.phase != 50*time.Millisecond {
		t.Errorf("agency 6 of 10 phase = %v, want 50ms (half of a 100ms batch)", q.phase)
	}
}

// TestPacedTimedRunStopsAtItsDuration: with --rate and --duration, an
// agency offers only the bets due before the run ends. At 2 bets/s an
// agency's next batch is due long after a 1 s run; the run must not wait
// for it (it did: a 3 s run lasted 91 s and sent 13 times the bets due).
// The bound comes from the flags alone: rate × duration, plus one bet per
// agency for rounding; and a batch holds at most one second of an agency's
// bets (2 here), so there are at least half as many batches as bets.
func TestPacedTimedRunStopsAtItsDuration(t *testing.T) {
	const agencies, rate = 10, 20.0
	const duration = time.Second
	for _, prebuilt := range []bool{false, true} {
		t.Run(map[bool]string{false: "agency", true: "prebuilt"}[prebuilt], func(t *testing.T) {
			// Before the fix the run waited about 90 s for the second
			// batches: the context turns that into a failure, not a hang.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			rep, err := Run(ctx, Config{
				Agencies: agencies, Duration: duration, Rate: rate, Batch: 1000, InFlight: 4,
				Prebuilt: prebuilt, StoreDir: t.TempDir(), Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed || rep.AgenciesOK != agencies {
				t.Fatalf("failed=%v, %d of %d agencies ok", rep.Failed, rep.AgenciesOK, agencies)
			}
			if max := int64(rate*duration.Seconds()) + agencies; rep.BetsAcked > max || rep.BetsAcked < agencies {
				t.Errorf("%d bets acked, want between %d (one per agency) and %d (%g bets/s for %v, plus one per agency)",
					rep.BetsAcked, agencies, max, rate, duration)
			}
			if perAgencySecond := int64(rate / agencies); rep.BatchesAcked*perAgencySecond < rep.BetsAcked {
				t.Errorf("%d bets in %d batches: a paced batch holds more than one second (%d bets) of its agency's bets",
					rep.BetsAcked, rep.BatchesAcked, perAgencySecond)
			}
		})
	}
}

// TestSmoke is the bounded run CI makes: 200 agencies × 2,000 bets against
// an in-process central, which must pass its own correctness checks.
func TestSmoke(t *testing.T) {
	agencies, bets := 200, 2000
	if testing.Short() {
		agencies, bets = 20, 200
	}
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		Agencies: agencies, Bets: bets, Batch: 100, InFlight: 4, StoreDir: t.TempDir(),
		Progress: &progress, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	if rep.Failed {
		t.Fatalf("correctness check failed:\n%s", text.String())
	}
	if rep.BetsAcked != int64(agencies*bets) {
		t.Errorf("bets acked = %d, want %d", rep.BetsAcked, agencies*bets)
	}
	if rep.AgenciesOK != agencies || rep.SuccessRatio != 1 {
		t.Errorf("agencies ok = %d, success ratio %v", rep.AgenciesOK, rep.SuccessRatio)
	}
	if len(rep.Checks) != 3 {
		t.Errorf("want 3 checks (winners, finished, store), got %+v", rep.Checks)
	}
	if rep.AckLatency.Count != rep.BatchesAcked {
		t.Errorf("latency samples %d, batches %d", rep.AckLatency.Count, rep.BatchesAcked)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.BetsAcked != rep.BetsAcked {
		t.Errorf("JSON report does not round-trip: %v", err)
	}
	if !strings.Contains(text.String(), "Check         ok: store holds exactly the acknowledged bets") {
		t.Errorf("text report lacks the store check:\n%s", text.String())
	}
}

// TestWarmupLeavesEarlyBatchesOut: batches due within the warm-up count
// for throughput and correctness, not for latency.
func TestWarmupLeavesEarlyBatchesOut(t *testing.T) {
	for _, tc := range []struct {
		warmup      time.Duration
		wantSamples bool
	}{
		{0, true},
		{time.Hour, false},
	} {
		rep, err := Run(t.Context(), Config{Agencies: 3, Bets: 300, Batch: 50, StoreDir: t.TempDir(), Warmup: tc.warmup})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed || rep.BetsAcked != 900 {
			t.Fatalf("warm-up %v: failed=%v, %d bets acked", tc.warmup, rep.Failed, rep.BetsAcked)
		}
		if got := rep.AckLatency.Count > 0; got != tc.wantSamples {
			t.Errorf("warm-up %v: %d latency samples of %d batches", tc.warmup, rep.AckLatency.Count, rep.BatchesAcked)
		}
	}
}

// TestRestartMode kills and reopens the in-process central during a paced
// run: every agency must finish with its own winners, and the store must
// hold every agency's stream exactly once (the checks the report makes).
func TestRestartMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"generated", Config{Agencies: 20, Bets: 3000}},
		// Each whole file, resumed at the marks: before, the agencies sent
		// generated bets instead, and the winners' check failed.
		{"data files", Config{Agencies: 5, DataDir: writeDataDir(t, 5, 3000), Bets: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Batch, cfg.InFlight, cfg.Rate, cfg.StoreDir = 10, 8, 30000, t.TempDir()
			cfg.Restarts, cfg.RestartEvery, cfg.Timeout = 3, 150*time.Millisecond, time.Minute
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			text := reportText(rep)
			t.Logf("\n%s", text)
			if rep.Failed || rep.Restarts != 3 || rep.AgenciesOK != cfg.Agencies {
				t.Fatalf("restart run: failed=%v restarts=%d agencies ok=%d\n%s", rep.Failed, rep.Restarts, rep.AgenciesOK, text)
			}
		})
	}
}

// TestRestartModeDataDirNeedsWholeFiles: --restarts resumes and checks each
// whole file, so a prefix (--bets N) of the files is refused, saying so.
func TestRestartModeDataDirNeedsWholeFiles(t *testing.T) {
	_, err := Run(t.Context(), Config{Agencies: 2, DataDir: writeDataDir(t, 2, 100), Bets: 50, Restarts: 1})
	if err == nil || !strings.Contains(err.Error(), "--bets 0") {
		t.Fatalf("err = %v, want it to ask for --bets 0", err)
	}
}

// writeDataDir writes agency-1..n.csv of bets generated bets each (datagen,
// seed 11) to a new directory.
func writeDataDir(t *testing.T, n, bets int) string {
	t.Helper()
	dir := t.TempDir()
	for a := 1; a <= n; a++ {
		if _, err := datagen.WriteFile(filepath.Join(dir, "agency-"+strconv.Itoa(a)+".csv"), datagen.Options{Seed: 11, Agency: a}, bets); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestUsedStoreRefused: the load tool checks a store against what it sent,
// so it refuses one it did not start empty, saying why.
func TestUsedStoreRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(t.Context(), Config{Agencies: 1, Bets: 10, StoreDir: dir}); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), Config{Agencies: 1, Bets: 10, StoreDir: dir})
	if err == nil || !strings.Contains(err.Error(), "earlier run") {
		t.Fatalf("a second run on the same store: %v, want a refusal naming the earlier run", err)
	}
}

// TestTLSMode: agencies over mutual TLS, each with its own certificate.
func TestTLSMode(t *testing.T) {
	rep, err := Run(t.Context(), Config{Agencies: 5, Bets: 500, Batch: 100, InFlight: 4, StoreDir: t.TempDir(), TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed || rep.AgenciesOK != 5 || rep.BetsAcked != 2500 {
		var text bytes.Buffer
		rep.WriteText(&text)
		t.Fatalf("TLS run failed:\n%s", text.String())
	}
}

// TestPrebuiltMode: raw connections sending prebuilt frames; the checks
// still hold (winners of what was sent, the store holds it all).
func TestPrebuiltMode(t *testing.T) {
	rep, err := Run(t.Context(), Config{Agencies: 10, Bets: 3000, Batch: 1000, InFlight: 4, StoreDir: t.TempDir(), Prebuilt: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed || rep.AgenciesOK != 10 || rep.BetsAcked < 30000 {
		var text bytes.Buffer
		rep.WriteText(&text)
		t.Fatalf("prebuilt run failed:\n%s", text.String())
	}
}

// TestFirstID: simulated agencies take ids from FirstID on, beside other agencies of the same
// central: two load runs (agencies 1..6 and 7..9) against one central for 9, whose store holds
// each agency's bets under its id (read back with encoding/csv).
func TestFirstID(t *testing.T) {
	dir := t.TempDir()
	own := newInproc(Config{Agencies: 9}, filepath.Join(dir, "bets.csv"))
	if err := own.start(); err != nil {
		t.Fatal(err)
	}
	stop := own.stop
	defer stop()
	addr := own.address()
	type result struct {
		rep *Report
		err error
	}
	results := make(chan result, 2)
	for _, c := range []Config{{Agencies: 6}, {Agencies: 3, FirstID: 7}} {
		go func() {
			c.Addr, c.Bets, c.Batch, c.Timeout = addr, 50, 10, time.Minute
			rep, err := Run(t.Context(), c)
			results <- result{rep, err}
		}()
	}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.rep.Failed {
			t.Errorf("correctness check failed:\n%s", reportText(r.rep))
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, filepath.Join(dir, "bets.csv"))
	per := map[string]int{}
	for _, r := range rows {
		per[r[0]]++
	}
	want := map[string]int{}
	for i := 1; i <= 9; i++ {
		want[strconv.Itoa(i)] = 50
	}
	if !maps.Equal(per, want) {
		t.Errorf("bets per agency in the store %v, want %v", per, want)
	}
	for _, bad := range []Config{{Agencies: 1, FirstID: -1, Bets: 1}, {Agencies: 1, FirstID: 2, Bets: 1}} {
		if _, err := Run(t.Context(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestRoundAwareWinners: against a central that draws a number per round
// (continuous rounds), each agency's winners are checked against its own
// bets playing that round's number.
func TestRoundAwareWinners(t *testing.T) {
	own := newInproc(Config{Agencies: 4}, filepath.Join(t.TempDir(), "bets.csv"))
	own.cfg.Rounds, own.cfg.RoundCutoff = -1, time.Minute
	if err := own.start(); err != nil {
		t.Fatal(err)
	}
	defer own.stop()
	rep, err := Run(t.Context(), Config{Agencies: 4, Bets: 20000, Batch: 100, InFlight: 8, Addr: own.address()})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if rep.Failed {
		t.Fatalf("round-aware run failed:\n%s", text.String())
	}
}

// TestExternalCentralRestarted: a run against a central of --addr with a
// fixed number of bets survives that central being killed and reopened on
// its store mid-run (it used to fail every agency: "this stream cannot be
// reopened"), and the store then holds each agency's bets once, read back
// with encoding/csv.
func TestExternalCentralRestarted(t *testing.T) {
	const agencies, bets = 4, 6000
	for _, data := range []string{"", writeDataDir(t, agencies, bets)} {
		name := "generated"
		if data != "" {
			name = "data files"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			own := newInproc(Config{Agencies: agencies}, path)
			if err := own.start(); err != nil {
				t.Fatal(err)
			}
			defer own.stop()
			type result struct {
				rep *Report
				err error
			}
			done := make(chan result, 1)
			cfg := Config{Agencies: agencies, Bets: bets, Batch: 50, InFlight: 4, Rate: 16000, Addr: own.address(), Timeout: time.Minute}
			if data != "" {
				cfg.DataDir, cfg.Bets = data, 0 // each whole file
			}
			go func() {
				// Paced so that the run lasts about a second and a half.
				rep, err := Run(t.Context(), cfg)
				done <- result{rep, err}
			}()
			testenv.Eventually(t, 30*time.Second, "a quarter of the bets to be stored", func() bool {
				st, err := os.Stat(path)
				return err == nil && st.Size() > agencies*bets*40/4
			})
			if err := own.kill(); err != nil {
				t.Fatal(err)
			}
			if err := own.start(); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.rep.Failed {
				t.Fatalf("the run failed across the restart:\n%s", reportText(r.rep))
			}
			if err := own.stop(); err != nil {
				t.Fatal(err)
			}
			per, seen := map[string][]string{}, map[string]bool{}
			for _, row := range readRows(t, path) {
				key := strings.Join(row, ",")
				if seen[key] {
					t.Fatalf("row stored twice: agency %s", row[0])
				}
				seen[key] = true
				per[row[0]] = append(per[row[0]], strings.Join(row[1:], ","))
			}
			for a := 1; a <= agencies; a++ {
				got := per[strconv.Itoa(a)]
				if len(got) != bets {
					t.Errorf("agency %d: %d bets stored, want %d", a, len(got), bets)
					continue
				}
				if data == "" {
					continue
				}
				// The file's bets, read with encoding/csv, in order.
				for i, rec := range readRows(t, filepath.Join(data, "agency-"+strconv.Itoa(a)+".csv")) {
					if want := strings.Join(rec, ","); got[i] != want {
						t.Fatalf("agency %d: stored bet %d is not the file's bet %d", a, i+1, i+1)
					}
				}
			}
		})
	}
}

// readRows reads a bets file back with encoding/csv, the oracle's reader.
func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// reportText is a report as the load tool prints it.
func reportText(rep *Report) string {
	var text bytes.Buffer
	rep.WriteText(&text)
	return text.String()
}
