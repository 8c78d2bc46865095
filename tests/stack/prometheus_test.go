package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// firstScrapeBudget bounds the wait for Prometheus's first scrape of every
// target once it is ready. Prometheus hands its targets to the scrape loops
// only after a 5s discovery throttle, plus up to one interval of jitter:
// about 6s here (the test logs it). The budget leaves room for a
// loaded CI machine; a poll, it costs nothing when the scrape is on time.
const firstScrapeBudget = 15 * time.Second

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestPrometheusSeesTheRun runs the central and five agencies on the
// official data, has a real Prometheus scrape all six, and checks through
// its HTTP API that the scraped series tell what happened.
func TestPrometheusSeesTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the system and Prometheus")
	}
	dir := testenv.OfficialDataDir(t)
	if n := testenv.CountBets(t, dir, 5); n != OfficialBets {
		t.Fatalf("official data holds %d bets, want %d", n, OfficialBets)
	}

	// Prometheus starts while the bets flow: it scrapes the run, not only
	// its end (and its first scrape, which Prometheus 2.x holds back for
	// up to 5s of service-discovery throttling, overlaps the run).
	start := time.Now()
	// No trace backend here: spans are sampled only because the sampler
	// says so (with nowhere to export, the default records none), so the
	// batch histograms carry exemplars to check.
	sys := StartSystem(t, SystemOptions{DataDir: dir, Env: []string{"OTEL_TRACES_SAMPLER=always_on"}})
	prom := StartPrometheus(t, sys.Targets())
	ready := time.Now()
	prom.WaitFor(t, `count(up == 1)`, Equals(6), firstScrapeBudget)
	scraped := time.Now()
	sys.WaitWinners(t)
	t.Logf("Prometheus ready %s after the start; all 6 targets scraped %s after it was ready; every agency had its winners %s after the start",
		ready.Sub(start).Round(time.Millisecond), scraped.Sub(ready).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The run is over and its values final: each check holds from the
	// first scrape after the winners on (the interval is 1s).
	const settle = 5 * time.Second
	checks := []struct {
		name, promql string
		want         float64
	}{
		{"central up", `up{job="central"}`, 1},
		{"agencies up", `count(up{job="agency"} == 1)`, 5},
		{"bets stored", `sum(loteria_bets_stored_total{job="central"})`, OfficialBets},
		{"bets stored per agency", `count(loteria_bets_stored_total{job="central"} > 0)`, 5},
		{"agencies finished", `loteria_agencies_finished{job="central"}`, 5},
		{"agencies expected", `loteria_agencies_expected{job="central"}`, 5},
		{"barrier waits", `loteria_barrier_wait_seconds_count{job="central"}`, 5},
		{"agencies connected", `loteria_agencies_connected{job="central"}`, 0},
		{"connections accepted", `loteria_connections_accepted_total{job="central"}`, 5},
		{"connections done", `sum(loteria_connections_closed_total{job="central",reason="done"})`, 5},
		{"draws", `loteria_draws_total{job="central"}`, 1},
		{"failed batches", `sum(loteria_batches_received_total{job="central",result!="success"})`, 0},
		{"bets acked by agencies", `sum(loteria_agency_bets_acked_total{job="agency"})`, OfficialBets},
		{"bets in files", `sum(loteria_agency_bets_in_file{job="agency"})`, OfficialBets},
		{"agencies done", `count(loteria_agency_done{job="agency"} == 1)`, 5},
		{"agency errors", `sum(loteria_agency_errors_total{job="agency"})`, 0},
		// Each agency counts the spans it drops (the Spans dropped panel, LoteriaSpansDropped).
		{"agencies export their dropped spans", `count(count by (agency) (loteria_trace_spans_dropped_total{job="agency"}))`, 5},
		// The two sides agree, agency by agency.
		{"stored = acked per agency", `count(
			sum by (agency) (loteria_bets_stored_total{job="central"})
			== sum by (agency) (loteria_agency_bets_acked_total{job="agency"}))`, 5},
		{"batches received = sent", `sum(loteria_batches_received_total{job="central",result="success"})
			- sum(loteria_agency_batches_sent_total{job="agency"})`, 0},
		{"winners per agency agree", `count(
			sum by (agency) (loteria_winners{job="central"})
			== sum by (agency) (loteria_agency_winners{job="agency"}))`, 5},
		{"batch latency histogram counts every batch", `sum(loteria_batch_duration_seconds_count{job="central"})
			- sum(loteria_agency_batches_sent_total{job="agency"})`, 0},
		{"ack latency histograms count every batch", `sum(loteria_agency_ack_duration_seconds_count{job="agency"})
			- sum(loteria_agency_batches_sent_total{job="agency"})`, 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			prom.WaitFor(t, c.promql, Equals(c.want), settle)
		})
	}

	// Exemplars: the latency histograms carry the batch's trace id.
	for _, c := range []struct{ name, selector string }{
		{"central batch duration", `loteria_batch_duration_seconds_bucket{job="central"}`},
		{"agency ack duration", `loteria_agency_ack_duration_seconds_bucket{job="agency"}`},
	} {
		t.Run("exemplars/"+c.name, func(t *testing.T) {
			var found string
			Poll(t, settle, "an exemplar with a trace_id on "+c.selector, func() error {
				series, err := prom.QueryExemplars(context.Background(), c.selector, start.Add(-time.Minute), time.Now().Add(time.Minute))
				if err != nil {
					return err
				}
				n := 0
				for _, s := range series {
					for _, e := range s.Exemplars {
						n++
						if id := e.Labels["trace_id"]; traceIDPattern.MatchString(id) {
							found = fmt.Sprintf("%s: trace_id=%s value=%g", labelsString(s.SeriesLabels), id, e.Value)
							return nil
						}
					}
				}
				return fmt.Errorf("%d series, %d exemplars, none with a trace_id of 32 hex digits", len(series), n)
			})
			t.Log(found)
		})
	}
}

// TestPrometheusRuleFiles checks the harness's RuleFiles option: a rule
// file is loaded and evaluated (no targets needed).
func TestPrometheusRuleFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus")
	}
	rules := filepath.Join(t.TempDir(), "rules.yml")
	const rule = `groups:
  - name: stack
    rules:
      - record: loteria:stack_test:answer
        expr: vector(42)
`
	if err := os.WriteFile(rules, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := StartPrometheusWith(t, PrometheusOptions{RuleFiles: []string{rules}})
	prom.WaitFor(t, `loteria:stack_test:answer`, Equals(42), 10*time.Second)
}
