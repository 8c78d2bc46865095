// Package stack runs the real loteria programs together with real
// observability backends, for tests that check what an operator would see.
//
// It is a harness, not a test: its non-test files are importable by any test
// package (deploy rule tests, dashboards, load tests).
//
//	RunSystem(tb, SystemOptions) *System         // central + N agencies as processes, until every agency has its winners
//	StartSystem(tb, SystemOptions) *System       // the same without waiting; then (*System).WaitWinners
//	StartPrometheus(tb, targets) *Prometheus     // Debian's prometheus on loopback scraping targets (job → host:port)
//	StartPrometheusWith(tb, PrometheusOptions)   // ... with rule files, another interval or binary
//	StartJaeger(tb) *Jaeger                      // Jaeger v2 ($LOTERIA_JAEGER) with in-memory storage on loopback
//	StartProcess(tb, ProcessSpec) *Process       // any program, its output captured, killed on cleanup
//
// Everything it starts listens on 127.0.0.1 on ports free at the time, is
// bounded in time and is killed when the test ends; a failed test gets the
// tail of every process's output in its log.
//
// A backend that is not installed skips the test, except under CI (CI set),
// where it fails it: CI must run them. Prometheus is found as $LOTERIA_PROMETHEUS
// or "prometheus" on PATH; Jaeger only as $LOTERIA_JAEGER (make jaeger builds it,
// make test sets it). The official data is ../shared/datasets/tp0 beside the
// repository, with the same rule.
//
// The helpers of services/internal/testenv cannot be imported from here
// (Go's internal rule: only code under services/ may), so the few this
// package needs (RepoRoot, OfficialDataDir, BuildPrograms, FreeAddr) are
// repeated in env.go.
package stack
