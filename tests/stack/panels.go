package stack

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/promcheck"
)

// PendingMetrics are the metrics the round, resume and TLS work adds (docs/METRICS.md names
// them; issue 10). A panel reading one of them is checked only once the programs under test
// export it; any other metric missing from a run is a failure.
func PendingMetrics() []string {
	return []string{
		"loteria_round", "loteria_round_bets", "loteria_round_duration_seconds_bucket",
		"loteria_round_duration_seconds_sum", "loteria_round_duration_seconds_count",
		"loteria_agencies_waiting", "loteria_store_failed", "loteria_tls_handshake_errors_total",
		"loteria_bets_duplicate_total", "loteria_trace_spans_dropped_total", "loteria_agency_round",
	}
}

// ZeroInAHealthyRun are the queries (dashboard uid / panel / refID) whose only honest value in a
// run without the fault they count is 0, with that fault: for them the check asks for a finite
// value, not a non-zero one.
func ZeroInAHealthyRun() map[string]string {
	return map[string]string{
		dashboards.CentralUID + "/Store/A":                          "a store that failed to make bets durable",
		dashboards.CentralUID + "/Duplicate bets/A":                 "an agency resending batches the central already stored",
		dashboards.CentralUID + "/Spans dropped/A":                  "a full span queue (the stack's is sized not to fill)",
		dashboards.CentralUID + "/Connections/B":                    "connections refused by MAX_CONNECTIONS",
		dashboards.AgenciesUID + "/Errors per second/A":             "agency errors",
		dashboards.AgenciesUID + "/Retries per second/A":            "agency reconnections",
		dashboards.AgenciesUID + "/Errors/A":                        "agency errors",
		dashboards.CentralUID + "/TLS handshake errors by reason/A": "a failed handshake (TestLivingStack makes one when the central has TLS)",
	}
}

// PanelResult is what one dashboard query returned over a run.
type PanelResult struct {
	Query dashboards.Query
	// Expr is the query as run (variables expanded).
	Expr string
	// Points and NonZero count the finite values returned and those that are not 0.
	Points, NonZero int
	// NaN counts values that were NaN or infinite.
	NaN int
	// Pending lists the pending metrics (PendingMetrics) the query reads that the run did not
	// export: the query was not checked.
	Pending []string
	// Missing lists other metrics the query reads that the run did not export.
	Missing []string
	Err     error
}

// Key is the query's key in ZeroInAHealthyRun.
func (r PanelResult) Key() string {
	return r.Query.Dashboard + "/" + r.Query.Panel + "/" + r.Query.RefID
}

func (r PanelResult) String() string {
	return fmt.Sprintf("%s: %d points, %d non-zero, %d NaN/Inf (%s)", r.Key(), r.Points, r.NonZero, r.NaN, r.Expr)
}

// Problem says what is wrong with the result, or "" when the panel showed the run.
func (r PanelResult) Problem() string {
	zeroOK := ZeroInAHealthyRun()[r.Key()] != ""
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case len(r.Missing) > 0:
		return fmt.Sprintf("reads %v, which the run did not export", r.Missing)
	case len(r.Pending) > 0:
		return ""
	case r.Points == 0:
		return "no finite value at all"
	case r.NonZero == 0 && !zeroOK:
		return "only zeros"
	}
	return ""
}

// CheckPanels runs every dashboard query against prom over the run [start, end], as the
// dashboards would show it: a range query at step for a graph or a stat, an instant query at end
// over a $__range of the whole run for an instant panel. Variables take their "All" values;
// $__rate_interval is 4 scrape intervals. When the run did not export loteria_round, the round
// filter is left out (it would hide everything).
// rules are the repository's rules (promcheck.LoadRules), to see through recording rules.
func CheckPanels(ctx context.Context, prom *Prometheus, rules []promcheck.Rule, start, end time.Time, step time.Duration, queries []dashboards.Query) ([]PanelResult, error) {
	exported, err := prom.MetricNames(ctx)
	if err != nil {
		return nil, err
	}
	recorded := map[string][]string{} // recording rule -> the metrics its expression reads
	for _, r := range rules {
		if r.Record != "" {
			names, err := selectors(r.Expr)
			if err != nil {
				return nil, err
			}
			recorded[r.Record] = append(recorded[r.Record], names...)
		}
	}
	pending := PendingMetrics()
	rateInterval := promDuration(4 * step)
	rng := strconv.Itoa(int(math.Ceil(end.Sub(start).Seconds()))) + "s"
	var out []PanelResult
	for _, q := range queries {
		expr := q.Expr
		if !exported["loteria_round"] {
			expr = strings.ReplaceAll(expr, ` and on () (max(loteria_round) == $round)`, "")
		}
		expr = dashboards.ExpandRange(expr, rateInterval, rng)
		res := PanelResult{Query: q, Expr: expr}
		names, err := selectors(expr)
		if err != nil {
			res.Err = err
			out = append(out, res)
			continue
		}
		for _, n := range expand(names, recorded) {
			if exported[n] || strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") || n == "up" {
				continue
			}
			if slices.Contains(pending, n) {
				res.Pending = append(res.Pending, n)
			} else {
				res.Missing = append(res.Missing, n)
			}
		}
		if len(res.Pending) > 0 || len(res.Missing) > 0 {
			out = append(out, res)
			continue
		}
		var values []float64
		if q.Instant {
			values, err = prom.InstantValues(ctx, expr, end)
		} else {
			values, err = prom.RangeValues(ctx, expr, start, end, step)
		}
		res.Err = err
		for _, v := range values {
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				res.NaN++
			case v != 0:
				res.Points++
				res.NonZero++
			default:
				res.Points++
			}
		}
		out = append(out, res)
	}
	return out, nil
}

// expand replaces recording rules by the metrics they read, recursively.
func expand(names []string, recorded map[string][]string) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		if src, ok := recorded[n]; ok {
			for _, s := range src {
				walk(s)
			}
			return
		}
		out = append(out, n)
	}
	for _, n := range names {
		walk(n)
	}
	return out
}

// selectors lists the metric names an expression reads.
func selectors(expr string) ([]string, error) {
	e, err := promcheck.Parse(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if name == "" && m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, nil
}

// MetricNames lists every metric name Prometheus holds.
func (p *Prometheus) MetricNames(ctx context.Context) (map[string]bool, error) {
	var names []string
	if _, err := p.API(ctx, "/api/v1/label/__name__/values", nil, &names); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// InstantValues runs an instant query at t and returns every sample's value.
func (p *Prometheus) InstantValues(ctx context.Context, promql string, t time.Time) ([]float64, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value promPoint `json:"value"`
		} `json:"result"`
	}
	if _, err := p.API(ctx, "/api/v1/query", url.Values{"query": {promql}, "time": {unixSeconds(t)}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: %s result; a panel wants a vector", promql, data.ResultType)
	}
	out := make([]float64, 0, len(data.Result))
	for _, r := range data.Result {
		out = append(out, r.Value.V)
	}
	return out, nil
}

// RangeValues runs a range query and returns every point's value, all series together.
func (p *Prometheus) RangeValues(ctx context.Context, promql string, start, end time.Time, step time.Duration) ([]float64, error) {
	m, err := p.QueryRange(ctx, promql, start, end, step)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, s := range m {
		for _, pt := range s.Points {
			out = append(out, pt.V)
		}
	}
	return out, nil
}

// RangeSeries is one series of a range query.
type RangeSeries struct {
	Metric map[string]string
	Points []promPoint
}

// QueryRange runs a range query (/api/v1/query_range).
func (p *Prometheus) QueryRange(ctx context.Context, promql string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values []promPoint       `json:"values"`
		} `json:"result"`
	}
	if _, err := p.API(ctx, "/api/v1/query_range", url.Values{
		"query": {promql}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}, "step": {promDuration(step)},
	}, &data); err != nil {
		return nil, err
	}
	out := make([]RangeSeries, 0, len(data.Result))
	for _, r := range data.Result {
		out = append(out, RangeSeries{Metric: r.Metric, Points: r.Values})
	}
	return out, nil
}
