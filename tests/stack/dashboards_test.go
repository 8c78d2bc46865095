package stack

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/promcheck"
	"github.com/loteria/loteria/internal/testenv"
)

// supports reports whether a program's -h output names flag: the round and pacing work adds
// flags the programs on main may not have yet.
func supports(bin, flag string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ") || strings.Contains(string(out), "-"+flag+"\n") || strings.Contains(string(out), "--"+flag)
}

// injectFaults gives the error panels something to show: a frame whose header is not eight
// digits (a protocol error) and a batch whose count is not a number (a malformed batch).
func injectFaults(t *testing.T, addr string) {
	t.Helper()
	for _, frame := range []string{"abcdefgh", fmt.Sprintf("%08d1;x\n", len("1;x\n"))} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(frame)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, _ := c.Read(buf) // the central's error frame
		c.Close()
		if !strings.Contains(string(buf[:n]), "error") {
			t.Errorf("fault %q: answer %q, want an error frame", frame, buf[:n])
		}
	}
}

// TestDashboardsShowARun runs the one-shot system (the course's files, or generated ones) with
// Prometheus started before it and the load tool beside the agencies, then runs every dashboard
// query over the run as Grafana would: each must return a finite, non-zero value (zero only where
// ZeroInAHealthyRun says why), or a panel would stay empty or flat for users (issue 10: rate
// panels at 0, a p99 of NaN). The run is paced (--rate when the agency has it, else small
// stop-and-wait batches) so Prometheus scrapes it while it runs.
func TestDashboardsShowARun(t *testing.T) {
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
	bins := testenv.BuildPrograms(t, t.TempDir(), "central", "agency", "loadtest", "gendata")
	dataDir := officialOrGenerated(t, bins["gendata"])

	const loadAgencies = 5
	sysOpts := SystemOptions{
		DataDir:    dataDir,
		Binaries:   bins,
		Env:        []string{"OTEL_TRACES_SAMPLER=always_on"},
		CentralEnv: []string{fmt.Sprintf("CLIENT_COUNT=%d", 5+loadAgencies)},
	}
	if supports(bins["agency"], "rate") {
		sysOpts.AgencyArgs = []string{"--rate", "2000"}
	} else {
		sysOpts.AgencyEnv = []string{"CLI_BATCH_MAXAMOUNT=5", "CLI_BATCH_INFLIGHT=1"}
	}
	// Prometheus first: it sees the run from its first bet.
	sys := PlanSystem(t, sysOpts)
	loadMetrics := testenv.FreeAddr(t)
	opts := sys.PrometheusOptions()
	opts.RuleFiles = ruleFiles
	opts.Targets["loadtest"] = []string{loadMetrics}
	prom := StartPrometheusWith(t, opts)
	start := time.Now()
	// As in the stack, the agencies start once the central has been scraped: the central's
	// counters are seen at 0 before the run moves them.
	sys.StartCentral(t)
	prom.WaitFor(t, `up{job="central"}`, Equals(1), firstScrapeBudget)
	// Faults twice, a scrape apart: a labelled series born with its first fault is first seen
	// at 1, and a rate needs it to move after that.
	injectFaults(t, sys.CentralAddr)
	prom.WaitFor(t, `sum(loteria_protocol_errors_total{job="central"})`, Equals(1), 10*time.Second)
	injectFaults(t, sys.CentralAddr)
	prom.WaitFor(t, `sum(loteria_protocol_errors_total{job="central"})`, Equals(2), 10*time.Second)
	sys.StartAgencies(t)
	load := StartProcess(t, ProcessSpec{Name: "loadtest", Path: bins["loadtest"], Args: []string{
		"--addr", sys.CentralAddr, "--agencies", fmt.Sprint(loadAgencies), "--first-id", "6",
		"--bets", "1000", "--batch", "20", "--rate", "400", "--metrics-addr", loadMetrics, "--quiet",
	}})
	sys.WaitWinners(t)
	if err := load.Wait(2 * time.Minute); err != nil {
		t.Errorf("load tool: %v\n%s", err, load.Stdout())
	}
	ran := time.Since(start)
	// Prometheus has the run's final values (the agencies linger for it) and the rules have
	// been evaluated on them.
	prom.WaitFor(t, `sum(loteria_draws_total{job="central"})`, AtLeast(1), 10*time.Second)
	prom.WaitFor(t, `sum(loteria_agency_done{job="agency"})`, Equals(5), 10*time.Second)
	prom.WaitFor(t, `count(loteria_winners{job="central"})`, AtLeast(5), 10*time.Second)
	prom.WaitFor(t, `loteria:batch_error_ratio:rate5m`, func(v float64) bool { return v > 0 }, 30*time.Second)
	// The last point of a range query falls up to a step before its end: the run's last values
	// must be older than that, so the range ends once Prometheus has scraped the central again.
	end := time.Now()
	prom.WaitFor(t, `max(timestamp(up{job="central"}))`, AtLeast(float64(end.Add(time.Second).Unix())), 10*time.Second)
	end = end.Add(time.Second)
	ctx := context.Background()
	results, err := CheckPanels(ctx, prom, rules, start, end, time.Second, queries)
	if err != nil {
		t.Fatal(err)
	}
	checked, pending := 0, map[string]bool{}
	for _, r := range results {
		if p := r.Problem(); p != "" {
			t.Errorf("%s / %s %s: %s\n  %s", r.Query.Dashboard, r.Query.Panel, r.Query.RefID, p, r.Expr)
			continue
		}
		if len(r.Pending) > 0 {
			for _, m := range r.Pending {
				pending[m] = true
			}
			continue
		}
		checked++
	}
	// Every recording rule (the alerts read some that no panel does) has finite values.
	for _, r := range rules {
		if r.Record == "" {
			continue
		}
		vals, err := prom.RangeValues(ctx, r.Record, start, end, time.Second)
		finite := 0
		for _, v := range vals {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				finite++
			}
		}
		if err != nil || finite == 0 {
			t.Errorf("recording rule %s (%s): %d finite values of %d, %v", r.Record, filepath.Base(r.File), finite, len(vals), err)
		}
	}
	if dir := os.Getenv("LOTERIA_PICTURES"); dir != "" {
		renderPictures(t, prom, start, end, dir)
	}
	t.Logf("run of %s: %d of %d dashboard queries returned finite, non-zero values; not checked until the programs export %v",
		ran.Round(time.Millisecond), checked, len(results), keys(pending))
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// officialOrGenerated is the course's dataset, or five generated files when it is not there.
func officialOrGenerated(t *testing.T, gendata string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "datasets", "tp0")
	if _, err := exec.Command("test", "-f", testenv.AgencyFile(dir, 1)).CombinedOutput(); err == nil {
		return dir
	}
	out := t.TempDir()
	if b, err := exec.Command(gendata, "--agencies", "5", "--bets", "15000", "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("gendata: %v\n%s", err, b)
	}
	return out
}
