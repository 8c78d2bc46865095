package stack

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/loteria/loteria/dashboards"
	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/deploy/promcheck"
	"github.com/loteria/loteria/internal/testenv"
)

// livingRun is how long TestLivingStack runs the default stack: more than one round (the cut-off
// is a minute), well under the package's budget.
const livingRun = 90 * time.Second

// stackSettings generates the default compose stack and returns its services as Compose reads
// them: the test runs the same programs with the same settings, as local processes.
func stackSettings(t *testing.T, o compose.Options) (*compose.Plan, *types.Project) {
	t.Helper()
	dir := t.TempDir()
	o.Root = testenv.RepoRoot(t)
	o.Output = filepath.Join(dir, "docker-compose.yaml")
	plan, err := compose.NewPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Write(false); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{plan.Compose.Path}, cli.WithWorkingDirectory(dir),
		cli.WithInterpolation(true), cli.WithNormalization(true), cli.WithProfiles([]string{compose.LoadProfile}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return plan, p
}

// envOf lists a service's environment without the keys the local run sets itself (addresses,
// paths inside the containers, the OTLP endpoint).
func envOf(s types.ServiceConfig, drop ...string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if v := s.Environment[k]; v != nil && !slices.ContainsFunc(drop, func(p string) bool { return strings.HasPrefix(k, p) }) {
			out = append(out, k+"="+*v)
		}
	}
	return out
}

// replaceFlag sets flag's value in a command line.
func replaceFlag(cmd []string, flag, value string) []string {
	out := slices.Clone(cmd)
	if i := slices.Index(out, flag); i >= 0 && i+1 < len(out) {
		out[i+1] = value
	}
	return out
}

// TestLivingStack runs the stack's default scenario for livingRun: continuous rounds on the
// central (ROUNDS=0, a cut-off a minute after each round opens), paced agencies looping over
// rounds with generated bets, the load profile's tool beside them, with the stack's settings
// (taken from the generated compose file) as local processes under a real Prometheus (started
// first, with the rules) and Jaeger. Then every dashboard query must return a finite, non-zero
// value over the run, the round selector must list the rounds, and an exemplar of the batch
// latency must open a trace in Jaeger holding the agency's and the central's spans.
//
// It needs the round and pacing work (central ROUNDS, agency --rate/--rounds/--round-data):
// until the programs have it, it is skipped and says what is missing.
func TestLivingStack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stack's default scenario for 90s")
	}
	bins := testenv.BuildPrograms(t, t.TempDir(), "central", "agency", "loadtest")
	var missing []string
	if !supports(bins["central"], "rounds") {
		missing = append(missing, "central --rounds (ROUNDS)")
	}
	for _, f := range []string{"rate", "rounds", "round-data", "bets-per-round"} {
		if !supports(bins["agency"], f) {
			missing = append(missing, "agency --"+f)
		}
	}
	if len(missing) > 0 {
		t.Skipf("the programs lack %s (the round and pacing work): the living stack cannot run yet", strings.Join(missing, ", "))
	}
	// The load profile at the stack's default rate, on few agencies: its first round then
	// holds about 120,000 bets, so the central's winners panels see a winner whatever the
	// round's number (about 12 expected; at 400 bets/s, 2.4, so none about one run in
	// fifteen), and its batches (full frames, no agency span: the load tool does not trace)
	// stay few beside the agencies' traced ones among the exemplars.
	const agencies, loadAgencies = 3, 5
	plan, project := stackSettings(t, compose.Options{Agencies: agencies, LoadAgencies: loadAgencies, LoadRate: compose.DefaultLoadRate, LoadDuration: time.Minute})
	root := testenv.RepoRoot(t)
	ruleFiles, _ := filepath.Glob(filepath.Join(root, promcheck.RulesGlob))
	rules, err := promcheck.LoadRules(ruleFiles...)
	if err != nil {
		t.Fatal(err)
	}

	j := StartJaeger(t)
	otlp := "OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.OTLPGRPCEndpoint
	central := project.Services[compose.CentralService]
	agency := project.Services[compose.AgencyService(1)]
	batch := "CLI_BATCH_MAXAMOUNT=" + strconv.Itoa(plan.Options.BatchMaxAmount)
	sys := PlanSystem(t, SystemOptions{
		Agencies:   agencies,
		DataDir:    t.TempDir(), // continuous agencies generate their bets
		Binaries:   bins,
		CentralEnv: append(envOf(central, "SERVER_", "METRICS_ADDR", "STORE_PATH", "OTEL_EXPORTER_OTLP_ENDPOINT", "TLS_"), otlp),
		AgencyEnv:  append(envOf(agency, "CLI_CONFIG", "METRICS_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT", "CLI_TLS_"), otlp, batch),
		AgencyArgs: []string(agency.Command),
		Timeout:    livingRun + time.Minute,
	})
	loadMetrics := testenv.FreeAddr(t)
	popts := sys.PrometheusOptions()
	popts.RuleFiles = ruleFiles
	popts.Targets["loadtest"] = []string{loadMetrics}
	prom := StartPrometheusWith(t, popts)

	start := time.Now()
	sys.StartCentral(t)
	prom.WaitFor(t, `up{job="central"}`, Equals(1), firstScrapeBudget)
	injectFaults(t, sys.CentralAddr)
	prom.WaitFor(t, `sum(loteria_protocol_errors_total{job="central"})`, Equals(1), 10*time.Second)
	injectFaults(t, sys.CentralAddr)
	sys.StartAgencies(t)
	loadCmd := replaceFlag(replaceFlag([]string(project.Services[compose.LoadtestService].Command), "--addr", sys.CentralAddr), "--metrics-addr", loadMetrics)
	load := StartProcess(t, ProcessSpec{Name: "loadtest", Path: bins["loadtest"], Args: loadCmd})

	// The scenario runs for livingRun: a bounded run, not a wait for something.
	timer := time.NewTimer(livingRun)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-sys.Central.Done():
		t.Fatalf("the central exited during the run: %v", sys.Central.ExitErr())
	}
	for _, a := range sys.Agencies {
		if !a.Process.Running() {
			t.Errorf("agency %d exited during the run: %v", a.ID, a.Process.ExitErr())
		}
	}
	t.Logf("load tool after %s: running=%v\n%s", livingRun, load.Running(), tail(load.Stdout(), 2048))
	prom.WaitFor(t, `sum(increase(loteria_draws_total{job="central"}[5m]))`, AtLeast(1), 30*time.Second)
	end := time.Now()
	prom.WaitFor(t, `max(timestamp(up{job="central"}))`, AtLeast(float64(end.Add(time.Second).Unix())), 10*time.Second)
	end = end.Add(time.Second)
	ctx := context.Background()

	queries, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	results, err := CheckPanels(ctx, prom, rules, start, end, time.Second, queries)
	if err != nil {
		t.Fatal(err)
	}
	// In continuous rounds two agency panels are honestly zero: a looping
	// agency is never done, and with a fresh number per round an agency's
	// 900 bets win in about one round in eleven. TestDashboardsShowARun
	// (the one-shot run) checks both non-zero.
	continuousZero := map[string]string{
		dashboards.AgenciesUID + "/Agencies done/A":               "agencies looping until stopped are never done",
		dashboards.AgenciesUID + "/Winners received per agency/A": "a fresh number per round: an agency's 900 bets of a round win rarely",
	}
	checked := 0
	for _, r := range results {
		if why := continuousZero[r.Key()]; why != "" && r.Err == nil && r.NaN == 0 && len(r.Pending) == 0 && r.Points > 0 && r.NonZero == 0 {
			t.Logf("%s / %s %s: zero, as expected here (%s)", r.Query.Dashboard, r.Query.Panel, r.Query.RefID, why)
			checked++
			continue
		}
		if p := r.Problem(); p != "" || len(r.Pending) > 0 {
			t.Errorf("%s / %s %s: %s %v\n  %s", r.Query.Dashboard, r.Query.Panel, r.Query.RefID, p, r.Pending, r.Expr)
			continue
		}
		checked++
	}
	t.Logf("%d of %d dashboard queries returned finite, non-zero values over the %s run", checked, len(results), end.Sub(start).Round(time.Second))

	t.Run("round selector", func(t *testing.T) {
		rng := strconv.Itoa(int(end.Sub(start).Seconds())+1) + "s"
		res, err := prom.Query(ctx, dashboards.ExpandRange(dashboards.RoundValuesQuery, "4s", rng))
		if err != nil {
			t.Fatal(err)
		}
		var rounds []string
		for _, s := range res.Samples {
			rounds = append(rounds, s.Metric["round"])
		}
		slices.Sort(rounds)
		if len(rounds) < 2 {
			t.Errorf("the round selector lists rounds %v over the run, want at least 2", rounds)
		}
		t.Logf("rounds %v", rounds)
	})

	t.Run("exemplar opens a trace", func(t *testing.T) { checkExemplarTrace(t, prom, j, start, end) })

	if dir := os.Getenv("LOTERIA_PICTURES"); dir != "" {
		renderPictures(t, prom, start, end, dir)
	}
}

// checkExemplarTrace: an exemplar of the central's batch latency (what a dot on the Batch
// latency panel opens) names a trace that Jaeger holds with the agency's span and the
// central's.
func checkExemplarTrace(t *testing.T, prom *Prometheus, j *Jaeger, start, end time.Time) {
	t.Helper()
	ctx := context.Background()
	Poll(t, 30*time.Second, "an exemplar's trace in Jaeger with the agency's and the central's spans", func() error {
		series, err := prom.QueryExemplars(ctx, `loteria_batch_duration_seconds_bucket{job="central"}`, start, end)
		if err != nil {
			return err
		}
		var last error = fmt.Errorf("no exemplars")
		tried := 0
		for _, s := range series {
			for _, e := range s.Exemplars {
				id := e.Labels["trace_id"]
				// The load profile's batches are the central's traces alone: try
				// enough exemplars to reach an agency's.
				if !traceIDPattern.MatchString(id) || tried >= 100 {
					continue
				}
				tried++
				tr, err := j.Trace(ctx, id)
				if err != nil {
					last = err
					continue
				}
				if len(tr.Find(agencyService, "agency.send_batch")) > 0 && len(tr.Find(centralService, "central.batch")) > 0 {
					t.Logf("exemplar trace_id=%s: %s", id, describeSpans(tr))
					return nil
				}
				last = fmt.Errorf("trace %s lacks a side: %s", id, describeSpans(tr))
			}
		}
		return last
	})
}

// TestExemplarOpensTrace runs the one-shot system (paced as in TestDashboardsShowARun) under a
// Prometheus started first and a Jaeger, with the stack's trace settings: an exemplar of the
// batch latency opens, by its trace id, a Jaeger trace holding both the agency's and the
// central's spans (the link the dashboards' latency panels give).
func TestExemplarOpensTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the system, Prometheus and Jaeger")
	}
	j := StartJaeger(t)
	bins := testenv.BuildPrograms(t, t.TempDir(), "central", "agency", "gendata")
	env := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.OTLPGRPCEndpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=1",
	}
	for _, k := range slices.Sorted(maps.Keys(compose.BSPEnv())) {
		env = append(env, k+"="+compose.BSPEnv()[k])
	}
	opts := SystemOptions{DataDir: officialOrGenerated(t, bins["gendata"]), Binaries: bins, Env: env}
	if supports(bins["agency"], "rate") {
		opts.AgencyArgs = []string{"--rate", "2000"}
	} else {
		opts.AgencyEnv = []string{"CLI_BATCH_MAXAMOUNT=5", "CLI_BATCH_INFLIGHT=1"}
	}
	sys := PlanSystem(t, opts)
	prom := StartPrometheusWith(t, sys.PrometheusOptions())
	start := time.Now()
	sys.StartCentral(t)
	prom.WaitFor(t, `up{job="central"}`, Equals(1), firstScrapeBudget)
	sys.StartAgencies(t)
	sys.WaitWinners(t)
	prom.WaitFor(t, `sum(loteria_agency_done{job="agency"})`, Equals(5), 10*time.Second)
	checkExemplarTrace(t, prom, j, start, time.Now())
}
