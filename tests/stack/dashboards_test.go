package stack

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/promcheck"
	"github.com/loteria/loteria/internal/testenv"
)

// TestDashboardsAndRulesReturnData runs the system on the official data
// under a real Prometheus that loads our rule files, then runs every
// dashboard query and reads every recording rule's output: each must
// return data, or a panel would stay empty for users.
func TestDashboardsAndRulesReturnData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the system and Prometheus")
	}
	root := testenv.RepoRoot(t)
	ruleFiles, err := filepath.Glob(filepath.Join(root, promcheck.RulesGlob))
	if err != nil || len(ruleFiles) == 0 {
		t.Fatalf("no rule files at %s: %v", promcheck.RulesGlob, err)
	}
	rules, err := promcheck.LoadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}

	sys := StartSystem(t, SystemOptions{DataDir: testenv.OfficialDataDir(t), Env: []string{"OTEL_TRACES_SAMPLER=always_on"}})
	opts := sys.PrometheusOptions()
	opts.RuleFiles = ruleFiles
	prom := StartPrometheusWith(t, opts)
	sys.WaitWinners(t)
	prom.WaitFor(t, `count(up == 1)`, Equals(6), firstScrapeBudget)

	type check struct{ name, expr string }
	var checks []check
	for _, q := range queries {
		checks = append(checks, check{q.Dashboard + " / " + q.Panel + " / " + q.RefID, dashboards.Expand(q.Expr, "1m")})
	}
	for _, r := range rules {
		if r.Record != "" {
			checks = append(checks, check{"recording rule " + r.Record + " (" + filepath.Base(r.File) + ")", r.Record})
		}
	}
	// rate() needs two samples in its window and rules one evaluation
	// after them: poll, all checks sharing one deadline.
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		var last QueryResult
		var lastErr error
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			last, lastErr = prom.Query(ctx, c.expr)
			cancel()
			if lastErr == nil && len(last.Samples) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no data from %s (last: %v, err %v)", c.name, c.expr, last, lastErr)
				break
			}
			time.Sleep(PollInterval) // polling Prometheus for the next scrape, not synchronisation
		}
	}
	t.Logf("%d dashboard queries and %d recording rules returned data", len(queries), len(checks)-len(queries))
}
