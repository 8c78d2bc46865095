package observability

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.opentelemetry.io/otel/trace"
)

func TestBuildInfoLabels(t *testing.T) {
	tests := []struct {
		name                         string
		bi                           *debug.BuildInfo
		version, revision, goVersion string
	}{
		{"no build info", nil, "unknown", "unknown", runtime.Version()},
		{"empty build info", &debug.BuildInfo{}, "unknown", "unknown", runtime.Version()},
		{
			"full",
			&debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Path: "github.com/loteria/loteria", Version: "v1.2.3"},
				Settings: []debug.BuildSetting{
					{Key: "vcs", Value: "git"},
					{Key: "vcs.revision", Value: "0123abcd"},
					{Key: "vcs.modified", Value: "false"},
				},
			},
			"v1.2.3", "0123abcd", "go1.26.8",
		},
		{
			"devel build without vcs",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"(devel)", "unknown", "go1.26.8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, r, g := buildInfoLabels(tt.bi)
			if v != tt.version || r != tt.revision || g != tt.goVersion {
				t.Errorf("buildInfoLabels = %q, %q, %q; want %q, %q, %q", v, r, g, tt.version, tt.revision, tt.goVersion)
			}
		})
	}
}

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry("central")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() != BuildInfoName {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%s has %d series, want 1", BuildInfoName, len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		if got := m.GetGauge().GetValue(); got != 1 {
			t.Errorf("%s = %v, want 1", BuildInfoName, got)
		}
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["service"] != "central" {
			t.Errorf("service label = %q, want central", labels["service"])
		}
		for _, k := range []string{"version", "revision", "goversion"} {
			if labels[k] == "" {
				t.Errorf("label %s is empty or missing: %v", k, labels)
			}
		}
	}
	for _, want := range []string{BuildInfoName, "go_goroutines", "process_cpu_seconds_total"} {
		if !names[want] {
			t.Errorf("registry lacks %s", want)
		}
	}

	// What testutil.GatherAndLint does; testutil itself needs a module
	// (github.com/kylelemons/godebug) go.sum does not list yet.
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// Each call is a fresh registry: registering the same collector on two
	// of them works, which it would not on a shared one.
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "loteria_test_total", Help: "test"})
	if err := NewRegistry("a").Register(c); err != nil {
		t.Fatal(err)
	}
	if err := NewRegistry("b").Register(c); err != nil {
		t.Errorf("registries are shared: %v", err)
	}
}

// fakeObserver records how it was called.
type fakeObserver struct {
	values    []float64
	exemplars []prometheus.Labels
}

func (o *fakeObserver) Observe(v float64) {
	o.values = append(o.values, v)
	o.exemplars = append(o.exemplars, nil)
}

type fakeExemplarObserver struct{ fakeObserver }

func (o *fakeExemplarObserver) ObserveWithExemplar(v float64, l prometheus.Labels) {
	o.values = append(o.values, v)
	o.exemplars = append(o.exemplars, l)
}

func TestObserveWithTrace(t *testing.T) {
	tracer, _ := newTestTracer(t)
	sampledCtx, span := tracer.Start(context.Background(), "sampled")
	defer span.End()
	traceID := span.SpanContext().TraceID()
	unsampledCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: span.SpanContext().SpanID(), // flags 0: not sampled
	}))

	tests := []struct {
		name         string
		ctx          context.Context
		exemplars    bool
		wantExemplar bool
	}{
		{"sampled span, exemplar observer", sampledCtx, true, true},
		{"sampled span, plain observer", sampledCtx, false, false},
		{"unsampled span", unsampledCtx, true, false},
		{"no span", context.Background(), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec *fakeObserver
			var o prometheus.Observer
			if tt.exemplars {
				eo := &fakeExemplarObserver{}
				rec, o = &eo.fakeObserver, eo
			} else {
				rec = &fakeObserver{}
				o = rec
			}
			ObserveWithTrace(tt.ctx, o, 0.25)
			if len(rec.values) != 1 || rec.values[0] != 0.25 {
				t.Fatalf("observed %v, want [0.25]", rec.values)
			}
			got := rec.exemplars[0]
			if !tt.wantExemplar {
				if got != nil {
					t.Errorf("unexpected exemplar %v", got)
				}
				return
			}
			if len(got) != 1 || got[ExemplarTraceIDLabel] != traceID.String() {
				t.Errorf("exemplar = %v, want trace_id=%s", got, traceID)
			}
		})
	}
}
