package agency

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/wire"
)

// The tests in this file play a central that lies or misbehaves: the
// agency must neither trust what it says about winners nor let it grow
// the agency's memory, its connections or its wait without bound.

// TestWinnersCheckedAgainstTheFile: whatever winners a central sends, the
// agency reports only DNIs of its own chunk's bets that play the round's
// number; anything else stops the run, and nothing is reported.
func TestWinnersCheckedAgainstTheFile(t *testing.T) {
	bets := genBets(21, 80)
	lines := linesOf(bets)
	win := winnersOf(lines)
	if len(win) == 0 {
		t.Fatal("the generated bets have no winner: pick another seed")
	}
	loser := ""
	for _, l := range lines {
		if f := strings.Split(l, ";"); f[4] != "7574" && !strings.Contains(";"+strings.Join(win, ";")+";", ";"+f[2]+";") {
			loser = f[2]
			break
		}
	}
	v1 := func(list string) string { return "WINNERS;round=1;number=7574\n" + list }
	cases := []struct {
		name, reply string
		ok          bool
	}{
		{"the true winners", v1(strings.Join(win, ";")), true},
		{"no winners", v1("NO_WINNERS"), true},
		{"a DNI not in the file", v1("99999999"), false},
		{"a DNI whose bets do not play the number", v1(loser), false},
		{"a winner twice", v1(win[0] + ";" + strings.Join(win, ";")), false},
		{"another number than the bets'", "WINNERS;round=1;number=1234\n" + strings.Join(win, ";"), false},
		{"seed format, a DNI not in the file", "99999999", false},
		{"seed format, the true winners", strings.Join(win, ";"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action {
				return agencytest.Action{Reply: tc.reply, Close: true}
			}})
			opts := testOptions(fake.Addr())
			opts.RetryBudget = 0
			h := newHarness(t, opts, Deps{})
			_, err := h.run(t, NewBetsStream(bets))
			if tc.ok {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ae *Error
			if err == nil || !errors.As(err, &ae) || ae.Reason != reasonSession {
				t.Fatalf("err = %v, want a session error (the central's winners are not this agency's)", err)
			}
			if got := h.reported(); len(got) != 0 {
				t.Errorf("reported %+v: a wrong winners list must not be printed", got)
			}
			if strings.Contains(err.Error(), "99999999") || (loser != "" && strings.Contains(err.Error(), loser)) {
				t.Errorf("the error quotes a DNI: %v", err)
			}
			if fake.Conns() != 1 {
				t.Errorf("%d connections: a central that sends wrong winners is not retried", fake.Conns())
			}
		})
	}
}

// TestWinnersFrameBoundedByTheBets: a winners frame larger than the
// chunk's bets could need is refused from its header, before its payload
// is read or allocated.
func TestWinnersFrameBoundedByTheBets(t *testing.T) {
	bets := genBets(22, 20)
	huge := strings.Repeat("1;", 1<<20) + "1" // 2 MiB of one-digit DNIs
	fake := newFake(t, agencytest.Options{OnEnd: func(agencytest.Conn) agencytest.Action {
		return agencytest.Action{Reply: "WINNERS;round=1;number=7574\n" + huge, Close: true}
	}})
	opts := testOptions(fake.Addr())
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(bets))
	var ae *Error
	if err == nil || !errors.As(err, &ae) || ae.Reason != reasonSession || !strings.Contains(err.Error(), "20 bets") {
		t.Fatalf("err = %v, want a session error naming the round's 20 bets", err)
	}
	if fake.Conns() != 1 {
		t.Errorf("%d connections, want 1: an oversized answer is not retried", fake.Conns())
	}
}

// TestRoundsToCollectBounded: a central claiming a round far past the one
// the chunk went out in makes the agency collect round after round, but
// only until the one deadline, keeping a bounded Result.
func TestRoundsToCollectBounded(t *testing.T) {
	bets := genBets(23, 50)
	var named sync.Map // connection → the round its HELLO named
	fake := newFake(t, agencytest.Options{
		OnHello: func(c agencytest.Conn, h wire.Hello) agencytest.Action {
			if h.Round == 0 {
				return agencytest.Action{}
			}
			// Every round "exists", drawn, with all the agency's bets.
			named.Store(c.N, h.Round)
			w := wire.Welcome{Version: 1, Agency: 1, Round: h.Round, State: wire.RoundDrawn, Mark: 50, Ended: true, LastEnd: 100000000, LastMark: 50}
			return agencytest.Action{Reply: string(wire.AppendWelcome(nil, w))}
		},
		OnEnd: func(c agencytest.Conn) agencytest.Action {
			x, ok := named.Load(c.N)
			if !ok {
				return agencytest.Action{Reply: "WINNERS;round=100000000;number=7574\nNO_WINNERS", Close: true}
			}
			return agencytest.Action{Reply: fmt.Sprintf("WINNERS;round=%d;number=7574\nNO_WINNERS", x), Close: true}
		},
	})
	opts := testOptions(fake.Addr())
	opts.WinnersTimeout = 300 * time.Millisecond
	h := newHarness(t, opts, Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	var ae *Error
	if err == nil || !errors.As(err, &ae) || ae.Reason != reasonTimeout {
		t.Fatalf("err = %v, want the winners timeout", err)
	}
	if n := len(res.Rounds); n >= 2*MaxKeptRounds {
		t.Errorf("the result keeps %d rounds: want fewer than %d", n, 2*MaxKeptRounds)
	}
	got := h.reported()
	if len(got) < 2 || got[0].Round != 1 || got[len(got)-1].Round != 100000000 {
		t.Fatalf("reported %d rounds, want round 1 first and the END's round last", len(got))
	}
	for i := 1; i < len(got)-1; i++ {
		if got[i].Round != got[i-1].Round+1 {
			t.Fatalf("report %d is round %d after %d: want each in order", i, got[i].Round, got[i-1].Round)
		}
	}
}

// TestRoundsWithoutTheAgencysBets: a cut-off closes rounds whether or not
// the agency sent in them (a paced agency, a long backoff): every round
// between is collected, however few batches the chunk had.
func TestRoundsWithoutTheAgencysBets(t *testing.T) {
	bets := genBets(27, 30) // batches from 0, 10 and 20
	lines := linesOf(bets)
	var fake *agencytest.Central
	fake = newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if b.From == 20 {
			for range 4 {
				fake.CloseRound() // rounds 1 to 4 close; round 5 gets the last batch
			}
		}
		return agencytest.Action{}
	}})
	opts := testOptions(fake.Addr())
	opts.InFlight = 1
	h := newHarness(t, opts, Deps{})
	if _, err := h.run(t, NewBetsStream(bets)); err != nil {
		t.Fatal(err)
	}
	got := h.reported()
	want := [][]string{winnersOf(lines[:20]), {}, {}, {}, winnersOf(lines[20:])}
	if len(got) != len(want) {
		t.Fatalf("reported %+v, want rounds 1 to 5", got)
	}
	for i, w := range got {
		if w.Round != i+1 || !equalStrings(w.Winners, want[i]) {
			t.Errorf("report %d: round %d winners %v, want round %d winners %v", i, w.Round, w.Winners, i+1, want[i])
		}
	}
}

// TestCollectingRoundsOneDeadline: the earlier rounds of a chunk cut by
// closes are collected within one --winners-timeout in all, not one each,
// and each is reported as it arrives.
func TestCollectingRoundsOneDeadline(t *testing.T) {
	bets := genBets(24, 60)
	const timeout = time.Second
	var fake *agencytest.Central
	var h *harness
	var seenBefore [5]atomic.Int32 // rounds reported when round x's END came
	fake = newFake(t, agencytest.Options{
		OnBatch: cutAt(&fake, 20, 40), // rounds 1, 2 and 3 hold 20 bets each
		OnEnd: func(c agencytest.Conn) agencytest.Action {
			if c.Round != 0 {
				seenBefore[c.Round].Store(int32(len(h.reported())))
				// A central slow to answer: 0.7 s for each earlier round.
				time.Sleep(timeout * 7 / 10)
			}
			return agencytest.Action{}
		},
	})
	opts := testOptions(fake.Addr())
	opts.InFlight = 1 // each batch acked before the next: the closes fall between batches
	opts.WinnersTimeout = timeout
	h = newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(bets))
	var ae *Error
	if err == nil || !errors.As(err, &ae) || ae.Reason != reasonTimeout {
		t.Fatalf("err = %v, want a timeout: two rounds at 0.7 s each do not fit in one 1 s deadline", err)
	}
	// Round 1 came in time, round 2 did not; round 3's (the END's own,
	// checked) are reported too.
	got := h.reported()
	if len(got) != 2 || got[0].Round != 1 || got[1].Round != 3 {
		t.Fatalf("reported %+v, want rounds 1 and 3", got)
	}
	if n := seenBefore[2].Load(); n != 1 {
		t.Errorf("when round 2 was asked for, %d rounds were reported, want 1: each round is printed as it arrives", n)
	}
}

// TestRoundsReportedInOrderAsTheyArrive: the same cut chunk with a prompt
// central: every round, in order, each printed before the next is asked.
func TestRoundsReportedInOrderAsTheyArrive(t *testing.T) {
	bets := genBets(24, 60)
	lines := linesOf(bets)
	var fake *agencytest.Central
	var h *harness
	var seenBefore [5]atomic.Int32
	fake = newFake(t, agencytest.Options{
		OnBatch: cutAt(&fake, 20, 40),
		OnEnd: func(c agencytest.Conn) agencytest.Action {
			if c.Round != 0 {
				seenBefore[c.Round].Store(int32(len(h.reported())) + 1)
			}
			return agencytest.Action{}
		},
	})
	opts := testOptions(fake.Addr())
	opts.InFlight = 1
	h = newHarness(t, opts, Deps{})
	if _, err := h.run(t, NewBetsStream(bets)); err != nil {
		t.Fatal(err)
	}
	got := h.reported()
	if len(got) != 3 {
		t.Fatalf("reported %+v, want rounds 1, 2, 3", got)
	}
	for i, w := range got {
		if w.Round != i+1 || !equalStrings(w.Winners, winnersOf(lines[20*i:20*i+20])) {
			t.Errorf("report %d: round %d winners %v, want round %d winners %v", i, w.Round, w.Winners, i+1, winnersOf(lines[20*i:20*i+20]))
		}
	}
	for x := 1; x <= 2; x++ {
		if n := seenBefore[x].Load() - 1; n != int32(x-1) {
			t.Errorf("when round %d was asked for, %d rounds were reported, want %d", x, n, x-1)
		}
	}
}

// TestCentralTextNeverLogged: an error message from the central may quote
// anything (a bet's fields, if it is not ours); the agency logs its code,
// its size and the bet it names, never its text.
func TestCentralTextNeverLogged(t *testing.T) {
	bets := genBets(25, 40)
	doc := bets[32].Document
	text := fmt.Sprintf("line 3: the document %s of %s %s is not allowed", doc, bets[32].FirstName, bets[32].LastName)
	fake := newFake(t, agencytest.Options{OnBatch: func(b agencytest.Batch) agencytest.Action {
		if b.From == 30 {
			return agencytest.Action{Reject: text}
		}
		return agencytest.Action{}
	}})
	h := newHarness(t, testOptions(fake.Addr()), Deps{})
	_, err := h.run(t, NewBetsStream(bets))
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want the refusal summary", err)
	}
	logs := h.log.String()
	for _, s := range []string{doc, bets[32].FirstName, bets[32].LastName, "not allowed"} {
		if strings.Contains(logs, s) || strings.Contains(err.Error(), s) {
			t.Errorf("the log or the error quotes the central's text (%q):\n%s\n%v", s, logs, err)
		}
	}
	// Line 3 of the batch from bet 30 is stream index 32: the agency says
	// which bet of its own file it was, so the operator can look.
	if !strings.Contains(logs, "code=invalid") || !strings.Contains(logs, "bet=32") {
		t.Errorf("the warning does not give the code and the bet:\n%s", logs)
	}

	// A session refusal: the code's meaning, not the central's words.
	fake2 := newFake(t, agencytest.Options{OnHello: func(agencytest.Conn, wire.Hello) agencytest.Action {
		return agencytest.Action{Reply: "error;agency: agency " + doc + " is unknown", Close: true}
	}})
	h2 := newHarness(t, testOptions(fake2.Addr()), Deps{})
	_, err = h2.run(t, NewBetsStream(bets))
	if err == nil || strings.Contains(err.Error(), doc) || strings.Contains(h2.log.String(), doc) {
		t.Errorf("err = %v: want a refusal that does not quote the central", err)
	}
	if err != nil && !strings.Contains(err.Error(), "CLIENT_COUNT") {
		t.Errorf("err = %v: want the hint for the agency code", err)
	}
}

// TestWinnersCheckedAfterAResume: a run that resumed mid-chunk sent only
// the chunk's last bets; its winners, some among the bets an earlier run
// sent, are checked against the chunk read again from the stream.
func TestWinnersCheckedAfterAResume(t *testing.T) {
	bets := genBets(26, 90)
	lines := linesOf(bets)
	win := winnersOf(lines)
	if len(win) == 0 || len(winnersOf(lines[:40])) == 0 {
		t.Fatal("no winner among the first 40 generated bets: pick another seed")
	}
	for _, stranger := range []bool{false, true} {
		var lie atomic.Bool
		fake := newFake(t, agencytest.Options{
			OnBatch: func(b agencytest.Batch) agencytest.Action {
				if b.From == 40 && b.Conn == 1 {
					return agencytest.Action{Reply: "error;store_failed: disk full", Close: true}
				}
				return agencytest.Action{}
			},
			OnEnd: func(agencytest.Conn) agencytest.Action {
				if lie.Load() {
					return agencytest.Action{Reply: "WINNERS;round=1;number=7574\n" + win[0] + ";99999999", Close: true}
				}
				return agencytest.Action{}
			},
		})
		// The first run stops at the refused batch (no retry): the
		// central keeps its first 40 bets.
		opts := testOptions(fake.Addr())
		opts.DialAttempts = 1
		if _, err := newHarness(t, opts, Deps{}).run(t, NewBetsStream(bets)); err == nil {
			t.Fatal("the first run succeeded; want it stopped at bet 40")
		}
		if m := fake.Mark(1); m != 40 {
			t.Fatalf("the central's mark is %d after the first run, want 40", m)
		}
		lie.Store(stranger)
		h := newHarness(t, testOptions(fake.Addr()), Deps{})
		res, err := h.run(t, NewBetsStream(bets))
		if res.Resumed != 40 {
			t.Fatalf("resumed at %d, want 40", res.Resumed)
		}
		if !stranger {
			if err != nil || !equalStrings(res.Winners, win) {
				t.Errorf("err %v, winners %v; want %v", err, res.Winners, win)
			}
			continue
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != reasonSession || len(h.reported()) != 0 {
			t.Errorf("err = %v, reported %v: want a session error and nothing printed", err, h.reported())
		}
	}
}

// TestResultKeepsBoundedRounds: a long run keeps the last rounds' winners,
// not every round's, and counts them all; every one is still reported.
func TestResultKeepsBoundedRounds(t *testing.T) {
	const rounds = 2*MaxKeptRounds + 3
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.Rounds = rounds
	h := newHarness(t, opts, Deps{})
	s, err := NewGeneratedStream(1, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.run(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundsDone != rounds || len(h.reported()) != rounds {
		t.Fatalf("%d rounds done, %d reported; want %d", res.RoundsDone, len(h.reported()), rounds)
	}
	if n := len(res.Rounds); n < MaxKeptRounds || n >= 2*MaxKeptRounds {
		t.Errorf("the result keeps %d rounds, want %d to %d", n, MaxKeptRounds, 2*MaxKeptRounds-1)
	}
	for i, w := range res.Rounds {
		if want := rounds - len(res.Rounds) + 1 + i; w.Round != want {
			t.Fatalf("kept round %d is round %d, want %d: the last ones, in order", i, w.Round, want)
		}
	}
}

// TestWinnerInTwoRounds: a bet is in one round, so it wins in one at most:
// a central that names the same winning bet in two rounds of a chunk is
// refused, whatever each round alone would allow.
func TestWinnerInTwoRounds(t *testing.T) {
	bets := genBets(24, 60)
	win := winnersOf(linesOf(bets))
	if len(win) == 0 {
		t.Fatal("no winner among the generated bets: pick another seed")
	}
	var fake *agencytest.Central
	fake = newFake(t, agencytest.Options{
		OnBatch: cutAt(&fake, 20, 40),
		OnEnd: func(c agencytest.Conn) agencytest.Action {
			r := c.Round
			if r == 0 {
				r = 3
			}
			return agencytest.Action{Reply: fmt.Sprintf("WINNERS;round=%d;number=7574\n%s", r, win[0]), Close: true}
		},
	})
	opts := testOptions(fake.Addr())
	opts.InFlight = 1
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(bets))
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != reasonSession {
		t.Fatalf("err = %v, want a session error: one bet reported as winning in two rounds", err)
	}
	times := 0
	for _, w := range h.reported() {
		for _, d := range w.Winners {
			if d == win[0] {
				times++
			}
		}
	}
	if times != 1 {
		t.Errorf("the winning bet was reported %d times (%+v), want once", times, h.reported())
	}
}

// The END sent in round 2 lands in round 3 (a cut-off moved it on), the
// connection is lost, round 3 is drawn: the reconnect redirects to the
// open round, whose WELCOME names lastend=3. The agency collects round 3
// and, as for any END's round, the chunk's earlier rounds 1 and 2, which
// hold all its bets (found by helper-22: they were skipped, the run
// succeeding without them).
func TestCollectPathCollectsEarlierRounds(t *testing.T) {
	bets := genBets(27, 30)
	lines := linesOf(bets)
	var fake *agencytest.Central
	var ends atomic.Int32
	winnersIn := func(round int) string {
		var d []string
		for _, s := range fake.Stored(1) {
			if s.Round == round {
				d = append(d, s.Line)
			}
		}
		w := winnersOf(d)
		if len(w) == 0 {
			return fmt.Sprintf("WINNERS;round=%d;number=7574\nNO_WINNERS", round)
		}
		return fmt.Sprintf("WINNERS;round=%d;number=7574\n%s", round, strings.Join(w, ";"))
	}
	fake = newFake(t, agencytest.Options{
		Agencies: 2,
		OnBatch: func(b agencytest.Batch) agencytest.Action {
			if b.From == 20 {
				fake.CloseRound()
			}
			return agencytest.Action{}
		},
		OnHello: func(c agencytest.Conn, h wire.Hello) agencytest.Action {
			if ends.Load() == 0 {
				return agencytest.Action{}
			}
			switch h.Round {
			case 0:
				w := wire.Welcome{Version: 1, Agency: 1, Round: 4, State: wire.RoundOpen, Mark: 30, LastEnd: 3, LastMark: 30}
				return agencytest.Action{Reply: string(wire.AppendWelcome(nil, w))}
			case 3:
				w := wire.Welcome{Version: 1, Agency: 1, Round: 3, State: wire.RoundDrawn, Mark: 30, Ended: true, LastEnd: 3, LastMark: 30}
				return agencytest.Action{Reply: string(wire.AppendWelcome(nil, w))}
			}
			return agencytest.Action{}
		},
		OnEnd: func(c agencytest.Conn) agencytest.Action {
			if ends.Add(1) == 1 {
				fake.CloseRound() // round 2 closes: the END is recorded in round 3
				fake.CloseRound() // round 3 is drawn
				return agencytest.Action{Close: true}
			}
			return agencytest.Action{Reply: winnersIn(c.Round), Close: true}
		},
	})
	opts := testOptions(fake.Addr())
	opts.InFlight = 1
	h := newHarness(t, opts, Deps{})
	res, err := h.run(t, NewBetsStream(bets))
	got := h.reported()
	if err != nil || res.RoundsDone != 3 {
		t.Fatalf("err %v, %d rounds done (reported %+v), want 3 and no error", err, res.RoundsDone, got)
	}
	want := [][]string{winnersOf(lines[:20]), winnersOf(lines[20:]), {}}
	if len(got) != len(want) {
		t.Fatalf("reported %d rounds %+v, want rounds 1 to 3 (1 and 2 hold the chunk's bets)", len(got), got)
	}
	for i := range got {
		if got[i].Round != i+1 || !equalStrings(got[i].Winners, want[i]) {
			t.Errorf("report %d: round %d %v, want round %d %v", i, got[i].Round, got[i].Winners, i+1, want[i])
		}
	}
}

// cutAt is an OnBatch hook that closes the open round, as a cut-off
// would, before the batch from each of froms is stored (*fake is set once
// newFake returns, before any batch).
func cutAt(fake **agencytest.Central, froms ...int64) func(agencytest.Batch) agencytest.Action {
	return func(b agencytest.Batch) agencytest.Action {
		if slices.Contains(froms, b.From) {
			(*fake).CloseRound()
		}
		return agencytest.Action{}
	}
}
