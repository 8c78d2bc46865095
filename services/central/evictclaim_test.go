package central_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/wire"
)

// gatedTracer holds the first start of the span named span until gate
// closes, after telling named: the central has read that frame and not
// yet claimed its agency.
type gatedTracer struct {
	trace.Tracer
	span        string
	calls       atomic.Int32
	named, gate chan struct{}
}

func (g *gatedTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name == g.span && g.calls.Add(1) == 1 {
		g.named <- struct{}{}
		<-g.gate
	}
	return g.Tracer.Start(ctx, name, opts...)
}

// TestPlainConnectionEvictedBeforeItsClaimIsNotAlreadyConnected: a
// plaintext connection closed to make room after its first frame was read
// but before that frame claimed the agency used to be counted as a second
// connection of the agency (loteria_connections_rejected_total and
// loteria_batches_received_total with already_connected), which reads as
// an agency connecting twice. It is counted as evicted, stores nothing,
// and the agency's next connection is served.
func TestPlainConnectionEvictedBeforeItsClaimIsNotAlreadyConnected(t *testing.T) {
	for _, tc := range []struct {
		name, span, frame string
		evictedBatches    float64 // loteria_batches_received_total{result="evicted"}
	}{
		{"a batch", "central.batch", "1;1\nAna;Pérez;1;1990-01-01;7574\n", 1},
		{"a HELLO", "central.hello", "HELLO;v=1;agency=1;fp=cafe", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &gatedTracer{Tracer: noop.NewTracerProvider().Tracer(""), span: tc.span,
				named: make(chan struct{}), gate: make(chan struct{})}
			h := startCentral(t, central.Config{Agencies: 1, MaxConnections: 1, HandshakeTimeout: time.Minute},
				withDeps(central.Deps{Tracer: tr}))
			release := sync.OnceFunc(func() { close(tr.gate) })
			t.Cleanup(release) // before the central's stop, which waits for the held connection

			first := dialRaw(t, h.addr)
			first.send(tc.frame)
			select {
			case <-tr.named: // its frame is read; it names no agency yet
			case <-time.After(10 * time.Second):
				t.Fatal("the central did not start on the first connection's frame in 10 s")
			}

			// At the cap, a new connection evicts the first, still unnamed.
			second := dialRaw(t, h.addr)
			first.expectClosed()
			release()
			testenv.Eventually(t, 5*time.Second, "the evicted connection to end", func() bool {
				return testutil.ToFloat64(counterWith(t, h.reg, "loteria_connections_closed_total", "reason", "evicted")) == 1
			})
			second.send("1;1\nBeto;Gómez;2;1991-02-02;1\n")
			second.expect(wire.AckSuccess)

			for _, c := range []struct{ metric, label, value string }{
				{"loteria_connections_rejected_total", "reason", "already_connected"},
				{"loteria_batches_received_total", "result", "already_connected"},
			} {
				if got := testutil.ToFloat64(counterWith(t, h.reg, c.metric, c.label, c.value)); got != 0 {
					t.Errorf("%s{%s=%q} = %v, want 0: only one connection named the agency", c.metric, c.label, c.value, got)
				}
			}
			if got := testutil.ToFloat64(counterWith(t, h.reg, "loteria_batches_received_total", "result", "evicted")); got != tc.evictedBatches {
				t.Errorf(`loteria_batches_received_total{result="evicted"} = %v, want %v`, got, tc.evictedBatches)
			}
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			rows := testenv.ReadStore(t, h.store)
			if len(rows) != 1 || rows[0].First != "Beto" {
				t.Fatalf("the store holds %d rows, want only the second connection's bet", len(rows))
			}
		})
	}
}
