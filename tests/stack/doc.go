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
//	StartPrometheus(tb, targets) *Prometheus     // a real prometheus on loopback scraping targets (job → host:port)
//	StartPrometheusWith(tb, PrometheusOptions)   // ... with rule files, another interval or binary
//	(*Prometheus).Query, QueryExemplars, Targets, API, WaitFor
//	StartJaeger(tb) *Jaeger                      // Jaeger v2 ($LOTERIA_JAEGER) with in-memory storage on loopback
//	(*Jaeger).Traces, FindTraces, Services, Operations
//	StartProcess(tb, ProcessSpec) *Process       // any program, its output captured, killed on cleanup
//	Poll(tb, timeout, what, check), PollErr      // retry a check until it passes or the timeout ends
//
// Everything it starts listens on 127.0.0.1 on ports free at the time, is
// bounded in time and is killed when the test ends; a failed test gets the
// tail of every process's output in its log.
//
// A backend that is not installed skips the test, except under CI (CI set),
// where it fails it: CI must run them. Prometheus is $LOTERIA_PROMETHEUS or
// "prometheus" on PATH; Jaeger only $LOTERIA_JAEGER (make jaeger builds
// bin/jaeger; make test and make test-unit set it when it exists). The
// official data is ../shared/datasets/tp0 beside the repository, with the
// same rule.
//
// The module's shared test helpers come from internal/testenv (RepoRoot,
// OfficialDataDir, CountBets, BuildPrograms, FreeAddr, Unavailable).
package stack
