package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/deploy/compose"
	"github.com/loteria/loteria/internal/testenv"
)

// TestTracesWithoutLoss: with the stack's trace settings (compose.BSPEnv, a parent-based
// always-on sampler), a 100-agency run exports every span: Jaeger holds one central.batch span
// per batch the central stored. The SDK's defaults (a 2,048-span queue) exported 2,651 of 10,000
// such spans in issue 10. The load tool drives the 100 agencies (one process, real agency
// clients) against a central process.
func TestTracesWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a central, the load tool and Jaeger")
	}
	const agencies, batchesEach = 100, 100
	j := StartJaeger(t)
	bins := testenv.BuildPrograms(t, t.TempDir(), "central", "agency", "loadtest")
	env := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.OTLPGRPCEndpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=1",
	}
	for k, v := range compose.BSPEnv() {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	sys := PlanSystem(t, SystemOptions{Agencies: agencies, DataDir: t.TempDir(), Binaries: bins, CentralEnv: env})
	sys.StartCentral(t)
	load := StartProcess(t, ProcessSpec{Name: "loadtest", Path: bins["loadtest"], Args: []string{
		"--addr", sys.CentralAddr, "--agencies", fmt.Sprint(agencies), "--bets", fmt.Sprint(batchesEach * 10), "--batch", "10", "--quiet",
	}})
	if err := load.Wait(3 * time.Minute); err != nil {
		t.Fatalf("load tool: %v\n%s\n%s", err, load.Stdout(), tail(load.Stderr(), 4096))
	}
	// The central flushes its span queue when it stops.
	if err := sys.StopCentral(30 * time.Second); err != nil {
		t.Fatalf("central: %v", err)
	}
	if strings.Contains(sys.Central.Stderr(), "flush traces") {
		t.Errorf("the central could not flush its spans:\n%s", grepLines(sys.Central.Stderr(), "flush traces"))
	}
	want := agencies * batchesEach
	ctx := context.Background()
	got := 0
	Poll(t, 60*time.Second, fmt.Sprintf("%d central.batch spans in Jaeger", want), func() error {
		traces, err := j.FindTraces(ctx, TraceQuery{Service: centralService, Operation: "central.batch", Limit: 2 * want})
		if err != nil {
			return err
		}
		got = 0
		for _, tr := range traces {
			got += len(tr.Find(centralService, "central.batch"))
		}
		if got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
	if got != want {
		t.Errorf("%d central.batch spans, want one per batch: %d", got, want)
	}
	t.Logf("%d agencies, %d batches: %d central.batch spans exported with %v", agencies, want, got, env)
}
