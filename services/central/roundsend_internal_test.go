package central

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// TestEndNamingARoundThatClosesMeanwhile: a v1 agency whose HELLO named
// the open round (round=1) sends END just as that round closes. rounds.end
// looks at the round named (open: go on), then takes the gate and records
// the END in whatever round is open by then: round 2. The agency, which
// never sent END in round 2, is counted there (its batches of round 2 are
// refused "ended", and round 2's barrier moves), and it waits for round 2's
// draw instead of getting round 1's winners.
//
// The close is made to land in the window by holding the gate's read side
// while rounds.close waits for its write side: the END then queues behind
// the close.
func TestEndNamingARoundThatClosesMeanwhile(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Address: "127.0.0.1:0", Agencies: 2, Rounds: 3}
	st, err := store.Open(filepath.Join(dir, "bets.csv"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(cfg, Deps{Ledger: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
	}()

	nc, err := net.Dial("tcp", ln.Plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	send := func(p string) {
		if _, err := fmt.Fprintf(nc, "%08d%s", len(p), p); err != nil {
			t.Fatal(err)
		}
	}
	send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: 1, Fingerprint: "ab", Round: 1, Total: -1})))
	if p, err := wire.ReadFrame(br, nil, 1<<16); err != nil || !strings.HasPrefix(string(p), "WELCOME") {
		t.Fatalf("WELCOME: %q %v", p, err)
	}
	r1 := srv.rounds.get(1)

	rs := srv.rounds
	rs.gate.RLock()
	go rs.close(r1, 3) // CloseTimeout: waits for the gate's write side
	testenv.Eventually(t, 5*time.Second, "the close to wait for the gate", func() bool {
		if rs.gate.TryRLock() {
			rs.gate.RUnlock()
			return false
		}
		return true
	})
	send("END")
	testenv.Eventually(t, 5*time.Second, "the END to wait for the gate", func() bool {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		return strings.Contains(s, "(*rounds).end(")
	})
	rs.gate.RUnlock()

	p, err := wire.ReadFrame(br, nil, 1<<16)
	if err != nil {
		t.Fatalf("no winners for round 1: %v (round 2 has agency 1's END: %v)", err, rs.get(2) != nil && rs.get(2).hasEnded(1))
	}
	if !strings.HasPrefix(string(p), "WINNERS;round=1;") {
		t.Errorf("got %q, want round 1's winners", p)
	}
	if r2 := rs.get(2); r2 != nil && r2.hasEnded(1) {
		t.Errorf("round 2 counts an END of agency 1, which only asked for round 1's winners")
	}
}
