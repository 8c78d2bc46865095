package central_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

// betLines are n valid bet lines for agency a starting at stream index
// from; bet i plays number 7574 when win(i), else i%7000, and its DNI is
// a*1_000_000+i, so tests know every winner from the indexes alone.
func betLines(a, from, n int, win func(i int) bool) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		num := i % 7000
		if win != nil && win(i) {
			num = 7574
		}
		fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", a*1_000_000+i, num)
	}
	return b.String()
}

func batchFrom(a, from, n int, win func(int) bool) string {
	return fmt.Sprintf("%d;%d;from=%d\n", a, n, from) + betLines(a, from, n, win)
}

func (c *rawConn) hello(agency int, fp string, round int) wire.Welcome {
	c.t.Helper()
	c.send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: agency, Fingerprint: fp, Round: round, Total: -1})))
	p := c.expectPrefix("")
	w, err := wire.ParseWelcome([]byte(p))
	if err != nil {
		c.t.Fatalf("HELLO answered %q: %v", p, err)
	}
	return w
}

func (c *rawConn) expectCode(code string) string {
	c.t.Helper()
	msg := c.expectPrefix("error;" + code + ": ")
	return msg
}

func everyTenth(i int) bool { return i%10 == 3 }

// TestResumeAndIdempotentBatches: the mark a HELLO reports is durable, a
// resend below it is acknowledged and not stored twice, an overlap stores
// only the new bets, a gap is refused naming the expected index.
func TestResumeAndIdempotentBatches(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1})
	c := dialRaw(t, h.addr)
	if w := c.hello(1, "f00d", 0); w.Mark != 0 || w.Round != 1 || w.State != wire.RoundOpen || w.Ended {
		t.Fatalf("first WELCOME = %+v, want mark 0 in open round 1", w)
	}
	c.send(batchFrom(1, 0, 5, everyTenth))
	c.expect(wire.AckSuccess)
	h.hangUp(t, c)
	c = dialRaw(t, h.addr)
	if w := c.hello(1, "f00d", 0); w.Mark != 5 {
		t.Fatalf("WELCOME after 5 stored bets: mark %d, want 5", w.Mark)
	}
	c.send(batchFrom(1, 0, 5, everyTenth)) // wholly below: a resend
	c.expect(wire.AckSuccess)
	c.send(batchFrom(1, 3, 5, everyTenth)) // 3,4 stored; 5,6,7 new
	c.expect(wire.AckSuccess)
	c.send(batchFrom(1, 20, 2, everyTenth)) // past the mark (8)
	if msg := c.expectCode(wire.CodeGap); !strings.Contains(msg, "8") {
		t.Errorf("gap refusal %q does not name the expected index 8", msg)
	}
	c.send(batchFrom(1, 8, 6, everyTenth))
	c.expect(wire.AckSuccess)
	c.send("END")
	w, err := wire.ParseWinnersMessage([]byte(c.expectPrefix("WINNERS;")))
	if err != nil {
		t.Fatal(err)
	}
	// Bets 0..13 stored once each; winners are indexes 3 and 13.
	if want := []string{"1000003", "1000013"}; strings.Join(w.DNIs, ";") != strings.Join(want, ";") || w.Round != 1 || w.Number != 7574 {
		t.Errorf("winners %+v, want %v in round 1 with 7574", w, want)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	stored := testenv.ReadStore(t, h.store)
	if len(stored) != 14 {
		t.Fatalf("store holds %d bets, want 14 (indexes 0..13 once each)", len(stored))
	}
	for i, b := range stored {
		if b.Document != fmt.Sprint(1_000_000+i) {
			t.Fatalf("row %d is bet %s, want bet %d: stored out of order or twice", i, b.Document, 1_000_000+i)
		}
	}
}

// TestRejectedBatchMovesTheMark: a batch refused by validation moves the
// mark past it, so the agency's pipelined later batches still fit, and the
// refusal is counted in the WELCOME of its next connection.
func TestRejectedBatchMovesTheMark(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1})
	c := dialRaw(t, h.addr)
	c.hello(1, "beef", 0)
	c.send(batchFrom(1, 0, 3, nil))
	c.send("1;2;from=3\nAna;Pé,rez;1000003;1990-01-01;1\nAna;Pérez;1000004;1990-01-01;2\n")
	c.send(batchFrom(1, 5, 2, nil))
	c.expect(wire.AckSuccess)
	if msg := c.expectCode(wire.CodeInvalid); !strings.Contains(msg, "line 2") {
		t.Errorf("refusal %q does not say which line", msg)
	}
	c.expect(wire.AckSuccess)
	h.hangUp(t, c)
	c = dialRaw(t, h.addr)
	if w := c.hello(1, "beef", 0); w.Mark != 7 || w.Rejected != 2 {
		t.Errorf("WELCOME %+v, want mark 7 and 2 bets refused", w)
	}
}

// TestFingerprintMismatchRefused: the same agency id with another stream
// is an error, not a silent skip.
func TestFingerprintMismatchRefused(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1})
	c := dialRaw(t, h.addr)
	c.hello(1, "aaaa", 0)
	c.send(batchFrom(1, 0, 2, nil))
	c.expect(wire.AckSuccess)
	h.hangUp(t, c)
	d := dialRaw(t, h.addr)
	d.send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: 1, Fingerprint: "bbbb", Total: -1})))
	d.expectCode(wire.CodeFingerprint)
	d.expectClosed()
}

// TestBareEndIsRefused: an END from a connection that never named its
// agency neither counts at the barrier nor gets winners. It is closed with
// no frame: such a connection speaks the seed's protocol (a HELLO names
// it), and the seed's client reads whatever frame follows END as its
// winners list, so "error;unnamed: ..." would be printed as winners.
func TestBareEndIsRefused(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2})
	for range 2 {
		x := dialRaw(t, h.addr)
		x.send("END")
		x.expectClosed()
	}
	if st := h.srv.Status(); len(st.Finished) != 0 || st.State != "open" {
		t.Fatalf("after two bare ENDs the status is %+v: they must not count", st)
	}
	// The real agencies are untouched.
	a1, a2 := dialRaw(t, h.addr), dialRaw(t, h.addr)
	a1.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	a1.expect(wire.AckSuccess)
	a2.send("2;1\nLuis;Gómez;2;1990-01-01;1\n")
	a2.expect(wire.AckSuccess)
	a1.send("END")
	a2.send("END")
	a1.expect("1")
	a2.expect("NO_WINNERS")
}

// TestOneConnectionPerAgency: a second live connection claiming an agency
// is refused with a retryable error, and the first keeps working; an END
// sent twice (a reconnect) counts once.
func TestOneConnectionPerAgency(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2})
	a := dialRaw(t, h.addr)
	a.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	a.expect(wire.AckSuccess)
	impostor := dialRaw(t, h.addr)
	impostor.send("1;0\n")
	impostor.expectCode(wire.CodeConnected)
	impostor.expectClosed()
	if !wire.Retryable(wire.CodeConnected) {
		t.Fatal("an already-connected refusal must be retryable")
	}
	a.send("END")
	testenv.Eventually(t, 5*time.Second, "agency 1 to be waiting", func() bool { return len(h.srv.Status().Waiting) == 1 })
	// Agency 1 leaves and comes back with only END: counted once.
	a.nc.Close()
	testenv.Eventually(t, 5*time.Second, "the departure to be seen", func() bool {
		return len(h.srv.Status().Waiting) == 0 &&
			testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_waiting", "", "")) == 0
	})
	again := dialRaw(t, h.addr)
	again.send("1;0\n")
	again.expect(wire.AckSuccess)
	again.send("END")
	testenv.Eventually(t, 5*time.Second, "agency 1 to wait again", func() bool { return len(h.srv.Status().Waiting) == 1 })
	if st := h.srv.Status(); len(st.Finished) != 1 || st.State != "open" {
		t.Fatalf("status %+v: agency 1's two ENDs must count once and hold no draw", st)
	}
	b := dialRaw(t, h.addr)
	b.send("2;0\n")
	b.expect(wire.AckSuccess)
	b.send("END")
	again.expect("1")
	b.expect("NO_WINNERS")
	testenv.Eventually(t, 5*time.Second, "two winners messages to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_winners_sent_total", "", "")) == 2
	})
	h.stop()
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_winners_sent_total", "", "")); got != 2 {
		t.Errorf("winners sent %v times, want 2 (none to the connection that left)", got)
	}
}

// TestShutdownBeforeTheDraw: a seed-protocol waiter is closed (its client
// would read an error frame as winners); a v1 waiter is told why.
func TestShutdownBeforeTheDraw(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 3})
	seed := dialRaw(t, h.addr)
	seed.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	seed.expect(wire.AckSuccess)
	seed.send("END")
	v1 := dialRaw(t, h.addr)
	v1.hello(2, "ab", 0)
	v1.send("END")
	testenv.Eventually(t, 5*time.Second, "both to be waiting", func() bool { return len(h.srv.Status().Waiting) == 2 })
	go h.stop()
	seed.expectClosed()
	v1.expectCode(wire.CodeShuttingDown)
}

// TestPerAddressLimit: connections from one IP address beyond the cap are
// refused as busy; another address is not affected.
func TestPerAddressLimit(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 5, MaxConnectionsPerAddress: 2})
	dialFrom := func(ip string) *rawConn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		nc, err := d.Dial("tcp", h.addr)
		if err != nil {
			t.Skipf("cannot dial from %s (needs the whole 127.0.0.0/8 on loopback): %v", ip, err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		return newRawConn(t, nc)
	}
	for i, ip := range []string{"127.0.0.2", "127.0.0.2"} {
		c := dialFrom(ip)
		c.send(fmt.Sprintf("%d;0\n", i+1))
		c.expect(wire.AckSuccess)
	}
	third := dialFrom("127.0.0.2")
	third.expectCode(wire.CodeBusy)
	other := dialFrom("127.0.0.3")
	other.send("3;0\n")
	other.expect(wire.AckSuccess)
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_rejected_total", "reason", "per_address")); got != 1 {
		t.Errorf("per-address refusals counted %v, want 1", got)
	}
}

// TestSilentPeerTimesOut: a connection that says nothing holds its slot
// only for the handshake timeout.
func TestSilentPeerTimesOut(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1, HandshakeTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
	c := dialRaw(t, h.addr)
	c.expectClosed()
	testenv.Eventually(t, 5*time.Second, "the idle close to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "idle_timeout")) == 1
	})
}
