package agency

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// TestRejectedBatch: the central refuses a batch (validation); the agency
// logs which bet the central names (never the central's words), goes on
// to the end, gets its winners and reports the refusal.
func TestRejectedBatch(t *testing.T) {
	bets := genBets(8, 95)
	lines := linesOf(bets)
	const refusal = "line 3: first name contains ','"
	fake := newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if b.From == 30 {
			return agencytest.Action{Reject: refusal}
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want a *RejectedError", err)
	}
	if rej.Bets != 10 || rej.Batches != 1 || rej.Before != 0 || res.Rejected != 10 || res.RejectedBatches != 1 {
		t.Errorf("refused %+v, result %d/%d: want 10 bets in 1 batch", rej, res.Rejected, res.RejectedBatches)
	}
	kept := append(append([]string{}, lines[:30]...), lines[40:]...)
	checkStoredOnce(t, fake, kept)
	if !equalStrings(res.Winners, winnersOf(kept)) || len(h.reported()) != 1 {
		t.Errorf("winners %v (reported %v), want %v", res.Winners, h.reported(), winnersOf(kept))
	}
	if fake.Conns() != 1 {
		t.Errorf("%d connections: a refusal is no reason to reconnect", fake.Conns())
	}
	logs := h.log.String()
	// Line 3 of the batch from index 30 is the bet at index 32.
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "code=invalid") || !strings.Contains(logs, "bet=32") {
		t.Errorf("no warning naming the code and the bet:\n%s", logs)
	}
	if strings.Contains(logs, "first name") {
		t.Errorf("the warning repeats the central's words:\n%s", logs)
	}
	for _, l := range lines[30:40] {
		if doc := strings.Split(l, ";")[2]; strings.Contains(logs, doc) {
			t.Errorf("the log names a refused bet's document")
		}
	}
	if got := testutil.ToFloat64(h.m.betsRejected); got != 10 {
		t.Errorf("bets_rejected_total = %v, want 10", got)
	}
	if !strings.Contains(err.Error(), "10 bets refused") {
		t.Errorf("summary %q does not count the refused bets", err)
	}

	// A fresh agency after that: the central says so in WELCOME.
	h2 := newHarness(t, testOptions(fake.Addr()), Deps{})
	res2, err := h2.run(t, NewBetsStream(bets))
	if !errors.As(err, &rej) || rej.Before != 10 || rej.Bets != 10 || rej.Batches != 0 {
		t.Fatalf("re-run: err = %v (%+v), want the 10 refused before", err, rej)
	}
	if !equalStrings(res2.Winners, winnersOf(kept)) {
		t.Errorf("re-run winners %v, want %v", res2.Winners, winnersOf(kept))
	}
}

// TestRestartAfterEnd: a fresh agency against a central that already has
// all its bets and its END (lastmark == mark) collects the same winners and
// sends no bet.
func TestRestartAfterEnd(t *testing.T) {
	for _, n := range []int{64, 0} {
		bets := genBets(9, n)
		fake := newFake(t, agencytest.Options{})
		h := newHarness(t, testOptions(fake.Addr()), Deps{})
		first, err := h.run(t, NewBetsStream(bets))
		if err != nil {
			t.Fatal(err)
		}
		sent := len(fake.Batches())
		h2 := newHarness(t, testOptions(fake.Addr()), Deps{})
		again, err := h2.run(t, NewBetsStream(bets))
		if err != nil {
			t.Fatal(err)
		}
		if len(fake.Batches()) != sent {
			t.Errorf("%d bets: the re-run sent %d batches", n, len(fake.Batches())-sent)
		}
		if want := winnersOf(linesOf(bets)); !equalStrings(first.Winners, want) || !equalStrings(again.Winners, want) {
			t.Errorf("%d bets: winners %v then %v, want %v", n, first.Winners, again.Winners, want)
		}
		if got := h2.reported(); len(got) != 1 || got[0].Round != 1 {
			t.Errorf("%d bets: re-run reported %+v, want round 1 once", n, got)
		}
		hs := fake.Hellos()
		if last := hs[len(hs)-1]; last.Round != 1 {
			t.Errorf("%d bets: the re-run's last HELLO named round %d, want 1 (the drawn round of its END)", n, last.Round)
		}
		if n > 0 && !strings.Contains(h2.log.String(), "resuming") {
			t.Errorf("no line saying where it resumed:\n%s", h2.log.String())
		}
	}
}

// TestRestartWhileWaiting: an agency stopped while waiting at the barrier
// comes back, sends END again (no bet) and gets the winners when the draw
// happens.
func TestRestartWhileWaiting(t *testing.T) {
	bets := genBets(10, 50)
	fake := newFake(t, agencytest.Options{Agencies: 2})
	ctx, cancel := context.WithCancel(t.Context())
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	done := make(chan error, 1)
	go func() {
		_, err := h.client.Run(ctx, NewBetsStream(bets))
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, "agency 1 waiting at the barrier", func() bool { return fake.Waiting() == 1 })
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("stopped run: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the fake to see agency 1 go", func() bool { return fake.Waiting() == 0 })
	sent := len(fake.Batches())

	h2 := newHarness(t, testOptions(fake.Addr()), Deps{})
	res := make(chan Result, 1)
	go func() {
		r, err := h2.run(t, NewBetsStream(bets))
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()
	testenv.Eventually(t, 10*time.Second, "agency 1 waiting again", func() bool { return fake.Waiting() == 1 })
	other := testOptions(fake.Addr())
	other.Agency = 2
	oh := newHarness(t, other, Deps{})
	if _, err := oh.run(t, NewBetsStream(nil)); err != nil {
		t.Fatal(err)
	}
	got := <-res
	if !equalStrings(got.Winners, winnersOf(linesOf(bets))) {
		t.Errorf("winners %v, want %v", got.Winners, winnersOf(linesOf(bets)))
	}
	if len(fake.Batches()) != sent {
		t.Errorf("the restarted agency sent %d batches", len(fake.Batches())-sent)
	}
}

// TestLostConnectionWhileWaiting: the connection drops after END; the
// agency reconnects, names the round of its END, and sends END again.
func TestLostConnectionWhileWaiting(t *testing.T) {
	bets := genBets(11, 40)
	ends := 0
	fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action {
		ends++
		if ends == 1 {
			return agencytest.Action{Close: true}
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(res.Winners, winnersOf(linesOf(bets))) {
		t.Errorf("winners %v", res.Winners)
	}
	hs := fake.Hellos()
	if len(hs) != 2 || hs[1].Round != 1 || !hs[1].Welcome.Ended && ends > 2 {
		t.Errorf("HELLOs %+v: want a second one naming round 1", hs)
	}
	if n := len(fake.Ends()); n != 2 {
		t.Errorf("%d ENDs, want 2", n)
	}
	if len(fake.Batches()) != 4 {
		t.Errorf("%d batches: nothing is resent after END", len(fake.Batches()))
	}
}

// TestCentralLostBets: a WELCOME whose mark is below what the central
// acknowledged stops the agency: the store was reset or damaged.
func TestCentralLostBets(t *testing.T) {
	var fake *agencytest.Central
	reset := false
	fake = newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if !reset && b.From == 50 {
			reset = true
			fake.Reset(1)
			return agencytest.Action{Close: true}
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	_, err := h.run(t, NewBetsStream(genBets(12, 100)))
	if err == nil || !strings.Contains(err.Error(), "lost acknowledged bets") {
		t.Fatalf("err = %v, want the lost bets named", err)
	}
	if fake.Conns() != 2 {
		t.Errorf("%d connections, want 2 (the second one's WELCOME stops it)", fake.Conns())
	}
}

// TestCutoffStraddle: a round closes while the agency is sending; the
// bets before the cut are in the earlier round, whose winners the agency
// collects too (HELLO round=1, END).
func TestCutoffStraddle(t *testing.T) {
	bets := genBets(13, 150)
	lines := linesOf(bets)
	var fake *agencytest.Central
	cut := false
	fake = newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if !cut && b.From == 60 {
			cut = true
			fake.CloseRound()
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	if err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake, lines)
	got := h.reported()
	if len(got) != 2 || got[0].Round != 1 || got[1].Round != 2 {
		t.Fatalf("reported %+v, want rounds 1 then 2", got)
	}
	if !equalStrings(got[0].Winners, winnersOf(lines[:60])) || !equalStrings(got[1].Winners, winnersOf(lines[60:])) {
		t.Errorf("round 1 winners %v, round 2 %v; want %v and %v", got[0].Winners, got[1].Winners, winnersOf(lines[:60]), winnersOf(lines[60:]))
	}
	if len(res.Rounds) != 2 || !equalStrings(res.Winners, got[1].Winners) {
		t.Errorf("result rounds %+v", res.Rounds)
	}
	hs := fake.Hellos()
	if last := hs[len(hs)-1]; last.Round != 1 {
		t.Errorf("last HELLO named round %d, want 1", last.Round)
	}
}

// TestRoundsGenerated: three rounds of generated data. Each round's bets
// are the generator's for that round; the stream indexes run on across
// rounds; no batch straddles two rounds; each round's winners are its own.
func TestRoundsGenerated(t *testing.T) {
	const perRound, rounds, seed = 250, 3, 7
	s, err := NewGeneratedStream(1, seed, perRound)
	if err != nil {
		t.Fatal(err)
	}
	// The oracle: round i is the generator seeded seed + i·0x9e3779b97f4a7c15
	// (round 1 is what gendata --seed 7 writes).
	var chunks [][]string
	for i := range rounds {
		g := datagen.New(datagen.Options{Seed: seed + uint64(i)*0x9e3779b97f4a7c15, Agency: 1})
		var c []string
		for range perRound {
			c = append(c, lineOf(g.Next()))
		}
		chunks = append(chunks, c)
	}
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.Rounds, opts.MaxBets = rounds, 40
	h := newHarness(t, opts, Deps{})
	res, err := h.run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, c := range chunks {
		all = append(all, c...)
	}
	checkStoredOnce(t, fake, all)
	for i, st := range fake.Stored(1) {
		if st.Round != i/perRound+1 {
			t.Fatalf("bet %d stored in round %d, want %d", i, st.Round, i/perRound+1)
		}
	}
	next := int64(0)
	for _, b := range fake.Batches() {
		if b.From != next {
			t.Fatalf("batch %q: from=%d, want %d (continuous across rounds)", b.Header, b.From, next)
		}
		if k := b.From / perRound; b.From+int64(b.Count) > (k+1)*perRound {
			t.Fatalf("batch %q straddles rounds %d and %d", b.Header, k+1, k+2)
		}
		next = b.From + int64(b.Count)
	}
	checkBatchHeaders(t, fake)
	if len(res.Rounds) != rounds {
		t.Fatalf("%d rounds reported", len(res.Rounds))
	}
	for i, r := range res.Rounds {
		if r.Round != i+1 || !equalStrings(r.Winners, winnersOf(chunks[i])) {
			t.Errorf("round %+v, want round %d with %v", r, i+1, winnersOf(chunks[i]))
		}
	}
	if hs := fake.Hellos(); hs[0].Total != rounds*perRound {
		t.Errorf("HELLO total=%d, want %d", hs[0].Total, rounds*perRound)
	}

	// A restart in the middle of round 2 resumes there.
	fake2 := newFake(t, agencytest.Options{})
	stopAt := int64(perRound + 90)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts2 := testOptions(fake2.Addr())
	opts2.Rounds, opts2.MaxBets, opts2.InFlight = rounds, 40, 1
	stopping := newHarness(t, opts2, Deps{OnAck: func(time.Duration, int) {
		if fake2.Mark(1) >= stopAt {
			cancel()
		}
	}})
	if _, err := stopping.client.Run(ctx, s); err == nil {
		t.Fatal("the stopped run succeeded")
	}
	mark := fake2.Mark(1)
	h2 := newHarness(t, opts2, Deps{})
	res2, err := h2.run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake2, all)
	if res2.Resumed != mark || len(res2.Rounds) != 2 || res2.Rounds[0].Round != 2 {
		t.Errorf("resumed at %d with rounds %+v; want at %d, rounds 2 and 3", res2.Resumed, res2.Rounds, mark)
	}
}

// TestPacing: with Rate and a fake clock, batch k of a round is due k
// batches' worth of time after the round's first, and a new round starts
// its schedule afresh.
func TestPacing(t *testing.T) {
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.Rate, opts.MaxBets, opts.Rounds = 200, 10, 2
	h := newHarness(t, opts, Deps{})
	if _, err := h.run(t, NewBetsStream(genBets(14, 100))); err != nil {
		t.Fatal(err)
	}
	// 10 batches of 10 bets a round at 200 bets/s: the first at once,
	// then one every 50 ms.
	var want []time.Duration
	for range 2 {
		want = append(want, 0)
		for range 9 {
			want = append(want, 50*time.Millisecond)
		}
	}
	got := h.clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sleep %d = %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

// TestPaceHookLatency: with Deps.Pace, an ack's latency counts from when
// its batch was due, not from its write.
func TestPaceHookLatency(t *testing.T) {
	fake := newFake(t, agencytest.Options{})
	due := time.Now().Add(-time.Hour)
	var sents []int
	var lat []time.Duration
	h := newHarness(t, testOptions(fake.Addr()), Deps{
		Clock: realClock{},
		Pace: func(_ context.Context, sent int) (time.Time, error) {
			sents = append(sents, sent)
			return due, nil
		},
		OnAck: func(d time.Duration, _ int) { lat = append(lat, d) },
	})
	if _, err := h.run(t, NewBetsStream(genBets(15, 35))); err != nil {
		t.Fatal(err)
	}
	if !equalInts(sents, []int{0, 10, 20, 30}) {
		t.Errorf("Pace saw %v bets sent, want 0 10 20 30", sents)
	}
	for _, d := range lat {
		if d < time.Hour {
			t.Errorf("latency %v: not measured from when the batch was due", d)
		}
	}
}

func equalInts(a, b []int) bool {
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

// TestProgressLines: a long paced run says how far it is, and where it
// resumed.
func TestProgressLines(t *testing.T) {
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.Rate, opts.MaxBets = 100, 10
	h := newHarness(t, opts, Deps{})
	if _, err := h.run(t, NewBetsStream(genBets(16, 2000))); err != nil {
		t.Fatal(err)
	}
	// 20 s of fake time: about one line per 5 s.
	n := strings.Count(h.log.String(), "msg=progress")
	if n < 3 || n > 4 {
		t.Errorf("%d progress lines over 20 s, want 3 or 4:\n%s", n, h.log.String())
	}
	if !strings.Contains(h.log.String(), "round_bets=2000") || !strings.Contains(h.log.String(), "bets/s") {
		t.Errorf("progress lines lack the round's total or the rate:\n%s", h.log.String())
	}
}

// TestWaitingLines: an agency held at the barrier says so on a schedule,
// and gives up at the winners timeout.
func TestWaitingLines(t *testing.T) {
	fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action { return agencytest.Action{Hold: true} }})
	opts := testOptions(fake.Addr())
	opts.WinnersTimeout, opts.WaitLogInterval = 300*time.Millisecond, 50*time.Millisecond
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(17, 5)))
	if err == nil || !strings.Contains(err.Error(), "winners timeout") {
		t.Fatalf("err = %v, want the winners timeout", err)
	}
	logs := h.log.String()
	if !strings.Contains(logs, "waiting for the draw of round 1 (up to 300ms)") || !strings.Contains(logs, "still waiting for the draw of round 1") {
		t.Errorf("no waiting lines:\n%s", logs)
	}
	if fake.Conns() != 1 {
		t.Errorf("%d connections: a timeout waiting for the draw is final", fake.Conns())
	}
}

// TestWinnersBegunNotFinished: a central that begins its answer to END
// and stalls is not said to be waiting for other agencies.
func TestWinnersBegunNotFinished(t *testing.T) {
	fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action {
		return agencytest.Action{Hold: true, Begin: "00000100WINN"}
	}})
	opts := testOptions(fake.Addr())
	opts.WinnersTimeout = 300 * time.Millisecond
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(21, 5)))
	if err == nil || !strings.Contains(err.Error(), "began its answer") || !strings.Contains(err.Error(), "100 bytes") {
		t.Fatalf("err = %v, want an answer begun and not finished", err)
	}
	if strings.Contains(err.Error(), "waiting for agencies") {
		t.Errorf("err = %v blames other agencies", err)
	}
}

// TestDefaultServerOutsideCompose: the default address's host is the
// compose service name; outside compose it does not resolve, and the
// agency says so at once instead of retrying.
func TestDefaultServerOutsideCompose(t *testing.T) {
	if _, err := (&net.Resolver{}).LookupHost(t.Context(), "server"); err == nil {
		t.Skip(`"server" resolves here (inside compose?)`)
	}
	opts := testOptions(DefaultServer)
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(18, 3)))
	if err == nil || !strings.Contains(err.Error(), "--server 127.0.0.1:12345") || !strings.Contains(err.Error(), "Docker Compose") {
		t.Fatalf("err = %v, want the compose hint", err)
	}
	if len(h.clock.Sleeps()) != 0 {
		t.Errorf("retried %d times", len(h.clock.Sleeps()))
	}
}

var (
	_ = lottery.Bet{}
	_ = wire.Version
)

// TestEndThenDropBacksOff: a central that takes END and drops the
// connection every time renews the agency's budget (it is back at the
// barrier) but not its backoff, which keeps growing until the winners
// timeout ends the wait.
func TestEndThenDropBacksOff(t *testing.T) {
	fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action { return agencytest.Action{Close: true} }})
	opts := testOptions(fake.Addr())
	opts.RetryBase, opts.RetryMax, opts.RetryBudget = time.Millisecond, time.Hour, 10*time.Millisecond
	opts.WinnersTimeout = 300 * time.Millisecond
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(19, 20)))
	if err == nil || !strings.Contains(err.Error(), "winners timeout") {
		t.Fatalf("err = %v, want the winners timeout (not the 10 ms budget)", err)
	}
	sleeps := h.clock.Sleeps()
	if len(sleeps) < 5 {
		t.Fatalf("only %d reconnects in 300 ms", len(sleeps))
	}
	b := backoff{base: time.Millisecond, max: time.Hour}
	longest := time.Duration(0)
	for i, d := range sleeps {
		if d > b.bound(i) {
			t.Fatalf("backoff %d = %v over its bound %v", i, d, b.bound(i))
		}
		longest = max(longest, d)
	}
	if longest <= time.Millisecond {
		t.Errorf("backoffs %v never grew past the base", sleeps)
	}
}
