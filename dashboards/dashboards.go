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

// labelValuesRE matches Grafana's label_values(metric, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// Expand replaces the Grafana variables an expression may contain with values Prometheus accepts,
// so the expression can be parsed or run outside Grafana: $__rate_interval, $__interval and
// $__range become rateInterval (e.g. "1m"), and the agency variable becomes ".+" (all agencies).
func Expand(expr, rateInterval string) string {
	r := strings.NewReplacer(
		"${__rate_interval}", rateInterval,
		"$__rate_interval", rateInterval,
		"${__interval}", rateInterval,
		"$__interval", rateInterval,
		"${__range}", rateInterval,
		"$__range", rateInterval,
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
