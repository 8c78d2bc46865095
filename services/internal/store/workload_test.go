package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/loteria/loteria/services/internal/ledger"
)

// A workload drives a ledger with random operations of several agencies
// (batches, resends, gaps, refusals, claims, ENDs, closes, draws) and
// keeps its own model of what each one means, to check a recovered store
// against: the test's oracle, independent of the store's code.
type workload struct {
	t        testing.TB
	rng      *rand.Rand
	l        ledger.Ledger
	agencies int
	wait     bool // wait for each receipt (deterministic commits)
	// big: new batches of 1,500-1,999 bets (over 46 bytes a row), so that
	// each group is larger than preallocMaxWrite (written past the page
	// cache), not 1-8.
	big bool

	mark   map[int]int64 // admitted marks, as the driver knows them
	round  int
	closed []int // closed rounds not drawn yet
	ops    []*wop
	// Every stream index below an agency's mark belongs to exactly one op.
	owner map[int][]*wop
	done  bool // the ledger refused an operation: it failed
}

type wop struct {
	kind     string // batch, dup, reject, end, close, draw, claim
	agency   int
	from, to int64 // batch, reject: the stream indexes it took; end: mark
	round    int
	draw     ledger.Draw
	fp       string
	rec      *ledger.Receipt
}

func newWorkload(t testing.TB, l ledger.Ledger, seed uint64, agencies int, wait bool) *workload {
	return &workload{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x10734)), l: l, agencies: agencies, wait: wait,
		mark: map[int]int64{}, round: 1, owner: map[int][]*wop{}}
}

func fingerprint(agency int) string { return "f00d" + strconv.Itoa(agency) }

// step runs one random operation; false once the ledger refused one
// because it failed or closed.
func (w *workload) step() bool {
	if w.done {
		return false
	}
	a := 1 + w.rng.IntN(w.agencies)
	var (
		op  *wop
		err error
	)
	switch p := w.rng.IntN(100); {
	case p < 55: // a batch, sometimes a resend overlapping the mark or at the mark
		m := w.mark[a]
		from := max(0, m-int64(w.rng.IntN(3)))
		at := from
		if w.rng.IntN(10) == 0 {
			at, from = ledger.AtMark, m
		}
		n := 1 + w.rng.IntN(8)
		if w.big {
			n = 1500 + w.rng.IntN(500)
		}
		op = &wop{kind: "batch", agency: a, from: m, to: from + int64(n)}
		if op.to <= m {
			op.kind, op.from, op.to = "dup", 0, 0
		}
		op.rec, err = submit(w.l, a, at, from, n)
	case p < 62: // a resend wholly below the mark
		m := w.mark[a]
		if m == 0 {
			return true
		}
		from := int64(w.rng.IntN(int(m)))
		n := 1 + w.rng.IntN(int(m-from))
		op = &wop{kind: "dup", agency: a}
		op.rec, err = submit(w.l, a, from, from, n)
	case p < 70: // refused by validation
		m := w.mark[a]
		n := 1 + w.rng.IntN(4)
		op = &wop{kind: "reject", agency: a, from: m, to: m + int64(n)}
		var b ledger.Batch
		if b, err = w.l.Begin(a, m, n); err == nil {
			b.Add(testBet(a, m))
			op.rec, err = b.Reject()
		}
	case p < 73: // a gap: refused at once, nothing queued
		m := w.mark[a]
		_, err := w.l.Begin(a, m+1+int64(w.rng.IntN(5)), 1)
		var gap *ledger.GapError
		if !errors.As(err, &gap) {
			return w.refused(err, "a gap")
		}
		if gap.Expected != m {
			w.t.Fatalf("agency %d: gap error expects bet %d, the mark is %d", a, gap.Expected, m)
		}
		return true
	case p < 80:
		op = &wop{kind: "end", agency: a, from: w.mark[a], round: w.round}
		op.rec, err = w.l.End(a)
	case p < 84:
		op = &wop{kind: "close", round: w.round}
		op.rec, err = w.l.CloseRound(ledger.CloseReason(1 + w.rng.IntN(3)))
	case p < 89:
		if len(w.closed) == 0 {
			return true
		}
		r := w.closed[0]
		d := ledger.Draw{Round: r, Number: w.rng.IntN(10000), Bets: int64(w.rng.IntN(1000)), Winners: w.rng.IntN(9), Digest: digest(fmt.Sprint(r))}
		op = &wop{kind: "draw", draw: d}
		op.rec, err = w.l.RecordDraw(d)
	default:
		op = &wop{kind: "claim", agency: a, fp: fingerprint(a)}
		op.rec, err = w.l.Claim(a, op.fp)
	}
	if err != nil {
		return w.refused(err, op.kind)
	}
	w.ops = append(w.ops, op)
	switch op.kind {
	case "batch", "reject":
		w.mark[a] = op.to
		w.owner[a] = append(w.owner[a], op)
	case "close":
		w.closed = append(w.closed, w.round)
		w.round++
	case "draw":
		w.closed = w.closed[1:]
	}
	if w.wait || w.rng.IntN(8) == 0 {
		op.rec.Wait()
	}
	return true
}

func (w *workload) refused(err error, what string) bool {
	if errors.Is(err, ledger.ErrFailed) || errors.Is(err, ledger.ErrClosed) {
		w.done = true
		return false
	}
	w.t.Fatalf("%s refused: %v", what, err)
	return false
}

// waitAll waits for every receipt; it counts the outcomes.
func (w *workload) waitAll() (ok, notStored, unknown int) {
	for _, op := range w.ops {
		switch err := op.rec.Wait(); {
		case err == nil:
			ok++
		case errors.Is(err, ledger.ErrOutcomeUnknown):
			unknown++
		case errors.Is(err, ledger.ErrFailed):
			notStored++
		default:
			w.t.Fatalf("%s receipt failed with %v, neither ErrFailed nor ErrOutcomeUnknown", op.kind, err)
		}
	}
	return
}

// verify checks a recovered ledger (rec, and its bets file's bytes)
// against the workload: every acknowledged entry is there, every bet at
// most once, and each agency's bets are exactly the batches below its
// recovered mark, in order; nothing "not stored" is visible.
func (w *workload) verify(rec *ledger.Recovery, data []byte) {
	t := w.t
	t.Helper()
	stored := storedBets(t, data)
	byAgency := map[int][]int64{}
	for _, id := range stored {
		byAgency[id.agency] = append(byAgency[id.agency], id.index)
	}
	for a := 1; a <= w.agencies; a++ {
		st := rec.Agencies[a]
		var want []int64
		var rejected int64
		boundary := st.Mark == 0
		for _, op := range w.owner[a] {
			if op.to <= st.Mark {
				if op.kind == "batch" {
					for i := op.from; i < op.to; i++ {
						want = append(want, i)
					}
				} else {
					rejected += op.to - op.from
				}
			}
			if op.to == st.Mark {
				boundary = true
			}
			if op.rec.Err() == nil && op.to > st.Mark {
				t.Fatalf("agency %d: an acknowledged %s took bets up to %d but the recovered mark is %d: acknowledged bets lost", a, op.kind, op.to, st.Mark)
			}
			if op.kind == "batch" && op.to <= st.Mark && op.rec.Err() != nil && errors.Is(op.rec.Err(), ledger.ErrFailed) && !errors.Is(op.rec.Err(), ledger.ErrOutcomeUnknown) {
				t.Fatalf("agency %d: a batch answered 'not stored' (%v) is stored", a, op.rec.Err())
			}
		}
		if !boundary {
			t.Fatalf("agency %d: recovered mark %d is not where any batch ended", a, st.Mark)
		}
		if !slices.Equal(byAgency[a], want) {
			t.Fatalf("agency %d (mark %d): stored bets %v, want %v (every acknowledged bet exactly once, in order)", a, st.Mark, byAgency[a], want)
		}
		if st.Rejected != rejected {
			t.Fatalf("agency %d: %d bets recorded as refused, want %d", a, st.Rejected, rejected)
		}
	}
	if rec.Bets != int64(len(stored)) || rec.Bytes != int64(len(data)) {
		t.Fatalf("recovered %d bets / %d bytes; the file holds %d / %d", rec.Bets, rec.Bytes, len(stored), len(data))
	}
	for _, op := range w.ops {
		if op.rec.Err() != nil {
			continue
		}
		switch op.kind {
		case "end":
			var ends []ledger.End
			if op.rec.Round == rec.Round {
				ends = rec.Ends
			} else if op.rec.Round <= len(rec.Rounds) {
				ends = rec.Rounds[op.rec.Round-1].Ends
			}
			found := false
			for _, e := range ends {
				found = found || (e.Agency == op.agency && e.Mark >= op.from)
			}
			if !found || op.rec.Round != op.round {
				t.Fatalf("acknowledged END of agency %d in round %d (receipt round %d) not recovered: %v", op.agency, op.round, op.rec.Round, ends)
			}
		case "close":
			if op.rec.Round > len(rec.Rounds) {
				t.Fatalf("acknowledged close of round %d not recovered (%d rounds closed)", op.rec.Round, len(rec.Rounds))
			}
			cr := rec.Rounds[op.rec.Round-1]
			if cr.Cut != op.rec.Pos || cr.Bets != int64(op.rec.Stored) || op.rec.Round != op.round {
				t.Fatalf("round %d recovered as %+v; its close's receipt said cut %d, %d bets", op.rec.Round, cr, op.rec.Pos, op.rec.Stored)
			}
		case "draw":
			if d := rec.Rounds[op.draw.Round-1].Draw; d == nil || !reflect.DeepEqual(*d, op.draw) {
				t.Fatalf("acknowledged draw %+v recovered as %+v", op.draw, d)
			}
		case "claim":
			if got := rec.Agencies[op.agency].Fingerprint; got != op.fp {
				t.Fatalf("agency %d: acknowledged fingerprint recovered as %q", op.agency, got)
			}
		}
	}
	// Rounds tile the data.
	var pos, bets int64
	for _, cr := range rec.Rounds {
		if cr.Start != pos || cr.Cut < cr.Start {
			t.Fatalf("round %d spans %d..%d after %d", cr.Round, cr.Start, cr.Cut, pos)
		}
		pos, bets = cr.Cut, bets+cr.Bets
		if n := int64(bytes.Count(data[cr.Start:cr.Cut], []byte("\n"))); n != cr.Bets {
			t.Fatalf("round %d: %d rows between its start and cut, %d bets recorded", cr.Round, n, cr.Bets)
		}
	}
	if bets+rec.RoundBets != rec.Bets || rec.Round != len(rec.Rounds)+1 {
		t.Fatalf("rounds hold %d + %d bets of %d; open round %d after %d closed", bets, rec.RoundBets, rec.Bets, rec.Round, len(rec.Rounds))
	}
}
