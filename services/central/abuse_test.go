package central_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

// TestBadFramesEndOnlyTheirConnection sends each kind of bad frame on its
// own connection while a good agency keeps sending, and checks the bad one
// is told why and dropped, the good one is untouched and nothing
// acknowledged is lost.
func TestBadFramesEndOnlyTheirConnection(t *testing.T) {
	cases := []struct {
		name   string
		send   string // raw bytes
		half   bool   // close our side after sending (truncation)
		reason string // loteria_protocol_errors_total reason
	}{
		{"header with letters", "0000x003END", false, "bad_header"},
		{"header with spaces", "     3  END", false, "bad_header"},
		{"negative length", "-0000003END", false, "bad_header"},
		{"over the limit", "00065537" + strings.Repeat("a", 10), false, "frame_too_large"},
		{"max eight digits", "99999999", false, "frame_too_large"},
		{"truncated payload", "00000100" + "1;1\nAna", true, "truncated_frame"},
		{"truncated header", "0000", true, "truncated_frame"},
	}
	h := startCentral(t, central.Config{Agencies: 1, MaxFrame: 64 << 10})
	good := dialRaw(t, h.addr)
	good.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	good.expect("success;Batch stored successfully.")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(counterWith(t, h.reg, "loteria_protocol_errors_total", "reason", tc.reason))
			bad := dialRaw(t, h.addr)
			if _, err := bad.nc.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.half {
				bad.nc.(interface{ CloseWrite() error }).CloseWrite()
			}
			bad.expectPrefix("error;")
			bad.expectClosed()
			testenv.Eventually(t, 5*time.Second, "the protocol error to be counted", func() bool {
				return testutil.ToFloat64(counterWith(t, h.reg, "loteria_protocol_errors_total", "reason", tc.reason)) == before+1
			})
			// The good agency goes on as if nothing happened.
			good.send("1;1\nLuis;Gómez;2;1990-01-01;1\n")
			good.expect("success;Batch stored successfully.")
		})
	}
	good.send("END")
	good.expect("1")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(testenv.ReadStore(t, h.store)), 1+len(cases); got != want {
		t.Errorf("store holds %d bets, want the %d acknowledged", got, want)
	}
}

// TestInvalidBatchesStoreNothing checks each validation rule: the whole
// batch is refused with a message naming the line, and nothing of it is
// stored.
func TestInvalidBatchesStoreNothing(t *testing.T) {
	good := "Ana;Pérez;1;1990-01-01;5\n"
	cases := []struct {
		name, payload, wantMsg string
	}{
		{"count larger than lines", "1;3\n" + good + good, "announces 3"},
		{"count smaller than lines", "1;1\n" + good + good, "line 3"},
		{"four fields", "1;2\n" + good + "Ana;Pérez;1;1990-01-01\n", "line 3"},
		{"six fields", "1;2\n" + good + "Ana;Pérez;1;1990-01-01;5;6\n", "line 3"},
		{"empty first name", "1;2\n" + good + ";Pérez;1;1990-01-01;5\n", "line 3: empty first name"},
		{"empty last name", "1;2\n" + good + "Ana;;1;1990-01-01;5\n", "line 3: empty last name"},
		{"document not decimal", "1;2\n" + good + "Ana;Pérez;12a;1990-01-01;5\n", "line 3"},
		{"number not decimal", "1;2\n" + good + "Ana;Pérez;1;1990-01-01;x\n", "line 3"},
		{"number over 9999", "1;2\n" + good + "Ana;Pérez;1;1990-01-01;10000\n", "line 3"},
		{"no such day", "1;2\n" + good + "Ana;Pérez;1;1999-02-30;5\n", "line 3: birthdate is not a real date"},
		{"not a date", "1;2\n" + good + "Ana;Pérez;1;30/01/1990;5\n", "line 3"},
		{"agency out of range", "7;1\n" + good, "agency 7"},
		{"agency zero", "0;1\n" + good, "agency 0"},
		{"header not numbers", "uno;1\n" + good, "line 1"},
		{"no header separator", "1\n" + good, "line 1"},
		{"invalid UTF-8 name", "1;1\nAn\xffa;Pérez;1;1990-01-01;5\n", "line 2"},
	}
	h := startCentral(t, central.Config{Agencies: 2})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, h.addr)
			c.send(tc.payload)
			msg := c.expectPrefix("error;")
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error ack %q does not mention %q", msg, tc.wantMsg)
			}
			// The connection stays open after an error ack.
			c.send("1;0\n")
			c.expect("success;Batch stored successfully.")
			h.hangUp(t, c)
		})
	}
	t.Run("agency changes on one connection", func(t *testing.T) {
		c := dialRaw(t, h.addr)
		c.send("1;1\n" + good)
		c.expect("success;Batch stored successfully.")
		c.send("2;1\n" + good)
		if msg := c.expectPrefix("error;"); !strings.Contains(msg, "agency 2 on a connection of agency 1") {
			t.Errorf("error ack %q", msg)
		}
	})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(testenv.ReadStore(t, h.store)); got != 1 {
		t.Errorf("store holds %d bets, want only the 1 valid one", got)
	}
}

// TestIdlePeerTimesOut: a peer that stops mid-conversation is dropped.
func TestIdlePeerTimesOut(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 1, IdleTimeout: 100 * time.Millisecond})
	c := dialRaw(t, h.addr)
	c.expectClosed()
	testenv.Eventually(t, 5*time.Second, "the idle close to be counted", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "idle_timeout")) == 1
	})
}

// TestConnectionCap: connections over the cap are told and closed; those
// under it are served.
func TestConnectionCap(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 3, MaxConnections: 2})
	a := dialRaw(t, h.addr)
	b := dialRaw(t, h.addr)
	// Make sure both are being served before the third arrives.
	a.send("1;0\n")
	a.expect("success;Batch stored successfully.")
	b.send("2;0\n")
	b.expect("success;Batch stored successfully.")
	third := dialRaw(t, h.addr)
	if msg := third.expectPrefix("error;"); !strings.Contains(msg, "connection limit") {
		t.Errorf("refusal %q does not say why", msg)
	}
	third.expectClosed()
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_rejected_total", "reason", "limit")); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
	// Once one closes, a new one is served.
	a.nc.Close()
	testenv.Eventually(t, 5*time.Second, "a slot to free up", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_connected", "", "")) == 1
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		d := dialRaw(t, h.addr)
		d.send("1;0\n")
		d.expect("success;Batch stored successfully.")
	})
	wg.Wait()
}

// TestUnnamedConnectionHasOneHandshakeTime: a connection that never names
// its agency is closed HANDSHAKE_TIMEOUT after it connected, however many
// frames it sends. Each refused frame used to buy another
// HANDSHAKE_TIMEOUT, so a peer sending one now and then held its place
// for ever (helper-27: 19,940 such peers held every place under the
// default cap, and a real agency got "busy" until it gave up).
func TestUnnamedConnectionHasOneHandshakeTime(t *testing.T) {
	const handshake = 300 * time.Millisecond
	h := startCentral(t, central.Config{Agencies: 1, HandshakeTimeout: handshake, IdleTimeout: 10 * time.Minute})
	start := time.Now()
	c := dialRaw(t, h.addr) // its deadline, 20 s, ends the loop if the central never closes
	frames := 0
	for {
		if _, err := c.nc.Write([]byte("00000001x")); err != nil {
			break // closed while we wrote
		}
		p, err := wire.ReadFrame(c.br, nil, 1<<20)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("still open after %d refused frames and %s: an unnamed connection has %s from its accept", frames, time.Since(start).Round(time.Millisecond), handshake)
			}
			break
		}
		if !strings.HasPrefix(string(p), "error;") {
			t.Fatalf("frame %d: got %q, want a refusal", frames+1, p)
		}
		frames++
	}
	if took := time.Since(start); took < handshake {
		t.Errorf("closed after %s, before the handshake timeout (%s)", took, handshake)
	}
	testenv.Eventually(t, 5*time.Second, "the close to be counted as an idle timeout", func() bool {
		return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "idle_timeout")) == 1
	})
	t.Logf("closed after %d refused frames", frames)
}

// TestConnectionCapEvictsTheOldestUnnamed: at the connection cap a new
// connection takes the place of the oldest one that has not named its
// agency, so peers that never name one cannot lock the agencies out; a
// connection that named its agency is never evicted.
func TestConnectionCapEvictsTheOldestUnnamed(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 3, MaxConnections: 2, HandshakeTimeout: time.Minute, IdleTimeout: time.Minute})
	connected := func(n float64) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%v connections to be served", n), func() bool {
			return testutil.ToFloat64(counterWith(t, h.reg, "loteria_agencies_connected", "", "")) == n
		})
	}
	oldest := dialRaw(t, h.addr)
	connected(1)
	newer := dialRaw(t, h.addr)
	connected(2)

	// At the cap: agency 1 gets in, in the oldest unnamed one's place.
	a1 := dialRaw(t, h.addr)
	a1.send("1;0\n")
	a1.expect("success;Batch stored successfully.")
	oldest.expectClosed()
	newer.send("x") // still served: its frame is refused, not dropped
	newer.expectPrefix("error;")
	evicted := func(n float64) {
		t.Helper()
		// Counted as the evicted connection's goroutine ends.
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%v evictions to be counted", n), func() bool {
			return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")) == n
		})
	}
	evicted(1)
	if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_rejected_total", "reason", "limit")); got != 0 {
		t.Errorf("rejected = %v, want 0 while an unnamed connection could make room", got)
	}

	// Agency 2 takes the place of the last unnamed one.
	connected(2)
	a2 := dialRaw(t, h.addr)
	a2.send("2;0\n")
	a2.expect("success;Batch stored successfully.")
	newer.expectClosed()

	// Both places are agencies': a new connection is refused, and no
	// agency is evicted for it.
	connected(2)
	third := dialRaw(t, h.addr)
	if msg := third.expectPrefix("error;"); !strings.Contains(msg, "connection limit") {
		t.Errorf("refusal %q does not say why", msg)
	}
	third.expectClosed()
	for i, c := range []*rawConn{a1, a2} {
		c.send(fmt.Sprintf("%d;1\nAna;Pérez;3090446%d;1990-01-01;5\n", i+1, i))
		c.expect("success;Batch stored successfully.")
	}
	evicted(2)
}

// TestUnreadAcksHoldTheBudget: a peer that sends refused batches and never
// reads their acks makes the central hold at most the in-flight budget's
// worth of them, not a whole pipeline (1,024 slots) per connection: a
// refused batch holds no rows, so only the charge every queued batch pays
// bounds them. Over net.Pipe, whose writes finish only when the central
// has read them, the frames written are the frames it took in.
func TestUnreadAcksHoldTheBudget(t *testing.T) {
	const budget = 16 << 10 // 32 queued batches at 512 B each
	ln := newPipeListener()
	startCentral(t, central.Config{Agencies: 1, MaxInflightBytes: budget}, withListener(ln))
	nc := ln.dial(t)
	payload := "1;1\nAna;Pérez;12a;1990-01-01;5\n" // refused: the document is not decimal
	frame := []byte(fmt.Sprintf("%08d%s", len(payload), payload))
	sent := 0
	for sent < 2*central.DefaultMaxPipeline {
		// The central stops reading when its budget is spent; a write it
		// does not take within a second shows where it stopped.
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := nc.Write(frame)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if n > 0 { // the central took part of it: it is in
				rest := frame[n:]
				go func() { nc.SetWriteDeadline(time.Time{}); nc.Write(rest) }()
				sent++
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	t.Logf("the central took in %d refused batches before it stopped reading", sent)
	if max := budget/512 + 4; sent > max {
		t.Fatalf("the central took in %d refused batches whose acks nobody read, want at most %d (the budget's worth)", sent, max)
	}
	// Every batch it took in is answered, in order, once the peer reads.
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := newRawConn(t, nc)
	for i := range sent {
		if msg := c.expectPrefix("error;"); !strings.Contains(msg, "line 2") {
			t.Fatalf("ack %d: %q, want the refusal of line 2", i+1, msg)
		}
	}
}

// pipeListener serves net.Pipe connections: a write to one finishes only
// when the other side has read it, so a test sees exactly what was read.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the central, closing the connection when the test ends.
func (l *pipeListener) dial(t *testing.T) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	select {
	case l.conns <- server:
	case <-l.closed:
		t.Fatal("the central stopped listening")
	}
	t.Cleanup(func() { client.Close() })
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
