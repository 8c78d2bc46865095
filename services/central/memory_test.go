package central_test

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

// fullBatch is a batch of agency a filling an 8 KiB frame, as our agency
// packs them.
func fullBatch(a int) string {
	var b strings.Builder
	n := 0
	var lines strings.Builder
	for {
		line := fmt.Sprintf("María José;Abadía Fernández;%d;1987-11-23;%d\n", 30_000_000+a*1000+n, n%10000)
		if wire.HeaderLen+len(fmt.Sprintf("%d;%d\n", a, n+1))+lines.Len()+len(line) > wire.MaxAgencyFrame {
			break
		}
		lines.WriteString(line)
		n++
	}
	fmt.Fprintf(&b, "%d;%d\n", a, n)
	b.WriteString(lines.String())
	return b.String()
}

// heapAndStacks is the memory Go holds for objects and goroutine stacks,
// after the collector has run (and shrunk idle stacks).
func heapAndStacks() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// idleConnectionCost opens n connections that each send one full 8 KiB
// batch, read its ack and stay idle, and returns the bytes they cost per
// connection (the client side's sockets included, a few hundred bytes).
func idleConnectionCost(tb testing.TB, n int) float64 {
	h := startCentral(tb, central.Config{Agencies: n, IdleTimeout: time.Hour})
	ack := make([]byte, wire.HeaderLen+len(wire.AckSuccess))
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := heapAndStacks()
	for i := range n {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := wire.WriteFull(c, wire.AppendFrame(nil, []byte(fullBatch(i+1)))); err != nil {
			tb.Fatal(err)
		}
		if _, err := readFull(c, ack); err != nil || string(ack[wire.HeaderLen:]) != wire.AckSuccess {
			tb.Fatalf("connection %d: ack %q, %v", i, ack, err)
		}
	}
	after := heapAndStacks()
	return float64(int64(after)-int64(before)) / float64(n)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestIdleConnectionMemoryBound: after real traffic (a full 8 KiB batch
// each), an idle connection holds no read buffer, no parse scratch, no
// payload or rows: under 16 KiB each, counted in-process (heap and
// stacks; the sockets' kernel buffers are not Go's).
func TestIdleConnectionMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 500 connections")
	}
	per := idleConnectionCost(t, 500)
	t.Logf("%.1f KiB per idle connection after a full 8 KiB batch (heap + stacks, in-process)", per/1024)
	if per > 16<<10 {
		t.Errorf("an idle connection costs %.1f KiB after a full batch, want under 16 KiB", per/1024)
	}
}

// BenchmarkIdleConnectionMemory reports the same figure as a metric.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for range b.N {
		b.ReportMetric(idleConnectionCost(b, 2000)/1024, "KiB/conn")
	}
}
