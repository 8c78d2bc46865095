package central_test

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/lottery"
)

type sliceSource struct{ bets []lottery.Bet }

func (s *sliceSource) Next() (lottery.Bet, error) {
	if len(s.bets) == 0 {
		return lottery.Bet{}, io.EOF
	}
	b := s.bets[0]
	s.bets = s.bets[1:]
	return b, nil
}

// TestTracesLogsAndMetrics runs one agency against one central, each with
// its own tracer provider recording spans in memory, and checks the batch
// span's context crosses the wire, the central's spans nest, logs carry
// the trace ids, and the metrics say what happened and lint clean.
func TestTracesLogsAndMetrics(t *testing.T) {
	centralSpans := tracetest.NewSpanRecorder()
	centralTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(centralSpans))
	agencySpans := tracetest.NewSpanRecorder()
	agencyTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(agencySpans))
	var logs testenv.Buffer
	log, err := observability.NewLogger(&logs, observability.LogOptions{Level: "DEBUG", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	h := startCentral(t, central.Config{Agencies: 1}, withDeps(central.Deps{Logger: log, Tracer: centralTP.Tracer("central")}))
	reg := h.reg

	var bets []lottery.Bet
	for i := range 25 {
		num := 100 + i
		if i%10 == 3 {
			num = lottery.WinningNumber
		}
		bets = append(bets, lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Núñez", Document: "3000000" + string(rune('0'+i%10)), Birthdate: "1990-01-01", Number: num})
	}
	agencyReg := prometheus.NewRegistry()
	am := agency.NewMetrics(agencyReg)
	c, err := agency.NewClient(agency.Options{Agency: 1, Address: h.addr, MaxBets: 10, InFlight: 2},
		agency.Deps{Metrics: am, Tracer: agencyTP.Tracer("agency")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), agency.NewBetsStream(bets))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if len(res.Winners) != 3 {
		t.Fatalf("winners = %v, want 3", res.Winners)
	}

	// Spans: every agency batch span has a central.batch child in its trace.
	byName := func(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}
	sent := byName(agencySpans.Ended(), "agency.send_batch")
	if len(sent) != 3 {
		t.Fatalf("%d agency.send_batch spans, want 3 (25 bets in batches of 10)", len(sent))
	}
	cspans := centralSpans.Ended()
	batches := byName(cspans, "central.batch")
	if len(batches) != 3 {
		t.Fatalf("%d central.batch spans, want 3", len(batches))
	}
	for _, a := range sent {
		if a.SpanKind() != trace.SpanKindClient {
			t.Errorf("agency.send_batch kind %v, want client", a.SpanKind())
		}
		var child sdktrace.ReadOnlySpan
		for _, b := range batches {
			if b.Parent().SpanID() == a.SpanContext().SpanID() {
				child = b
			}
		}
		if child == nil {
			t.Fatalf("agency span %s has no central.batch child", a.SpanContext().SpanID())
		}
		if child.SpanContext().TraceID() != a.SpanContext().TraceID() || !child.Parent().IsRemote() {
			t.Errorf("central.batch not in the agency's trace as a remote child")
		}
		if child.SpanKind() != trace.SpanKindServer {
			t.Errorf("central.batch kind %v, want server", child.SpanKind())
		}
		for _, name := range []string{"central.validate", "central.store"} {
			found := false
			for _, s := range byName(cspans, name) {
				found = found || s.Parent().SpanID() == child.SpanContext().SpanID()
			}
			if !found {
				t.Errorf("central.batch %s has no %s child", child.SpanContext().SpanID(), name)
			}
		}
		for _, kv := range child.Attributes() {
			if strings.Contains(string(kv.Key), "name") || strings.Contains(string(kv.Key), "document") || strings.Contains(string(kv.Key), "dni") {
				t.Errorf("span attribute %s may carry personal data", kv.Key)
			}
		}
	}
	for _, name := range []string{"central.barrier_wait", "central.draw", "central.send_winners"} {
		if len(byName(cspans, name)) != 1 {
			t.Errorf("want one %s span", name)
		}
	}

	// Logs: every apuesta_recibida record carries its batch span's ids.
	traceIDs := map[string]bool{}
	for _, b := range batches {
		traceIDs[b.SpanContext().TraceID().String()] = true
	}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	received := 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] != "apuesta_recibida" {
			continue
		}
		received++
		id, _ := rec["trace_id"].(string)
		if !traceIDs[id] || rec["span_id"] == nil {
			t.Errorf("apuesta_recibida record without its batch's trace/span id: %v", rec)
		}
		if rec["result"] != "success" {
			t.Errorf("apuesta_recibida result = %v", rec["result"])
		}
	}
	if received != 3 {
		t.Errorf("%d apuesta_recibida records, want 3", received)
	}
	// The drawn number is the record of what was announced (docs/ROUNDS.md).
	if !strings.Contains(logs.String(), `"msg":"sorteo","result":"success","round":1,"number":7574,`) {
		t.Errorf("no sorteo success record with its round and number in\n%s", logs.String())
	}

	// Metrics: values after known traffic, and both registries lint clean.
	for _, tc := range []struct {
		name, label, value string
		want               float64
	}{
		{"loteria_batches_received_total", "result", "success", 3},
		{"loteria_bets_stored_total", "agency", "1", 25},
		{"loteria_winners", "agency", "1", 3},
		{"loteria_agencies_finished", "", "", 1},
		{"loteria_draws_total", "", "", 1},
		{"loteria_agencies_connected", "", "", 0},
		{"loteria_connections_closed_total", "reason", "done", 1},
	} {
		if got := testutil.ToFloat64(counterWith(t, reg, tc.name, tc.label, tc.value)); got != tc.want {
			t.Errorf("%s{%s=%q} = %v, want %v", tc.name, tc.label, tc.value, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "loteria_batch_duration_seconds"); n != 1 {
		t.Errorf("batch duration series = %d", n)
	}
	for name, g := range map[string]prometheus.Gatherer{"central": reg, "agency": agencyReg} {
		problems, err := testutil.GatherAndLint(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s metric %s: %s", name, p.Metric, p.Text)
		}
	}
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"loteria_agency_bets_acked_total", 25},
		{"loteria_agency_bets_sent_total", 25},
		{"loteria_agency_batches_sent_total", 3},
		{"loteria_agency_winners", 3},
		{"loteria_agency_done", 1},
	} {
		if got := testutil.ToFloat64(counterWith(t, agencyReg, tc.name, "", "")); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSeedClientGetsRootSpan: a batch without traceparent (a seed client)
// still gets a central.batch span, as the root of its own trace.
func TestSeedClientGetsRootSpan(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	h := startCentral(t, central.Config{Agencies: 1}, withDeps(central.Deps{Tracer: tp.Tracer("central")}))
	c := dialRaw(t, h.addr)
	c.send("1;1\nAna;Pérez;1;1990-01-01;5\n")
	c.expect("success;Batch stored successfully.")
	c.send("END")
	c.expect("NO_WINNERS")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	var batch sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "central.batch" {
			batch = s
		}
	}
	if batch == nil {
		t.Fatal("no central.batch span for a seed client's batch")
	}
	if batch.Parent().IsValid() {
		t.Errorf("central.batch has parent %v, want a root span", batch.Parent().SpanID())
	}
	if !batch.SpanContext().IsValid() || batch.SpanKind() != trace.SpanKindServer {
		t.Errorf("central.batch context valid=%v kind=%v", batch.SpanContext().IsValid(), batch.SpanKind())
	}
}

// TestAgencyWithoutBets: an agency with an empty file is valid: its client
// tells the central who it is, counts at the barrier and gets NO_WINNERS.
func TestAgencyWithoutBets(t *testing.T) {
	h := startCentral(t, central.Config{Agencies: 2})
	other := dialRaw(t, h.addr)
	other.send("1;1\nAna;Pérez;1;1990-01-01;7574\n")
	other.expect("success;Batch stored successfully.")
	other.send("END")
	c, err := agency.NewClient(agency.Options{Agency: 2, Address: h.addr, MaxBets: 10}, agency.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), agency.NewBetsStream(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Winners) != 0 || res.Bets != 0 {
		t.Errorf("empty agency got %d winners, %d bets acked", len(res.Winners), res.Bets)
	}
	other.expect("1")
}
