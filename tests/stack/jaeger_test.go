package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

const (
	agencyService  = "loteria-agency"
	centralService = "loteria-central"
)

// TestTracesReachJaeger sends a real run's traces over OTLP/gRPC to a real
// Jaeger and reads them back through its query API: an agency's batch span
// and the central's span for that batch are one trace, parent and child,
// and the central's span has its validation and storage children.
func TestTracesReachJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the system and Jaeger")
	}
	dir := testenv.OfficialDataDir(t)
	j := StartJaeger(t)
	start := time.Now()
	sys := RunSystem(t, SystemOptions{
		DataDir: dir,
		Env: []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.OTLPGRPCEndpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_BSP_SCHEDULE_DELAY=200",
		},
		Linger: -1, // the agencies exit, flushing their spans, once they have their winners
	})
	ran := time.Since(start)

	// Every program flushes its spans on the way out: stop the central and
	// let the agencies finish, so everything has been sent to Jaeger.
	if err := sys.StopCentral(15 * time.Second); err != nil {
		t.Fatalf("central after SIGTERM: %v", err)
	}
	for _, a := range sys.Agencies {
		if err := a.Process.Wait(15 * time.Second); err != nil {
			t.Fatalf("agency %d: %v", a.ID, err)
		}
	}
	for _, p := range append([]*Process{sys.Central}, agencyProcs(sys)...) {
		if strings.Contains(p.Stderr(), "flush traces") {
			t.Errorf("%s could not flush its spans:\n%s", p.Name, grepLines(p.Stderr(), "flush traces"))
		}
	}
	stopped := time.Now()

	ctx := context.Background()
	const budget = 30 * time.Second

	// Operations: every span the issue asks for reaches the backend.
	for _, c := range []struct {
		service string
		ops     []string
	}{
		{agencyService, []string{"agency.send_batch", "agency.wait_winners"}},
		{centralService, []string{"central.batch", "central.validate", "central.store", "central.draw", "central.barrier_wait", "central.send_winners"}},
	} {
		t.Run("operations/"+c.service, func(t *testing.T) {
			Poll(t, budget, c.service+"'s operations", func() error {
				got, err := j.Operations(ctx, c.service)
				if err != nil {
					return err
				}
				var missing []string
				for _, op := range c.ops {
					if !slices.Contains(got, op) {
						missing = append(missing, op)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("missing %v; has %v", missing, got)
				}
				return nil
			})
		})
	}

	// One batch, end to end: agency.send_batch → central.batch →
	// {central.validate, central.store}.
	t.Run("batch trace", func(t *testing.T) {
		var linked string
		Poll(t, budget, "an agency batch trace joined by the central", func() error {
			traces, err := j.FindTraces(ctx, TraceQuery{Service: agencyService, Operation: "agency.send_batch", Limit: 20})
			if err != nil {
				return err
			}
			if len(traces) == 0 {
				return fmt.Errorf("no trace with agency.send_batch yet")
			}
			var last error
			for _, tr := range traces {
				if linked, last = checkBatchTrace(tr); last == nil {
					return nil
				}
			}
			return fmt.Errorf("%d traces, none complete; e.g. %v", len(traces), last)
		})
		t.Log(linked)
	})

	// Every central.batch span has the agency's span as its parent: no
	// batch lost its traceparent on the way.
	t.Run("every central batch has its agency parent", func(t *testing.T) {
		batches := 0
		Poll(t, budget, "every central.batch span parented by an agency.send_batch span", func() error {
			traces, err := j.FindTraces(ctx, TraceQuery{Service: centralService, Operation: "central.batch", Limit: 5000})
			if err != nil {
				return err
			}
			batches = 0
			orphans := 0
			var example string
			for _, tr := range traces {
				for _, s := range tr.Find(centralService, "central.batch") {
					batches++
					p, ok := tr.Span(s.ParentID())
					if !ok || p.OperationName != "agency.send_batch" || p.Service != agencyService {
						orphans++
						example = fmt.Sprintf("trace %s span %s (parent %q: %s %s)", tr.TraceID, s.SpanID, s.ParentID(), p.Service, p.OperationName)
					}
				}
			}
			if batches == 0 {
				return fmt.Errorf("no central.batch span yet")
			}
			if orphans > 0 {
				return fmt.Errorf("%d of %d central.batch spans lack their agency parent, e.g. %s", orphans, batches, example)
			}
			return nil
		})
		t.Logf("%d central.batch spans, each the child of its agency's agency.send_batch", batches)
	})

	t.Run("one draw", func(t *testing.T) {
		Poll(t, budget, "the central.draw span", func() error {
			traces, err := j.FindTraces(ctx, TraceQuery{Service: centralService, Operation: "central.draw", Limit: 10})
			if err != nil {
				return err
			}
			n := 0
			for _, tr := range traces {
				n += len(tr.Find(centralService, "central.draw"))
			}
			if n != 1 {
				return fmt.Errorf("%d central.draw spans, want 1", n)
			}
			return nil
		})
	})
	t.Logf("run %s; central stopped and agencies exited %s later; traces read %s after that",
		ran.Round(time.Millisecond), stopped.Sub(start.Add(ran)).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
}

// checkBatchTrace looks in tr for an agency.send_batch span with a
// central.batch child for the same agency and seq, which has
// central.validate and central.store children; it describes what it found
// or says what is missing.
func checkBatchTrace(tr Trace) (string, error) {
	sends := tr.Find(agencyService, "agency.send_batch")
	if len(sends) == 0 {
		return "", fmt.Errorf("trace %s: no agency.send_batch span of %s", tr.TraceID, agencyService)
	}
	var last error
	for _, send := range sends {
		var batch *Span
		for _, c := range tr.Children(send.SpanID) {
			if c.OperationName == "central.batch" && c.Service == centralService {
				batch = &c
				break
			}
		}
		if batch == nil {
			last = fmt.Errorf("trace %s: agency.send_batch %s has no central.batch child of %s (spans: %s)",
				tr.TraceID, send.SpanID, centralService, describeSpans(tr))
			continue
		}
		for _, key := range []string{"loteria.agency.id", "loteria.batch.seq", "loteria.batch.bets"} {
			a, _ := send.Tag(key)
			b, _ := batch.Tag(key)
			if a == "" || a != b {
				return "", fmt.Errorf("trace %s: %s is %q on agency.send_batch, %q on central.batch", tr.TraceID, key, a, b)
			}
		}
		// The agency's resource names it too.
		id, _ := send.Tag("loteria.agency.id")
		if res, _ := tr.Processes[send.ProcessID].Tag("loteria.agency.id"); res != id {
			return "", fmt.Errorf("trace %s: agency.send_batch of agency %s comes from a process with loteria.agency.id %q", tr.TraceID, id, res)
		}
		var missing []string
		kids := tr.Children(batch.SpanID)
		for _, op := range []string{"central.validate", "central.store"} {
			if !slices.ContainsFunc(kids, func(s Span) bool { return s.OperationName == op && s.Service == centralService }) {
				missing = append(missing, op)
			}
		}
		if len(missing) > 0 {
			last = fmt.Errorf("trace %s: central.batch %s lacks children %v (spans: %s)", tr.TraceID, batch.SpanID, missing, describeSpans(tr))
			continue
		}
		seq, _ := send.Tag("loteria.batch.seq")
		return fmt.Sprintf("trace %s: agency %s batch %s: %s", tr.TraceID, id, seq, describeSpans(tr)), nil
	}
	return "", last
}

func describeSpans(tr Trace) string {
	parts := make([]string, len(tr.Spans))
	for i, s := range tr.Spans {
		parent := "root"
		if p, ok := tr.Span(s.ParentID()); ok {
			parent = "child of " + p.OperationName
		} else if s.ParentID() != "" {
			parent = "child of missing " + s.ParentID()
		}
		parts[i] = fmt.Sprintf("%s/%s (%s)", s.Service, s.OperationName, parent)
	}
	return strings.Join(parts, ", ")
}

func agencyProcs(s *System) []*Process {
	out := make([]*Process, len(s.Agencies))
	for i, a := range s.Agencies {
		out[i] = a.Process
	}
	return out
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
