package central_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// sendRange sends bets [from, to) of agency a in batches of 100, each bet
// playing number i%10000, so every number has a bet and any draw has
// winners; it returns the DNIs by number, the oracle of the draw.
func sendRange(t *testing.T, c *rawConn, a, from, to int) map[int][]string {
	t.Helper()
	byNumber := make(map[int][]string)
	for i := from; i < to; i += 100 {
		n := min(100, to-i)
		var b strings.Builder
		fmt.Fprintf(&b, "%d;%d;from=%d\n", a, n, i)
		for j := i; j < i+n; j++ {
			dni := fmt.Sprint(a*1_000_000 + j)
			fmt.Fprintf(&b, "Eva;Sosa;%s;1985-06-15;%d\n", dni, j%10000)
			byNumber[j%10000] = append(byNumber[j%10000], dni)
		}
		c.send(b.String())
	}
	for i := from; i < to; i += 100 {
		c.expect(wire.AckSuccess)
	}
	return byNumber
}

func (c *rawConn) winners() wire.Winners {
	c.t.Helper()
	w, err := wire.ParseWinnersMessage([]byte(c.expectPrefix("WINNERS;")))
	if err != nil {
		c.t.Fatal(err)
	}
	return w
}

// TestRoundsWithRandomNumbers: with more than one round the winning
// number is drawn per round (not 7574 known in advance), each agency gets
// exactly its bets of that round playing it, and after the last round
// bets are refused while winners stay answerable.
func TestRoundsWithRandomNumbers(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2, Rounds: 2})
	numbers := map[int]bool{}
	for round, span := range [][2]int{{0, 10000}, {10000, 20000}} {
		conns := []*rawConn{dialRaw(t, h.addr), dialRaw(t, h.addr)}
		oracle := make([]map[int][]string, 2)
		for i, c := range conns {
			if w := c.hello(i+1, "cafe", 0); w.Round != round+1 || w.Mark != int64(span[0]) {
				t.Fatalf("round %d: WELCOME %+v, want round %d at mark %d", round+1, w, round+1, span[0])
			}
			oracle[i] = sendRange(t, c, i+1, span[0], span[1])
		}
		for _, c := range conns {
			c.send("END")
		}
		for i, c := range conns {
			w := c.winners()
			if w.Round != round+1 || w.Number < 0 || w.Number > 9999 {
				t.Fatalf("winners %+v: want round %d and a number in 0..9999", w, round+1)
			}
			if want := oracle[i][w.Number]; !slices.Equal(w.DNIs, want) {
				t.Errorf("round %d agency %d winners %v, want %v (its bets playing %d)", round+1, i+1, w.DNIs, want, w.Number)
			}
			numbers[w.Number] = true
		}
	}
	late := dialRaw(t, h.addr)
	late.hello(1, "cafe", 0)
	late.send(batchFrom(1, 20000, 1, nil))
	late.expectCode(wire.CodeClosed)
	late.send("END")
	if w := late.winners(); w.Round != 2 {
		t.Errorf("END after the last round answered round %d, want 2", w.Round)
	}
}

// TestCutoffClosesARound: in continuous mode a round closes at its cut-off
// without every agency's END; bets after it go to the next round; the
// earlier round's winners stay answerable by number. The oracle is the
// bets file itself: round 1 is its first rows, as many as the draw says.
func TestCutoffClosesARound(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2, Rounds: -1, RoundCutoff: 2 * time.Second})
	a := dialRaw(t, h.addr)
	a.hello(1, "01", 0)
	sendRange(t, a, 1, 0, 10000)
	var draw *central.DrawStatus
	testenv.Eventually(t, 20*time.Second, "the cut-off to close round 1", func() bool {
		draw = h.srv.Status().LastDraw
		return draw != nil
	})
	if draw.Round != 1 || draw.Reason != "cutoff" {
		t.Fatalf("first draw %+v, want round 1 closed by the cutoff", draw)
	}
	// A bet after the cut-off goes to the next round.
	a.send(batchFrom(1, 10000, 1, nil))
	a.expect(wire.AckSuccess)
	rows := testenv.ReadStore(t, h.store)
	if int64(len(rows)) < draw.Bets {
		t.Fatalf("the store holds %d rows, the draw of round 1 says %d bets", len(rows), draw.Bets)
	}
	var want []string
	for _, r := range rows[:draw.Bets] {
		if r.Number == fmt.Sprint(draw.Number) {
			want = append(want, r.Document)
		}
	}
	h.hangUp(t, a)
	r1 := dialRaw(t, h.addr)
	if w := r1.hello(1, "01", 1); w.State != wire.RoundDrawn {
		t.Fatalf("round 1 state %q, want drawn", w.State)
	}
	r1.send("END")
	if w := r1.winners(); w.Round != 1 || w.Number != draw.Number || !slices.Equal(w.DNIs, want) {
		t.Errorf("round 1 winners %+v, want %v with number %d", w, want, draw.Number)
	}
	if draw.Bets == 10001 {
		t.Error("the bet sent after the cut-off was counted in round 1")
	}
}

// TestRoundsSurviveRestarts: a restarted central remembers who sent END,
// holds the draw when the last END comes, and after a restart past the
// draw answers the same winners and stores nothing more.
func TestRoundsSurviveRestarts(t *testing.T) {
	store := filepath.Join(t.TempDir(), "bets.csv")
	cfg := central.Config{Agencies: 2}
	first := startCentral(t, cfg, withStore(store))
	a := dialRaw(t, first.addr)
	a.send("1;2\nAna;Pérez;111;1990-01-01;7574\nLuis;Gómez;222;1990-01-01;1\n")
	a.expect(wire.AckSuccess)
	a.send("END")
	testenv.Eventually(t, 5*time.Second, "agency 1's END to be recorded", func() bool { return len(first.srv.Status().Finished) == 1 })
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	a.expectClosed()

	second := startCentral(t, cfg, withStore(store))
	if st := second.srv.Status(); !slices.Equal(st.Finished, []int{1}) || !slices.Equal(st.Missing, []int{2}) {
		t.Fatalf("after a restart the status is %+v: agency 1's END must be remembered", st)
	}
	b := dialRaw(t, second.addr)
	b.send("2;1\nEva;Sosa;333;1990-01-01;7574\n")
	b.expect(wire.AckSuccess)
	b.send("END")
	b.expect("333")
	a = dialRaw(t, second.addr)
	a.send("1;0\n")
	a.expect(wire.AckSuccess)
	a.send("END")
	a.expect("111")
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}

	third := startCentral(t, cfg, withStore(store))
	late := dialRaw(t, third.addr)
	late.send("1;1\nNueva;Apuesta;444;1990-01-01;7574\n")
	late.expectCode(wire.CodeClosed)
	late.send("END")
	late.expect("111")
	b = dialRaw(t, third.addr)
	b.send("2;0\n")
	b.expect(wire.AckSuccess)
	b.send("END")
	b.expect("333")
	if err := third.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(testenv.ReadStore(t, store)); got != 3 {
		t.Errorf("store holds %d bets, want 3: nothing stored after the draw", got)
	}
}

// TestDrawOfARoundClosedBeforeARestart: a central stopped after a round
// closed and before its draw was recorded holds that draw when it starts
// again, over the round's stored bets, in both modes. The store is
// written through the store itself, so the round is closed and undrawn
// for certain; the oracle is the bets file read back.
func TestDrawOfARoundClosedBeforeARestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rounds int
	}{
		{"fixed number", 1},
		{"random number", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			st, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for a := 1; a <= 2; a++ {
				const n = 20000
				b, err := st.Begin(a, 0, n)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					b.Add(ledger.Bet{FirstName: []byte("Eva"), LastName: []byte("Sosa"),
						Document: []byte(fmt.Sprint(a*1_000_000 + i)), Birthdate: []byte("1985-06-15"), Number: i % 10000})
				}
				wait(t, b.Submit)
				wait(t, func() (*ledger.Receipt, error) { return st.End(a) })
			}
			wait(t, func() (*ledger.Receipt, error) { return st.CloseRound(ledger.CloseBarrier) })
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			h := startCentral(t, central.Config{Agencies: 2, Rounds: tc.rounds}, withStore(path))
			rows := testenv.ReadStore(t, path)
			for a := 1; a <= 2; a++ {
				c := dialRaw(t, h.addr)
				c.hello(a, "cafe", 1)
				c.send("END")
				w := c.winners()
				var want []string
				for _, r := range rows {
					if r.Agency == a && r.Number == fmt.Sprint(w.Number) {
						want = append(want, r.Document)
					}
				}
				if tc.rounds == 1 && w.Number != 7574 {
					t.Errorf("agency %d: winning number %d, want 7574 in the one-shot mode", a, w.Number)
				}
				if len(want) == 0 || !slices.Equal(w.DNIs, want) {
					t.Errorf("agency %d: round 1 winners %v (number %d), want its %d bets playing it: %v", a, w.DNIs, w.Number, len(want), want)
				}
			}
		})
	}
}

func wait(t *testing.T, op func() (*ledger.Receipt, error)) {
	t.Helper()
	rec, err := op()
	if err == nil {
		err = rec.Wait()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatusBoundsTheAgencyLists: with CLIENT_COUNT at 20,000,000 /status
// lists at most 100 ids of each kind and counts all of them (the whole
// list was 268 MB of JSON, built in 3 s under the round's lock).
func TestStatusBoundsTheAgencyLists(t *testing.T) {
	const n = 20_000_000
	h := startCentral(t, central.Config{Agencies: n})
	for _, a := range []int{1, 3, n} {
		c := dialRaw(t, h.addr)
		c.send(fmt.Sprintf("%d;0\n", a))
		c.expect(wire.AckSuccess)
		c.send("END")
	}
	testenv.Eventually(t, 5*time.Second, "three ENDs to be recorded", func() bool { return h.srv.Status().FinishedCount == 3 })

	rec := httptest.NewRecorder()
	h.srv.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	body := rec.Body.Bytes()
	var st central.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/status: %v in %d bytes", err, len(body))
	}
	want := []int{2}
	for a := 4; len(want) < 100; a++ {
		want = append(want, a)
	}
	if !slices.Equal(st.Missing, want) || st.MissingCount != n-3 {
		t.Errorf("missing %v (%d), want %v (%d)", st.Missing, st.MissingCount, want, n-3)
	}
	if !slices.Equal(st.Finished, []int{1, 3, n}) || st.FinishedCount != 3 || st.Expected != n {
		t.Errorf("finished %v (%d) of %d, want [1 3 %d] (3) of %d", st.Finished, st.FinishedCount, st.Expected, n, n)
	}
	if len(body) > 8<<10 {
		t.Errorf("/status answered %d bytes, want a few KiB whatever CLIENT_COUNT is", len(body))
	}
}
