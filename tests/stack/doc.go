// Package stack runs the real loteria programs together with real
// observability backends, for tests that check what an operator would see.
//
// It is a harness, not a test: its non-test files are importable by any test
// package (deploy rule tests, dashboards, load tests).
//
//	RunSystem(tb, SystemOptions) *System         // central + N agencies as processes, until every agency has its winners
//	StartSystem(tb, SystemOptions) *System       // the same without waiting; then (*System).WaitWinners
//	(*System).Targets, PrometheusOptions         // its metrics endpoints as scrape targets
//	(*System).StopCentral(grace)                 // SIGTERM the central and wait for its exit
//	PlanSystem(tb, SystemOptions) *System        // addresses picked, nothing started: start Prometheus first, then Start/StartCentral/StartAgencies
//	StartPrometheus(tb, targets) *Prometheus     // Prometheus ($LOTERIA_PROMETHEUS: the 3.x make prometheus builds) on loopback scraping targets (job → host:port)
//	StartPrometheusWith(tb, PrometheusOptions)   // ... with rule files, Alertmanagers, another interval or binary
//	StartAlertmanager(tb, webhookURL)            // Alertmanager ($LOTERIA_ALERTMANAGER) sending every alert to a webhook
//	StartAlertlog(tb) *Alertlog                  // the stack's alert receiver (deploy/cmd/alertlog) as a process
//	(*Prometheus).Query, QueryExemplars, Targets, API, WaitFor
//	StartJaeger(tb) *Jaeger                      // Jaeger v2 ($LOTERIA_JAEGER) with in-memory storage on loopback
//	(*Jaeger).Traces, FindTraces, Services, Operations
//	StartProcess(tb, ProcessSpec) *Process       // any program, its output captured, killed on cleanup
//	Poll(tb, timeout, what, check), PollErr      // retry a check until it passes or the timeout ends
//	CheckPanels(ctx, prom, rules, start, end, step, queries) // every dashboard query over a run: finite, non-zero?
//
// Everything it starts listens on 127.0.0.1 on ports free at the time, is
// bounded in time and is killed when the test ends; a failed test gets the
// tail of every process's output in its log.
//
// A backend that is not installed skips the test, except under CI (CI set),
// where it fails it: CI must run them. Prometheus is found as $LOTERIA_PROMETHEUS
// or "prometheus" on PATH, Alertmanager as $LOTERIA_ALERTMANAGER or on PATH;
// Jaeger only as $LOTERIA_JAEGER (make tools builds all three in bin/, make test
// sets the variables). The official data is ../shared/datasets/tp0 beside the
// repository, with the same rule.
//
// The module's shared test helpers come from internal/testenv (RepoRoot,
// OfficialDataDir, CountBets, BuildPrograms, FreeAddr, Unavailable).
package stack
