package promcheck_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loteria/loteria/deploy/promcheck"
)

const doc = "# Metrics\n" +
	"## Every process\n" +
	"| metric | type | labels | meaning |\n" +
	"|---|---|---|---|\n" +
	"| `loteria_build_info` | gauge (1) | `service`, `version` | what |\n" +
	"| `go_*`, `process_*` | | | collectors |\n" +
	"## Central (`service=\"central\"`, default `:9464`)\n" +
	"| metric | type | labels | meaning |\n" +
	"|---|---|---|---|\n" +
	"| `x_batches_total` | counter | `result` = `success`, `malformed` | batches |\n" +
	"| `x_stored_total` | counter | `agency` | stored |\n" +
	"| `x_latency_seconds` | histogram, exemplars `trace_id` | | latency |\n" +
	"| `x_size` | histogram | | size |\n" +
	"| `x_finished` | gauge | | finished |\n" +
	"## Agency (`service=\"agency\"`, every series also has `agency=\"<id>\"`)\n" +
	"| metric | type | labels | meaning |\n" +
	"|---|---|---|---|\n" +
	"| `y_errors_total` | counter | `reason` = `timeout`, `data` | errors |\n"

func catalog(t *testing.T) *promcheck.Catalog {
	t.Helper()
	c, err := promcheck.ParseMetricsDoc([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c.AddLabels(map[string][]string{"job": {"central", "agency"}, "instance": nil})
	return c
}

func TestParseMetricsDoc(t *testing.T) {
	c := catalog(t)
	want := []string{
		"loteria_build_info", "x_batches_total", "x_finished",
		"x_latency_seconds_bucket", "x_latency_seconds_count", "x_latency_seconds_sum",
		"x_size_bucket", "x_size_count", "x_size_sum", "x_stored_total", "y_errors_total",
	}
	if got := c.Names(); !slices.Equal(got, want) {
		t.Errorf("names %v\nwant %v", got, want)
	}
	s, _ := c.Lookup("y_errors_total")
	if _, ok := s.Labels["agency"]; !ok {
		t.Errorf("agency section label missing: %v", s.Labels)
	}
	s, _ = c.Lookup("loteria_build_info")
	if !slices.Equal(s.Labels["service"], []string{"central", "agency"}) {
		t.Errorf("service values %v, want those of the headings", s.Labels["service"])
	}
	if s, _ := c.Lookup("x_latency_seconds_bucket"); !s.Exemplars {
		t.Errorf("x_latency_seconds_bucket should carry exemplars")
	}
	if s, _ := c.Lookup("x_size_bucket"); s.Exemplars {
		t.Errorf("x_size_bucket should not carry exemplars")
	}
	if _, ok := c.Lookup("go_goroutines"); !ok {
		t.Errorf("go_* prefix not honoured")
	}
}

func TestParseMetricsDocErrors(t *testing.T) {
	for _, bad := range []string{
		"no table here\n",
		"| `x` | summary | | unknown type |\n",
		"| `bad name` | counter | | |\n",
	} {
		if _, err := promcheck.ParseMetricsDoc([]byte(bad)); err == nil {
			t.Errorf("ParseMetricsDoc(%q) succeeded", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		expr    string
		wantErr string // substring; "" means valid
		labels  []string
	}{
		{`sum by (result) (rate(x_batches_total[1m]))`, "", []string{"result"}},
		{`x_batches_total{result="success", job="central"}`, "", []string{"instance", "job", "result"}},
		{`x_batches_total{result!="malformed"}`, "", nil},
		{`x_batches_total{result=~"success|malformed"}`, "", nil},
		{`histogram_quantile(0.99, sum by (le) (rate(x_latency_seconds_bucket[5m])))`, "", []string{}},
		{`histogram_quantile(0.99, sum by (agency, le) (rate(y_errors_total[5m])))`, `input has no label "le"`, nil},
		{`sum(rate(x_size_sum[1m])) / sum(rate(x_size_count[1m]))`, "", []string{}},
		{`x_finished > 0 and on (instance) (x_finished == 0)`, "", nil},
		{`(sum(rate(x_stored_total[2m])) or vector(0)) == 0`, "", []string{}},
		{`go_goroutines{job="central", anything="goes"}`, "", nil},
		{`sum by (agency) (x_stored_total) / on (agency) group_left sum by (agency) (y_errors_total)`, "", []string{"agency"}},
		{`label_replace(x_finished, "dst", "$1", "job", "(.*)")`, "", nil},

		{`x_nonexistent_total`, "unknown metric", nil},
		{`go_goroutines{job="centrl"}`, `"centrl" is not a value of job`, nil},
		{`x_batches_total{reason="x"}`, `has no label "reason"`, nil},
		{`x_batches_total{result="succes"}`, `"succes" is not a value of result`, nil},
		{`x_batches_total{result=~"success|oops"}`, `"oops" is not a value of result`, nil},
		{`x_batches_total{job="centrl"}`, `"centrl" is not a value of job`, nil},
		{`sum by (agency) (x_batches_total)`, `input has no label "agency"`, nil},
		{`histogram_quantile(0.9, sum(rate(x_latency_seconds_bucket[1m])))`, "without an le label", nil},
		{`histogram_quantile(0.9, rate(x_latency_seconds_sum[1m]))`, "without an le label", nil},
		{`sum by (agency) (x_stored_total) / sum(x_stored_total)`, "always empty", nil},
		{`x_finished and on (agency) x_stored_total`, `left side has no label "agency"`, nil},
		{`loteria_build_info{service="centrall"}`, `is not a value of service`, nil},
		{`sum(rate(x_batches_total[1m]`, "parse", nil},
	}
	c := catalog(t)
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			ls, err := c.Check(tt.expr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.labels != nil && !slices.Equal(ls.Names(), tt.labels) {
					t.Errorf("labels %v, want %v", ls.Names(), tt.labels)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func writeRules(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRecordingRules(t *testing.T) {
	// The second rule uses the first; they are listed out of order on purpose.
	f := writeRules(t, `groups:
  - name: g
    rules:
      - record: job:x_batches:ratio
        expr: sum by (result) (job:x_batches:rate1m) / on () group_left sum(job:x_batches:rate1m)
      - record: job:x_batches:rate1m
        expr: sum by (result) (rate(x_batches_total[1m]))
      - record: job:x_latency:q
        expr: histogram_quantile(0.5, sum by (le) (rate(x_latency_seconds_bucket[1m])))
        labels: {quantile: "0.5"}
      - record: job:x_latency:q
        expr: histogram_quantile(0.9, sum by (le) (rate(x_latency_seconds_bucket[1m])))
        labels: {quantile: "0.9"}
      - alert: Bad
        expr: job:x_batches:rate1m{result="malformed"} > 0
`)
	rules, err := promcheck.LoadRules(f)
	if err != nil {
		t.Fatal(err)
	}
	c := catalog(t)
	if err := c.AddRecordingRules(rules); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckAlerts(rules); err != nil {
		t.Fatal(err)
	}
	for expr, wantErr := range map[string]string{
		`job:x_batches:ratio{result="success"}`: "",
		`job:x_latency:q{quantile="0.9"}`:       "",
		`job:x_latency:q{quantile="0.99"}`:      `"0.99" is not a value of quantile`,
		`job:x_batches:rate1m{result="nope"}`:   `"nope" is not a value of result`,
		`job:x_batches:rate1m{instance="a"}`:    `has no label "instance"`,
	} {
		_, err := c.Check(expr)
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("Check(%s) = %v, want error containing %q", expr, err, wantErr)
		}
	}
}

func TestRecordingRulesErrors(t *testing.T) {
	tests := map[string]string{
		"unknown metric": `groups: [{name: g, rules: [{record: a:b:c, expr: 'sum(nope_total)'}]}]`,
		"cycle": `groups: [{name: g, rules: [
  {record: a:b:c, expr: 'sum(d:e:f)'},
  {record: d:e:f, expr: 'sum(a:b:c)'}]}]`,
		"scalar":     `groups: [{name: g, rules: [{record: a:b:c, expr: '1 + 1'}]}]`,
		"bad alert":  `groups: [{name: g, rules: [{alert: A, expr: 'x_finished{nope="1"} > 0'}]}]`,
		"both kinds": `groups: [{name: g, rules: [{alert: A, record: a:b:c, expr: 'x_finished'}]}]`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			rules, err := promcheck.LoadRules(writeRules(t, body))
			if err == nil {
				c := catalog(t)
				err = c.AddRecordingRules(rules)
				if err == nil {
					err = c.CheckAlerts(rules)
				}
			}
			if err == nil {
				t.Errorf("rules accepted:\n%s", body)
			}
		})
	}
}

func TestExemplarSeries(t *testing.T) {
	c := catalog(t)
	for expr, want := range map[string]bool{
		`histogram_quantile(0.99, sum by (le) (rate(x_latency_seconds_bucket[1m])))`: true,
		`histogram_quantile(0.99, sum by (le) (rate(x_size_bucket[1m])))`:            false,
	} {
		got, err := c.ExemplarSeries(expr)
		if err != nil || got != want {
			t.Errorf("ExemplarSeries(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
}
