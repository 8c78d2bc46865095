package central_test

// Races between a connection's reader and the events that are
// meant to wake it (shutdown, a TLS replacement). The reader checks a flag
// (shuttingDown, replaced) and then sets its own read deadline; the waker
// sets the flag and then a deadline of "now". If the waker's deadline lands
// between the reader's check and its SetReadDeadline, the reader's later
// deadline overwrites it and the reader sleeps in a read for IdleTimeout.
//
// The window is a few instructions wide; gateConn widens it the way a
// preemption would: it holds the reader's idle-timeout SetReadDeadline
// until the waker's "now" deadline has been set.

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/certs/certstest"
	"github.com/loteria/loteria/services/internal/wire"
)

// gateListener wraps accepted connections in gateConns.
type gateListener struct {
	net.Listener
	armed   atomic.Bool
	entered chan struct{} // closed when a reader is held in the window
	woken   chan struct{} // closed when a "now" read deadline was set
	once1   sync.Once
	once2   sync.Once
}

func newGateListener(ln net.Listener) *gateListener {
	return &gateListener{Listener: ln, entered: make(chan struct{}), woken: make(chan struct{})}
}

func (l *gateListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gateConn{Conn: nc, l: l}, nil
}

type gateConn struct {
	net.Conn
	l *gateListener
}

func (c *gateConn) SetReadDeadline(t time.Time) error {
	return c.gate(t, c.Conn.SetReadDeadline)
}

func (c *gateConn) SetDeadline(t time.Time) error {
	return c.gate(t, c.Conn.SetDeadline)
}

func (c *gateConn) gate(t time.Time, set func(time.Time) error) error {
	l := c.l
	now := time.Now()
	switch {
	case !t.IsZero() && t.Before(now.Add(100*time.Millisecond)):
		// the waker's "now"
		err := set(t)
		l.once2.Do(func() { close(l.woken) })
		return err
	case l.armed.Load() && t.After(now.Add(30*time.Second)):
		// the reader's IdleTimeout deadline, after it found no reason to stop
		l.once1.Do(func() { close(l.entered) })
		select {
		case <-l.woken:
		case <-time.After(5 * time.Second):
		}
	}
	return set(t)
}

// TestShutdownWhileTheReaderSetsItsDeadline: a named, idle connection whose
// reader is between its shuttingDown check and its SetReadDeadline when
// Serve's context is cancelled. Serve should return at once (the
// connection is idle, nothing is in flight); it waits the whole
// ShutdownTimeout and then force-closes.
func TestShutdownWhileTheReaderSetsItsDeadline(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := newGateListener(base)
	gl.armed.Store(true)
	cfg := central.Config{Agencies: 2, IdleTimeout: 60 * time.Second, ShutdownTimeout: 8 * time.Second}
	h := startCentral(t, cfg, withListener(gl))
	c := dialRaw(t, h.addr)
	c.send("1;0")
	c.expect(wire.AckSuccess)
	select {
	case <-gl.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader never set its idle deadline")
	}
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Serve took %v to return after cancel with one idle connection (ShutdownTimeout %v): the shutdown's wake-up was overwritten by the reader's deadline", took.Round(time.Millisecond), cfg.ShutdownTimeout)
	}
}

// TestTLSReplacementWhileTheReaderSetsItsDeadline: the older connection's
// reader is between its replaced check and its SetReadDeadline when a
// newer connection of its agency claims it. The older one should be closed
// at once and the newer served; instead the older keeps being served (its
// batches acknowledged) while the newer waits replaceWait (5 s) before its
// HELLO is even read.
func TestTLSReplacementWhileTheReaderSetsItsDeadline(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := newGateListener(base)
	p := newPKI(t)
	h := startTLSCentral(t, p, central.Config{Agencies: 1, IdleTimeout: 60 * time.Second}, withTLSListener(gl))
	pair := certstest.Agency(t, p.ca, 1)
	old, err := dialTLS(t, h.addr, p, "old", pair, p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	gl.armed.Store(true)
	old.hello(1, "cc", 0)
	select {
	case <-gl.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the older reader never set its idle deadline")
	}
	fresh, err := dialTLS(t, h.addr, p, "new", pair, p.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fresh.hello(1, "cc", 0)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the newer connection's WELCOME took %v: it waited for an older connection that was never told to stop", took.Round(time.Millisecond))
	}
	// The older one, replaced, still has its batches stored and acknowledged.
	old.nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(old.nc, "%08d%s", len(batchFrom(1, 0, 2, nil)), batchFrom(1, 0, 2, nil)); err == nil {
		if p, err := wire.ReadFrame(old.br, nil, 1<<20); err == nil {
			t.Errorf("the replaced connection is still served: its batch got %q after the newer connection's WELCOME", p)
		}
	}
}
