package central_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

// TestBarrierCountsOnlyThisRunsAgenciesAfterARestart: a store written
// with CLIENT_COUNT=3 holds ENDs of agencies 1 and 3 (or 3 alone); the
// central restarted on it with CLIENT_COUNT=2 used to count agency 3's
// END toward its barrier, so it held the draw at start (or at agency 1's
// END) while agency 2, which had sent nothing, was still to come; its
// bets were then refused as after the draw (helper-35). The barrier counts
// the agencies 1..CLIENT_COUNT only, as the status does.
func TestBarrierCountsOnlyThisRunsAgenciesAfterARestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []int // agencies that send END under CLIENT_COUNT=3
	}{
		{"agencies 1 and 3 ended before", []int{1, 3}},
		{"agency 3 ended before", []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			first := startCentral(t, central.Config{Agencies: 3}, withStore(path))
			bets := map[int]string{
				1: "1;1\nAna;Pérez;111;1990-01-01;7574\n",
				3: "3;1\nLuis;Gómez;333;1990-01-01;7574\n",
			}
			for _, a := range tc.before {
				c := dialRaw(t, first.addr)
				c.send(bets[a])
				c.expect(wire.AckSuccess)
				c.send("END")
			}
			testenv.Eventually(t, 5*time.Second, "the ENDs to be recorded", func() bool {
				return len(first.srv.Status().Finished) == len(tc.before)
			})
			if err := first.stop(); err != nil {
				t.Fatal(err)
			}

			second := startCentral(t, central.Config{Agencies: 2}, withStore(path))
			var one *rawConn
			if !slices.Contains(tc.before, 1) {
				// Agency 1 ends now: with agency 3's END counted, that
				// made two of two.
				one = dialRaw(t, second.addr)
				one.send(bets[1])
				one.expect(wire.AckSuccess)
				one.send("END")
				testenv.Eventually(t, 5*time.Second, "agency 1's END to be recorded", func() bool {
					return slices.Equal(second.srv.Status().Finished, []int{1})
				})
			}
			two := dialRaw(t, second.addr)
			two.send("2;1\nEva;Sosa;222;1990-01-01;7574\n")
			two.expect(wire.AckSuccess) // the draw waits for agency 2
			two.send("END")
			two.expect("222") // its winners only
			if one == nil {
				one = dialRaw(t, second.addr)
				one.send("1;0\n")
				one.expect(wire.AckSuccess)
				one.send("END")
			}
			one.expect("111") // its winners only
		})
	}
}

// TestBarrierTimeoutHoldsAcrossARestart: BARRIER_TIMEOUT counts from a
// round's first END. A central restarted after that END used never to
// start it, since no later END was the round's first: the round waited
// for every agency, whatever the timeout (helper-35). It now starts at
// the restart, as the round's cut-off does.
func TestBarrierTimeoutHoldsAcrossARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	first := startCentral(t, central.Config{Agencies: 3, BarrierTimeout: time.Hour}, withStore(path))
	one := dialRaw(t, first.addr)
	one.send("1;1\nAna;Pérez;111;1990-01-01;7574\n")
	one.expect(wire.AckSuccess)
	one.send("END")
	testenv.Eventually(t, 5*time.Second, "agency 1's END to be recorded", func() bool {
		return len(first.srv.Status().Finished) == 1
	})
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	restarted := time.Now()
	second := startCentral(t, central.Config{Agencies: 3, BarrierTimeout: 200 * time.Millisecond}, withStore(path))
	// Agency 1 comes back for its winners; 2 and 3 never come: only the
	// timeout armed at the restart can hold the draw. Nothing here races
	// the timer: whenever it fires, agency 1's END waits for that draw.
	one = dialRaw(t, second.addr)
	one.nc.SetDeadline(time.Now().Add(10 * time.Second))
	one.send("1;0\n")
	one.expect(wire.AckSuccess)
	one.send("END")
	one.expect("111")
	if d := second.srv.Status().LastDraw; d == nil || d.Reason != "timeout" {
		t.Fatalf("last draw %+v, want one closed by the barrier timeout", d)
	}
	// The round's first END is from before the restart: the gauge counts
	// from the restart, so it holds at least the timeout and at most the
	// time since the restart (it was never set before the fix).
	got := testutil.ToFloat64(counterWith(t, second.reg, "loteria_barrier_first_end_to_draw_seconds", "", ""))
	if since := time.Since(restarted).Seconds(); got < 0.2 || got > since {
		t.Fatalf("loteria_barrier_first_end_to_draw_seconds = %v, want the 0.2 s timeout or more, and at most the %.3f s since the restart", got, since)
	}
}
