package agency

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/wire"
)

// checkBatchHeaders: on every connection the batches are contiguous and
// start at the WELCOME's mark; each carries from=, round= (the WELCOME's)
// and seq= counting from 1 on its connection.
func checkBatchHeaders(t *testing.T, c *agencytest.Central) {
	t.Helper()
	welcome := map[int]wire.Welcome{}
	for _, h := range c.Hellos() {
		welcome[h.Conn] = h.Welcome
	}
	next := map[int]int64{}
	seq := map[int]uint64{}
	for _, b := range c.Batches() {
		w, ok := welcome[b.Conn]
		if !ok {
			t.Fatalf("batch %q on connection %d, which sent no HELLO", b.Header, b.Conn)
		}
		if b.From < 0 || b.Round != w.Round || b.Seq != seq[b.Conn]+1 {
			t.Fatalf("batch %q on connection %d: want from=, round=%d, seq=%d", b.Header, b.Conn, w.Round, seq[b.Conn]+1)
		}
		want, ok := next[b.Conn]
		if !ok {
			want = w.Mark
		}
		if b.From != want {
			t.Fatalf("connection %d: batch %q starts at %d, want %d (the WELCOME's mark %d, then contiguous)", b.Conn, b.Header, b.From, want, w.Mark)
		}
		next[b.Conn] = b.From + int64(b.Count)
		seq[b.Conn] = b.Seq
	}
}

func TestRunOneRound(t *testing.T) {
	bets := genBets(1, 237)
	want := linesOf(bets)
	fake := newFake(t, agencytest.Options{})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	if err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake, want)
	checkBatchHeaders(t, fake)
	if w := winnersOf(want); !equalStrings(res.Winners, w) || len(res.Rounds) != 1 || res.Rounds[0].Round != 1 || res.Rounds[0].Number != 7574 {
		t.Fatalf("result %+v, want round 1 with winners %v", res.Rounds, w)
	}
	if res.Bets != len(bets) || res.Batches != 24 || res.Resumed != 0 {
		t.Errorf("bets %d batches %d resumed %d; want %d, 24, 0", res.Bets, res.Batches, res.Resumed, len(bets))
	}
	if got := h.reported(); len(got) != 1 || !equalStrings(got[0].Winners, res.Winners) {
		t.Errorf("OnWinners got %+v", got)
	}
	if r := h.retries(); r != 0 {
		t.Errorf("retries_total = %v on a clean run", r)
	}
	if hs := fake.Hellos(); len(hs) != 1 || hs[0].Fingerprint != NewBetsStream(bets).Fingerprint() || hs[0].Total != int64(len(bets)) || hs[0].Round != 0 {
		t.Errorf("HELLOs %+v", hs)
	}
}

// TestResumeAfterDropMidWindow: the central stores a batch, then the
// connection dies with its ack (and those of the batches in flight behind
// it). The agency reconnects, resumes at the WELCOME's mark, resends only
// what the central does not have, and every bet ends up stored once.
func TestResumeAfterDropMidWindow(t *testing.T) {
	tests := []struct {
		name     string
		inFlight int
		dropAt   int64 // the batch starting at this index is stored, then the connection drops
		drops    int   // how many times (each on a later connection)
	}{
		{"stop and wait", 1, 30, 1},
		{"window of 4", 4, 30, 1},
		{"window of 16, first batch", 16, 0, 1},
		{"window of 8, three drops", 8, 50, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bets := genBets(2, 300)
			want := linesOf(bets)
			dropped := 0
			fake := newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
				if dropped < tt.drops && b.From == tt.dropAt+int64(dropped)*40 {
					dropped++
					return agencytest.Action{Drop: true}
				}
				return agencytest.Action{}
			}})
			opts := testOptions(fake.Addr())
			opts.InFlight = tt.inFlight
			h := newHarness(t, opts, Deps{})
			res, err := h.run(t, NewBetsStream(bets))
			if err != nil {
				t.Fatal(err)
			}
			checkStoredOnce(t, fake, want)
			checkBatchHeaders(t, fake)
			if res.Bets != len(bets) || testutil.ToFloat64(h.m.betsAcked) != float64(len(bets)) {
				t.Errorf("confirmed %d bets (metric %v), want %d each once", res.Bets, testutil.ToFloat64(h.m.betsAcked), len(bets))
			}
			if !equalStrings(res.Winners, winnersOf(want)) {
				t.Errorf("winners %v, want %v", res.Winners, winnersOf(want))
			}
			testenv.Eventually(t, 10*time.Second, "the fake to finish with every connection", func() bool { return fake.Live() == 0 })
			// Resends, from what the fake received: a batch that starts
			// below the end of what an earlier connection carried (the
			// agency opens one connection after the other; the fake may
			// record a dropped connection's last frames late).
			sentEnd := map[int]int64{} // connection → end of its furthest batch
			for _, b := range fake.Batches() {
				sentEnd[b.Conn] = max(sentEnd[b.Conn], b.From+int64(b.Count))
			}
			resent := 0
			for _, b := range fake.Batches() {
				before := int64(0)
				for conn, end := range sentEnd {
					if conn < b.Conn {
						before = max(before, end)
					}
				}
				if b.From < before {
					resent++
				}
			}
			if got, want := h.retries(), float64(tt.drops+resent); got != want {
				t.Errorf("retries_total = %v, want %d reconnects + %d resent batches", got, tt.drops, resent)
			}
			if fake.Conns() != tt.drops+1 {
				t.Errorf("%d connections, want %d", fake.Conns(), tt.drops+1)
			}
		})
	}
}

// TestResumeAfterAbruptClose: the central closes the connection before
// storing the batch (a crash): unacknowledged batches may or may not have
// reached it; either way each bet is stored once.
func TestResumeAfterAbruptClose(t *testing.T) {
	bets := genBets(3, 200)
	closed := false
	fake := newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if !closed && b.From == 70 {
			closed = true
			return agencytest.Action{Close: true}
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	if _, err := h.run(t, NewBetsStream(bets)); err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake, linesOf(bets))
	checkBatchHeaders(t, fake)
	if h.retries() < 1 {
		t.Errorf("retries_total = %v, want at least the reconnect", h.retries())
	}
}

// TestRetryableCodes: codes that clear by themselves, at HELLO or on a
// batch, make the agency back off, reconnect and finish.
func TestRetryableCodes(t *testing.T) {
	tests := []struct {
		name  string
		hello string // answered to the first HELLOs
		batch string // answered to the first batch starting at 50
		times int
	}{
		{name: "busy at HELLO", hello: "error;busy: central at its connection limit", times: 3},
		{name: "connected at HELLO", hello: "error;connected: agency 1 already has a live connection", times: 2},
		{name: "shutting_down at HELLO", hello: "error;shutting_down: central is stopping", times: 1},
		{name: "shutting_down on a batch", batch: "error;shutting_down: central is stopping", times: 1},
		{name: "store_failed on a batch", batch: "error;store_failed: write failed: nothing was stored", times: 2},
		{name: "conflict on a batch", batch: "error;conflict: agency mark moved while the batch was built", times: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bets := genBets(4, 120)
			hellos, batches := 0, 0
			fake := newFake(t, agencytest.Options{
				OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
					if tt.hello != "" && hellos < tt.times {
						hellos++
						return agencytest.Action{Reply: tt.hello, Close: true}
					}
					return agencytest.Action{}
				},
				OnBatch: func(b agencytest.Batch) agencytest.Action {
					if tt.batch != "" && b.From == 50 && batches < tt.times {
						batches++
						return agencytest.Action{Reply: tt.batch, Close: true}
					}
					return agencytest.Action{}
				},
			})
			h := newHarness(t, testOptions(fake.Addr()), Deps{})
			res, err := h.run(t, NewBetsStream(bets))
			if err != nil {
				t.Fatal(err)
			}
			checkStoredOnce(t, fake, linesOf(bets))
			if !equalStrings(res.Winners, winnersOf(linesOf(bets))) {
				t.Errorf("winners %v", res.Winners)
			}
			if fake.Conns() != tt.times+1 {
				t.Errorf("%d connections, want %d", fake.Conns(), tt.times+1)
			}
			if h.retries() < float64(tt.times) {
				t.Errorf("retries_total = %v, want at least %d reconnects", h.retries(), tt.times)
			}
			// Each reconnect waited a backoff drawn within its bound.
			sleeps := h.clock.Sleeps()
			if len(sleeps) != tt.times {
				t.Fatalf("slept %v, want %d backoffs", sleeps, tt.times)
			}
			b := backoff{base: time.Millisecond, max: 8 * time.Millisecond}
			for i, d := range sleeps {
				if d < 0 || d > b.bound(i) {
					t.Errorf("backoff %d = %v, outside [0, %v]", i, d, b.bound(i))
				}
			}
		})
	}
}

// TestRetryBudgetExhausted: a central that never lets the agency in makes
// it give up once it has failed for the budget, with a clear error.
func TestRetryBudgetExhausted(t *testing.T) {
	fake := newFake(t, agencytest.Options{OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
		return agencytest.Action{Reply: "error;busy: central at its connection limit", Close: true}
	}})
	opts := testOptions(fake.Addr())
	opts.RetryBase, opts.RetryMax, opts.RetryBudget = 100*time.Millisecond, 400*time.Millisecond, 3*time.Second
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(5, 10)))
	if err == nil {
		t.Fatal("run succeeded against a central that is always busy")
	}
	for _, s := range []string{"gave up", "retry budget 3s", "busy"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != reasonErrorAck {
		t.Errorf("error %v: want an *Error with reason %q", err, reasonErrorAck)
	}
	// The fake clock moved only by the backoffs: the agency gave up at the
	// first failure at or past 3 s after the first one, not before.
	sleeps := h.clock.Sleeps()
	var total time.Duration
	for _, d := range sleeps {
		total += d
	}
	if total < 3*time.Second || total-sleeps[len(sleeps)-1] >= 3*time.Second {
		t.Errorf("backoffs add up to %v (last %v): want the budget crossed by the last one", total, sleeps[len(sleeps)-1])
	}
	if fake.Conns() != len(sleeps)+1 {
		t.Errorf("%d connections for %d backoffs", fake.Conns(), len(sleeps))
	}
}

// TestFatalCodes: codes that do not clear by themselves stop the agency at
// once, saying what they mean.
func TestFatalCodes(t *testing.T) {
	tests := []struct {
		name    string
		hello   string
		batch   string
		wantErr []string
		notErr  string // the central's words, never repeated
	}{
		{name: "seed server", hello: "error;Invalid batch format", wantErr: []string{"--protocol=seed", "without a code (20 bytes)"}, notErr: "Invalid batch format"},
		{name: "seed-like message with a colon", hello: "error;line 1: agency \"HELLO\" is not a number", wantErr: []string{"--protocol=seed"}},
		{name: "fingerprint", hello: "error;fingerprint: agency 1 sent another stream before", wantErr: []string{"fingerprint", "same data file"}},
		{name: "version", hello: "error;version: session version 1 is not spoken here", wantErr: []string{"version", "upgrade"}},
		{name: "closed on a batch", batch: "error;closed: the draw has been held", wantErr: []string{"closed", "no more bets"}},
		{name: "ended on a batch", batch: "error;ended: END already sent", wantErr: []string{"ended", "same id"}},
		{name: "uncoded on a batch", batch: "error;something odd", wantErr: []string{"no code", "13-byte message"}, notErr: "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, agencytest.Options{
				OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
					if tt.hello != "" {
						return agencytest.Action{Reply: tt.hello}
					}
					return agencytest.Action{}
				},
				OnBatch: func(b agencytest.Batch) agencytest.Action {
					if tt.batch != "" && b.From == 20 {
						return agencytest.Action{Reply: tt.batch}
					}
					return agencytest.Action{}
				},
			})
			h := newHarness(t, testOptions(fake.Addr()), Deps{})
			_, err := h.run(t, NewBetsStream(genBets(6, 50)))
			if err == nil {
				t.Fatal("run succeeded")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if tt.notErr != "" && (strings.Contains(err.Error(), tt.notErr) || strings.Contains(h.log.String(), tt.notErr)) {
				t.Errorf("error %q or the log repeats the central's words %q", err, tt.notErr)
			}
			if fake.Conns() != 1 || len(h.clock.Sleeps()) != 0 {
				t.Errorf("%d connections, backoffs %v: want one attempt", fake.Conns(), h.clock.Sleeps())
			}
		})
	}
}

var _ = fmt.Sprint
