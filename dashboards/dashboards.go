// Package dashboards holds the Grafana dashboards of loteria as code.
//
// The dashboards are built with the Grafana Foundation SDK and written as JSON files next to this
// file (loteria-central.json, loteria-agencies.json) by `go run ./dashboards/cmd/gen`. A golden
// test checks that the committed JSON is exactly what this code generates, and Queries lists every
// PromQL expression the dashboards run, so tests can parse them, check their metric names against
// docs/METRICS.md and run them against a real Prometheus.
package dashboards

//go:generate go run ./cmd/gen -out .

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// Datasource uids provisioned in Grafana (deploy/grafana/provisioning/datasources). The dashboards
// name their datasource by uid, so these must match the provisioning file.
const (
	PrometheusUID = "prometheus"
	JaegerUID     = "jaeger"
)

// Dashboard uids, stable so links and the home dashboard setting keep working.
const (
	CentralUID  = "loteria-central"
	AgenciesUID = "loteria-agencies"
)

// AgencyVariable is the template variable of the agencies dashboard.
const AgencyVariable = "agency"

// RoundVariable is the round selector of both dashboards. The round is a gauge (loteria_round),
// never a label (rounds are unbounded): the variable's values are the gauge's distinct values over
// the dashboard's range, made into a label at query time only (count_values inside a subquery),
// and a panel keeps the time its round was open with `and on () (max(loteria_round) == $round)`
// (inRound). "All" expands to RoundAll, which makes the filter always true.
const RoundVariable = "round"

// RoundValuesQuery lists the rounds open in the dashboard's range, one series {round="<r>"} each.
// The subquery's 10 s step finds every round open for 10 s or more.
const RoundValuesQuery = `last_over_time(count_values("round", max(loteria_round))[$__range:10s])`

// RoundAll is the round variable's "All" value.
const RoundAll = "max(loteria_round)"

// inRound keeps a panel's series to the time the selected round was open.
const inRound = ` and on () (max(loteria_round) == $round)`

// roundVariable is the round selector.
func roundVariable() *dashboard.QueryVariableBuilder {
	q := "query_result(" + RoundValuesQuery + ")"
	return dashboard.NewQueryVariableBuilder(RoundVariable).
		Label("Round").
		Description("Show the time one round was open (the open round is loteria_round, a gauge; All shows every round).").
		Datasource(promDatasource()).
		Query(dashboard.StringOrMap{String: ptr(q)}).
		Definition(q).
		Regex(`/round="(\d+)"/`).
		IncludeAll(true).
		AllValue(RoundAll).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNumericalDesc)
}

// File is one generated dashboard: the file name it is written to and its JSON.
type File struct {
	Name string
	UID  string
	JSON []byte
}

// Query is one PromQL expression used by a dashboard panel or template variable.
type Query struct {
	Dashboard string // dashboard uid
	Panel     string // panel title, or "variable <name>"
	RefID     string
	Expr      string // as stored in the dashboard, Grafana variables included
	Legend    string // legend format; the {{label}} names it uses must exist on the result
	Exemplar  bool
	Instant   bool
}

// builders returns the dashboards in a fixed order.
func builders() []*dashboard.DashboardBuilder {
	return []*dashboard.DashboardBuilder{central(), agencies()}
}

// Dashboards builds every dashboard.
func Dashboards() ([]dashboard.Dashboard, error) {
	bs := builders()
	out := make([]dashboard.Dashboard, 0, len(bs))
	for _, b := range bs {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Files renders every dashboard as indented JSON, ready to be written to <uid>.json.
func Files() ([]File, error) {
	ds, err := Dashboards()
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(ds))
	for _, d := range ds {
		if d.Uid == nil {
			return nil, fmt.Errorf("dashboard %q has no uid", deref(d.Title))
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode dashboard %s: %w", *d.Uid, err)
		}
		files = append(files, File{Name: *d.Uid + ".json", UID: *d.Uid, JSON: buf.Bytes()})
	}
	return files, nil
}

// Queries lists every PromQL expression of every dashboard, in dashboard and panel order. Template
// variables appear too: a `label_values(metric, label)` variable is listed as the selector
// `metric` with legend `{{label}}`.
func Queries() ([]Query, error) {
	ds, err := Dashboards()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, d := range ds {
		uid := deref(d.Uid)
		for _, v := range d.Templating.List {
			if v.Type != "query" || v.Query == nil || v.Query.String == nil {
				continue
			}
			if m := queryResultRE.FindStringSubmatch(*v.Query.String); m != nil {
				out = append(out, Query{Dashboard: uid, Panel: "variable " + v.Name, RefID: v.Name, Expr: m[1], Legend: "{{" + v.Name + "}}", Instant: true})
				continue
			}
			m := labelValuesRE.FindStringSubmatch(*v.Query.String)
			if m == nil {
				return nil, fmt.Errorf("dashboard %s: variable %s: unsupported query %q", uid, v.Name, *v.Query.String)
			}
			out = append(out, Query{
				Dashboard: uid,
				Panel:     "variable " + v.Name,
				RefID:     v.Name,
				Expr:      strings.TrimSpace(m[1]),
				Legend:    "{{" + strings.TrimSpace(m[2]) + "}}",
				Instant:   true,
			})
		}
		for _, p := range d.Panels {
			if p.Panel == nil {
				continue
			}
			for _, t := range p.Panel.Targets {
				pq, ok := t.(prometheus.Dataquery)
				if !ok {
					return nil, fmt.Errorf("dashboard %s: panel %q: target of type %T is not a Prometheus query", uid, deref(p.Panel.Title), t)
				}
				out = append(out, Query{
					Dashboard: uid,
					Panel:     deref(p.Panel.Title),
					RefID:     deref(pq.RefId),
					Expr:      pq.Expr,
					Legend:    deref(pq.LegendFormat),
					Exemplar:  pq.Exemplar != nil && *pq.Exemplar,
					Instant:   pq.Instant != nil && *pq.Instant,
				})
			}
		}
	}
	return out, nil
}

// queryResultRE matches Grafana's query_result(expr) variable query.
var queryResultRE = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)

// labelValuesRE matches Grafana's label_values(metric, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// Expand replaces the Grafana variables an expression may contain with values Prometheus accepts,
// so the expression can be parsed or run outside Grafana: $__rate_interval, $__interval and
// $__range become rateInterval (e.g. "1m"), the agency variable becomes ".+" (all agencies) and
// the round variable its All value.
func Expand(expr, rateInterval string) string {
	return ExpandRange(expr, rateInterval, rateInterval)
}

// ExpandRange is Expand with $__range (the dashboard's time range) set on its own, as a panel
// showing a whole run sees it.
func ExpandRange(expr, rateInterval, rng string) string {
	r := strings.NewReplacer(
		"${__rate_interval}", rateInterval,
		"$__rate_interval", rateInterval,
		"${__interval}", rateInterval,
		"$__interval", rateInterval,
		"${__range}", rng,
		"$__range", rng,
		"${"+RoundVariable+"}", RoundAll,
		"$"+RoundVariable, RoundAll,
		"${"+AgencyVariable+":regex}", ".+",
		"${"+AgencyVariable+"}", ".+",
		"$"+AgencyVariable, ".+",
	)
	return r.Replace(expr)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
