// Package prometheus_test checks the Prometheus configuration, the rules and every PromQL
// expression of the dashboards: promtool check config / check rules / test rules, and each
// expression against the metrics of docs/METRICS.md.
package prometheus_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/deploy/promcheck"
	"github.com/loteria/loteria/internal/testenv"
)

// promtool is $LOTERIA_PROMTOOL (make prometheus builds bin/promtool of the Prometheus 3 line the
// stack deploys; make test sets it), else promtool on PATH.
func promtool(t *testing.T) string {
	t.Helper()
	return tool(t, "LOTERIA_PROMTOOL", "promtool", "make prometheus builds bin/promtool; make test sets LOTERIA_PROMTOOL")
}

// amtool is $LOTERIA_AMTOOL (make alertmanager builds bin/amtool), else amtool on PATH.
func amtool(t *testing.T) string {
	t.Helper()
	return tool(t, "LOTERIA_AMTOOL", "amtool", "make alertmanager builds bin/amtool; make test sets LOTERIA_AMTOOL")
}

func tool(t *testing.T, envVar, name, hint string) string {
	t.Helper()
	p := testenv.Tool(t, envVar, name)
	if p == "" {
		testenv.Unavailable(t, "%s not found (%s)", name, hint)
	}
	return p
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func glob(t *testing.T, root, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

func TestPromtoolCheckRules(t *testing.T) {
	pt := promtool(t)
	root := testenv.RepoRoot(t)
	out := run(t, root, pt, append([]string{"check", "rules"}, glob(t, root, promcheck.RulesGlob)...)...)
	if strings.Contains(out, "WARNING") {
		t.Errorf("promtool check rules warns:\n%s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	pt := promtool(t)
	root := testenv.RepoRoot(t)
	tests := glob(t, root, promcheck.RuleTestsGlob)
	run(t, root, pt, append([]string{"test", "rules"}, tests...)...)

	// Every alert has at least one unit test that expects it to fire.
	rules, err := promcheck.LoadRules(glob(t, root, promcheck.RulesGlob)...)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, f := range tests {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(data)
	}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		fires := regexp.MustCompile(`alertname: ` + regexp.QuoteMeta(r.Alert) + `\n\s+exp_alerts:\n\s+- exp_labels:`)
		if !fires.Match(all.Bytes()) {
			t.Errorf("alert %s has no unit test in which it fires", r.Alert)
		}
	}
}

// TestPromtoolCheckConfig checks prometheus.yml as the container sees it: the /etc/prometheus
// paths are pointed at the repository's rules and at targets generated for 5 agencies.
func TestPromtoolCheckConfig(t *testing.T) {
	pt := promtool(t)
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	plan, err := compose.NewPlan(compose.Options{Agencies: 5, Root: root, Output: filepath.Join(dir, "out", "c.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Write(false); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, promcheck.PrometheusConfig))
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.NewReplacer(
		compose.PrometheusRules+"/", filepath.Join(root, compose.PrometheusRulesPath)+"/",
		compose.PrometheusSD+"/", filepath.Dir(plan.Targets.Path)+"/",
	).Replace(string(conf))
	for _, line := range strings.Split(rewritten, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "/etc/prometheus") {
			t.Fatalf("prometheus.yml uses a path the compose stack does not mount: %s", line)
		}
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, dir, pt, "check", "config", file)
	if strings.Contains(out, "WARNING") {
		t.Errorf("promtool check config warns:\n%s", out)
	}
	if !strings.Contains(out, "SUCCESS: 2 rule files found") {
		t.Errorf("promtool did not find the rule files:\n%s", out)
	}
}

// TestExpressions checks every rule and dashboard expression against docs/METRICS.md: it
// parses, names only exported metrics (or recording rules over them) with their labels and label
// values, and the labels its legend shows exist on its result.
func TestExpressions(t *testing.T) {
	repo, err := promcheck.LoadRepo(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repo.Jobs, []string{"prometheus", "central", "agency", "loadtest", "alertmanager", "jaeger"}) {
		t.Errorf("scrape jobs %v", repo.Jobs)
	}
	queries, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 40 {
		t.Errorf("only %d dashboard queries", len(queries))
	}
	legendLabel := regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	used := map[string]bool{}
	for _, q := range queries {
		expr := dashboards.Expand(q.Expr, "1m")
		if strings.Contains(expr, "$") {
			t.Errorf("%s / %s %s: unexpanded variable in %s", q.Dashboard, q.Panel, q.RefID, expr)
			continue
		}
		ls, err := repo.Catalog.Check(expr)
		if err != nil {
			t.Errorf("%s / %s %s: %v", q.Dashboard, q.Panel, q.RefID, err)
			continue
		}
		if ls.Scalar {
			t.Errorf("%s / %s %s: scalar result; Grafana wants a vector: %s", q.Dashboard, q.Panel, q.RefID, expr)
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.Legend, -1) {
			if _, ok := ls.Labels[m[1]]; !ok && !ls.Any {
				t.Errorf("%s / %s %s: legend %q uses label %s, but the result has only %v", q.Dashboard, q.Panel, q.RefID, q.Legend, m[1], ls.Names())
			}
		}
		if q.Exemplar {
			ok, err := repo.Catalog.ExemplarSeries(expr)
			if err != nil || !ok {
				t.Errorf("%s / %s %s: asks for exemplars of series documented without them: %s", q.Dashboard, q.Panel, q.RefID, expr)
			}
		}
		for _, r := range repo.Rules {
			if r.Record != "" && strings.Contains(expr, r.Record) {
				used[r.Record] = true
			}
		}
	}
	for _, r := range repo.Rules {
		if r.Alert != "" && strings.Contains(r.Expr, ":") {
			for _, rr := range repo.Rules {
				if rr.Record != "" && strings.Contains(r.Expr, rr.Record) {
					used[rr.Record] = true
				}
			}
		}
	}
	for _, r := range repo.Rules {
		if r.Record != "" && !used[r.Record] {
			t.Logf("recording rule %s is used by no dashboard or alert", r.Record)
		}
	}
}

// TestAmtoolCheckConfig checks alertmanager.yml with the Alertmanager's own checker.
func TestAmtoolCheckConfig(t *testing.T) {
	at := amtool(t)
	root := testenv.RepoRoot(t)
	out := run(t, root, at, "check-config", filepath.Join(root, compose.AlertmanagerConfigPath))
	if !strings.Contains(out, "SUCCESS") || !strings.Contains(out, "1 receivers") {
		t.Errorf("amtool check-config:\n%s", out)
	}
}
