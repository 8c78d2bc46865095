package central_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

func inflight(t *testing.T, reg prometheus.Gatherer, pool string) float64 {
	t.Helper()
	return testutil.ToFloat64(counterWith(t, reg, "loteria_inflight_bytes", "pool", pool))
}

// TestAnonymousPeersDoNotHoldBackAgencies: peers that never say which
// agency they are, announce frames and trickle them, spend only the
// anonymous share of the in-flight budget; an agency already connected
// keeps being served at once, and a new one can still name itself. (Before, 4,200 such peers held the whole
// budget and every agency waited for them to time out.)
func TestAnonymousPeersDoNotHoldBackAgencies(t *testing.T) {
	const budget = 1 << 20
	h := startCentral(t, central.Config{Agencies: 2, MaxInflightBytes: budget,
		HandshakeTimeout: time.Minute, IdleTimeout: time.Minute})
	good := dialRaw(t, h.addr)
	good.send("1;0\n")
	good.expect("success;Batch stored successfully.")

	anonLimit := testutil.ToFloat64(counterWith(t, h.reg, "loteria_inflight_limit_bytes", "pool", "anonymous"))
	if anonLimit <= 0 || anonLimit >= budget {
		t.Fatalf("anonymous share %v bytes, want some part of %d", anonLimit, budget)
	}
	// Frames whose charge (payload, three times it for rows, 512 B of
	// queue: docs/PROTOCOL.md) fills the share eight times over exactly,
	// so nothing is left of it; and more peers than the whole budget
	// holds, each announcing such a frame and sending one byte.
	size := (int(anonLimit)/8 - 512) / 4
	peers := budget/size + 10
	for range peers {
		p := dialRaw(t, h.addr)
		if _, err := fmt.Fprintf(p.nc, "%08d1", size); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the anonymous share to be spent", func() bool {
		return inflight(t, h.reg, "anonymous") == anonLimit
	})

	good.nc.SetDeadline(time.Now().Add(10 * time.Second))
	good.send("1;1\nAna;Pérez;30904465;1999-03-17;7574\n")
	good.expect("success;Batch stored successfully.")
	// A new agency can still say who it is: a small frame of an
	// anonymous peer pays nothing.
	late := dialRaw(t, h.addr)
	late.nc.SetDeadline(time.Now().Add(10 * time.Second))
	late.send("2;0\n")
	late.expect("success;Batch stored successfully.")
	// A charge is released once its ack is written, which the peer may
	// read first: wait for it, never past the deadline.
	testenv.Eventually(t, 10*time.Second, "the agencies' in-flight bytes to return to 0 once their batches are acked", func() bool {
		return inflight(t, h.reg, "agencies") == 0
	})
}

// TestLargeFirstBatchGetsThroughTricklers: a seed client whose first batch
// is over 1 KiB (it pays the anonymous share) is not kept waiting by peers
// that spent that share on frames they announce and trickle: its frame
// evicts the one that has held its charge longest. It used to wait for
// them to time out (HANDSHAKE_TIMEOUT, here a minute, and for ever if they
// kept coming), and be closed.
func TestLargeFirstBatchGetsThroughTricklers(t *testing.T) {
	const budget = 1 << 20
	h := startCentral(t, central.Config{Agencies: 1, MaxInflightBytes: budget,
		HandshakeTimeout: time.Minute, IdleTimeout: time.Minute})
	anonLimit := testutil.ToFloat64(counterWith(t, h.reg, "loteria_inflight_limit_bytes", "pool", "anonymous"))
	size := (int(anonLimit)/8 - 512) / 4 // eight such frames spend the share exactly
	var tricklers []*rawConn
	for range 8 {
		p := dialRaw(t, h.addr)
		if _, err := fmt.Fprintf(p.nc, "%08d1", size); err != nil {
			t.Fatal(err)
		}
		tricklers = append(tricklers, p)
		// One at a time, so the first is the oldest holder.
		want := float64(len(tricklers) * (4*size + 512))
		testenv.Eventually(t, 10*time.Second, "the trickler's charge to be taken", func() bool {
			return inflight(t, h.reg, "anonymous") == want
		})
	}
	var b strings.Builder
	n := 0
	for b.Len() < 2000 { // over the 1 KiB an anonymous frame may have for free
		fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 40000000+n, 1+n)
		n++
	}
	seed := dialRaw(t, h.addr)
	seed.nc.SetDeadline(time.Now().Add(10 * time.Second))
	seed.send(fmt.Sprintf("1;%d\n%s", n, b.String()))
	seed.expect("success;Batch stored successfully.")
	tricklers[0].expectClosed()
	testenv.Eventually(t, 5*time.Second, "the oldest trickler's eviction to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")) >= 1
	})
}

// TestSeedClientsDoNotEvictEachOther: seed clients whose first batches
// (over 1 KiB each) come together, more than the anonymous share holds,
// each on a slow link (two writes 100 ms apart), are all stored: a frame
// on its way is not a trickler, and a later one waits for room instead of
// taking its place. (helper-29: with any holder taken, 15 of 24 were closed
// without an ack.)
func TestSeedClientsDoNotEvictEachOther(t *testing.T) {
	const budget = 1 << 20 // an anonymous share of 256 KiB: about 8 frames of 7 KiB
	const agencies = 24
	h := startCentral(t, central.Config{Agencies: agencies, MaxInflightBytes: budget,
		HandshakeTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second})
	var wg sync.WaitGroup
	for a := 1; a <= agencies; a++ {
		wg.Go(func() {
			var b strings.Builder
			n := 0
			for b.Len() < 7000 {
				fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 40000000+a*1000+n, 1+n)
				n++
			}
			p := fmt.Sprintf("%d;%d\n%s", a, n, b.String())
			frame := fmt.Sprintf("%08d%s", len(p), p)
			nc, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(nc, frame[:len(frame)/2]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond) // the slow link, not a synchronisation
			if _, err := io.WriteString(nc, frame[len(frame)/2:]); err != nil {
				t.Errorf("agency %d: %v", a, err)
				return
			}
			want := "success;Batch stored successfully."
			got := make([]byte, 8+len(want))
			if _, err := io.ReadFull(nc, got); err != nil || string(got[8:]) != want {
				t.Errorf("agency %d: first batch answered %q (%v), want %q", a, got, err, want)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")); got != 0 {
		t.Errorf("evicted = %v, want 0: none of them trickled", got)
	}
}

// TestFrameTimeouts: a frame's payload has the handshake's time once its
// header is in, even on an agency's connection (whose silence between
// frames may last the idle timeout); an anonymous connection has it for
// every frame, and a refused frame does not buy it the idle timeout. The
// charge of a frame cut short is given back.
func TestFrameTimeouts(t *testing.T) {
	cases := []struct {
		name  string
		claim bool   // name agency 1 first
		send  string // raw bytes after that; then nothing
		ack   bool   // an error ack comes first
	}{
		{"trickled payload on an agency's connection", true, "00000100" + "1;1\nAna", false},
		{"trickled payload, anonymous", false, "00000100" + "1;1\nAna", false},
		{"nothing after a refused frame", false, "00000001" + "x", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startCentral(t, central.Config{Agencies: 1, HandshakeTimeout: 200 * time.Millisecond, IdleTimeout: 10 * time.Minute})
			c := dialRaw(t, h.addr)
			if tc.claim {
				c.send("1;0\n")
				c.expect("success;Batch stored successfully.")
			}
			if _, err := c.nc.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.ack {
				c.expectPrefix("error;")
			}
			c.nc.SetDeadline(time.Now().Add(10 * time.Second)) // the idle timeout is 10 min
			c.expectClosed()
			testenv.Eventually(t, 5*time.Second, "the close to be counted and the charge given back", func() bool {
				return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "idle_timeout")) == 1 &&
					inflight(t, h.reg, "agencies") == 0 && inflight(t, h.reg, "anonymous") == 0
			})
		})
	}
}

// TestLargeBatchesDoNotDeadlock: batches that together fill the in-flight
// budget are all stored and acknowledged. With the payload charged when
// its header was read and the rows when it had been parsed, three such
// batches each held a payload and waited for rows for ever.
func TestLargeBatchesDoNotDeadlock(t *testing.T) {
	const frame = 1 << 20
	h := startCentral(t, central.Config{Agencies: 3, MaxFrame: frame, MaxInflightBytes: 3 * frame})
	var payloads []string
	conns := make([]*rawConn, 3)
	for i := range conns {
		conns[i] = dialRaw(t, h.addr)
		conns[i].send(fmt.Sprintf("%d;0\n", i+1))
		conns[i].expect("success;Batch stored successfully.")
		var b strings.Builder
		n := 0
		for {
			line := fmt.Sprintf("Ana;Pérez;%d;1990-01-01;%d\n", 10000000+n, 1+n%9999)
			if b.Len()+len(line)+16 > frame {
				break
			}
			b.WriteString(line)
			n++
		}
		payloads = append(payloads, fmt.Sprintf("%d;%d\n", i+1, n)+b.String())
	}
	// Every header first, so each is charged before any batch is parsed.
	for i, c := range conns {
		if _, err := fmt.Fprintf(c.nc, "%08d", len(payloads[i])); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.nc.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.nc.Write([]byte(payloads[i])); err != nil {
				t.Error(err)
				return
			}
			p, err := readFrame(c)
			if err != nil || p != "success;Batch stored successfully." {
				t.Errorf("agency %d: ack %q, %v; want success", i+1, p, err)
			}
		})
	}
	wg.Wait()
}

// readFrame reads one frame's payload (for goroutines, which must not
// call t.Fatal).
func readFrame(c *rawConn) (string, error) {
	p, err := wire.ReadFrame(c.br, nil, 1<<20)
	return string(p), err
}

// TestAnonymousFrameSize: until a connection says which agency it is, a
// frame is at most a seed client's 8 KiB, and the refusal says what to do;
// once it has, MAX_FRAME_BYTES holds.
func TestAnonymousFrameSize(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1})
	var b strings.Builder
	n := 0
	for b.Len() < 9000 {
		fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 20000000+n, 1+n)
		n++
	}
	batch := fmt.Sprintf("1;%d\n", n) + b.String()

	anon := dialRaw(t, h.addr)
	anon.send(batch)
	if msg := anon.expectPrefix("error;"); !strings.Contains(msg, "8192") || !strings.Contains(msg, "HELLO") {
		t.Errorf("refusal %q does not give the limit and what to send first", msg)
	}
	anon.expectClosed()

	named := dialRaw(t, h.addr)
	named.send("1;0\n")
	named.expect("success;Batch stored successfully.")
	named.send(batch)
	named.expect("success;Batch stored successfully.")
}

// TestAnonymousRefusalsDoNotPipeline: a peer whose batches name no agency
// of the central stays anonymous, and its small frames pay no budget; it
// gets one refusal at a time, so one that never reads its acks holds one
// batch, not a pipeline of them (a review found 1,302 taken in). Over
// net.Pipe, a write finishes only when the central has read it.
func TestAnonymousRefusalsDoNotPipeline(t *testing.T) {
	ln := newPipeListener()
	startCentral(t, central.Config{Agencies: 1}, withListener(ln))
	nc := ln.dial(t)
	payload := "0;1\nAna;Pérez;12a;1990-01-01;5\n" // agency 0: refused, and the connection stays anonymous
	frame := []byte(fmt.Sprintf("%08d%s", len(payload), payload))
	sent := 0
	for sent < 2*central.DefaultMaxPipeline {
		// The central stops reading when it waits for the ack it cannot
		// write; a write it does not take within a second shows where.
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(frame); errors.Is(err, os.ErrDeadlineExceeded) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if sent > 2 {
		t.Fatalf("the central took in %d refused batches of an anonymous peer that reads no ack, want at most 2", sent)
	}
}

// TestBudgetComesBackToZero drives sequences that end a frame or a
// connection early and checks that every charge goes back, to its pool:
// both pools hold nothing once the connections are gone, and nothing after
// a shutdown with frames in flight.
func TestBudgetComesBackToZero(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 3, HandshakeTimeout: 500 * time.Millisecond})
	big := func(agency, bytes, from int) string {
		var b strings.Builder
		n := 0
		for b.Len() < bytes {
			fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 30000000+from+n, 1+n)
			n++
		}
		return fmt.Sprintf("%d;%d\n", agency, n) + b.String()
	}
	zero := func(what string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, what+": both pools back to 0", func() bool {
			return inflight(t, h.reg, "agencies") == 0 && inflight(t, h.reg, "anonymous") == 0
		})
	}
	charged := func(what, pool string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, what+": a charge in "+pool, func() bool { return inflight(t, h.reg, pool) > 0 })
	}

	a := dialRaw(t, h.addr)
	a.send("garbage")
	a.expectPrefix("error;")
	a.send(big(9, 4000, 0)) // no such agency: refused, still anonymous
	a.expectPrefix("error;")
	a.nc.Close()
	zero("anonymous refusals")

	n := dialRaw(t, h.addr)
	n.send(big(1, 4000, 0)) // names agency 1, charged to the anonymous share
	n.expect("success;Batch stored successfully.")
	n.send(big(1, 30000, 1000))
	n.expect("success;Batch stored successfully.")
	n.send("1;1\nAna;Pérez;12a;1990-01-01;5\n")
	n.expectPrefix("error;")
	n.send(big(2, 3000, 5000)) // another agency's batch
	n.expectPrefix("error;")
	n.send("1;1;from=999999\nAna;Pérez;1;1990-01-01;5\n") // a gap
	n.expectPrefix("error;")
	d := dialRaw(t, h.addr)
	d.send(big(1, 4000, 9000)) // agency 1 is connected
	d.expectPrefix("error;")
	d.expectClosed()
	n.send(string(wire.AppendHello(nil, wire.Hello{Version: 1, Agency: 1, Fingerprint: "ab", Total: -1}))) // HELLO not first
	n.expectPrefix("error;")
	n.expectClosed()
	zero("an agency's refusals")

	m := dialRaw(t, h.addr)
	fmt.Fprintf(m.nc, "%08d%s", 5000, "1;1\nAna") // anonymous, cut short
	charged("anonymous frame cut short", "anonymous")
	m.nc.Close()
	hold := dialRaw(t, h.addr)
	hold.send("2;0\n")
	hold.expect("success;Batch stored successfully.")
	fmt.Fprintf(hold.nc, "%08d%s", 50000, "2;1\nAna") // an agency's, cut short
	charged("agency's frame cut short", "agencies")
	hold.nc.Close()
	zero("frames cut short")

	var conns []*rawConn
	for range 3 {
		c := dialRaw(t, h.addr)
		fmt.Fprintf(c.nc, "%08d%s", 6000, "1;1\nAna")
		conns = append(conns, c)
	}
	s := dialRaw(t, h.addr)
	s.send("1;0\n")
	s.expect("success;Batch stored successfully.")
	for i := range 20 {
		b := big(1, 20000, 100000+i*1000)
		fmt.Fprintf(s.nc, "%08d%s", len(b), b)
	}
	fmt.Fprintf(s.nc, "%08d%s", 60000, "1;1\nAna")
	charged("frames in flight at shutdown", "agencies")
	if err := h.stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	if a, n := inflight(t, h.reg, "agencies"), inflight(t, h.reg, "anonymous"); a != 0 || n != 0 {
		t.Errorf("after shutdown the pools hold %v and %v bytes, want 0 and 0", a, n)
	}
}

// TestOneAgencyHoldsAtMostItsShare: an agency that sends without reading
// its acks holds at most its share of the in-flight budget (a sixteenth,
// at least one frame) before its reader waits for its own acks; another
// agency is served meanwhile. Without shares it took in batches until the
// whole budget was spent (165 here, 19 with them), so every other agency
// waited for room whenever its batches were in flight.
func TestOneAgencyHoldsAtMostItsShare(t *testing.T) {
	const budget = 256 << 10 // 512 batches' queue charges: one agency alone could spend it
	ln := newPipeListener()
	h := startCentral(t, central.Config{Agencies: 2, MaxFrame: 8192, MaxInflightBytes: budget}, withListener(ln))
	greedy := newRawConn(t, ln.dial(t))
	greedy.nc.SetDeadline(time.Now().Add(10 * time.Second))
	greedy.send("1;0\n")
	greedy.expect("success;Batch stored successfully.")
	var b strings.Builder
	n := 0
	for b.Len() < 1000 {
		fmt.Fprintf(&b, "Ana;Pérez;%d;1990-01-01;%d\n", 40000000+n, 1+n)
		n++
	}
	frame := []byte(fmt.Sprintf("%08d%d;%d\n%s", len(b.String())+len(fmt.Sprintf("1;%d\n", n)), 1, n, b.String()))
	sent := 0
	for sent < central.DefaultMaxPipeline {
		// The reader stops when the share is spent; a write it does not
		// take within a second shows where.
		greedy.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := greedy.nc.Write(frame); errors.Is(err, os.ErrDeadlineExceeded) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// Each batch holds at least 512 B until its ack is read (its rows
	// until it is durable): the share, here one frame's charge (4 x 8,192
	// + 512 B, more than a sixteenth of the budget), holds at most 65.
	share := max(budget/16, 4*8192+512)
	if max := share/512 + 2; sent > max {
		t.Fatalf("one agency that reads no ack had %d batches taken in, want at most %d (its share)", sent, max)
	}
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_connection_share_waits_total", "", "")); got < 1 {
		t.Errorf("share waits %v, want at least 1", got)
	}
	other := newRawConn(t, ln.dial(t))
	other.nc.SetDeadline(time.Now().Add(10 * time.Second))
	other.send("2;1\nLuis;Gómez;30904466;1990-01-01;7574\n")
	other.expect("success;Batch stored successfully.")
	t.Logf("the greedy agency had %d batches taken in before its reader waited", sent)
}
