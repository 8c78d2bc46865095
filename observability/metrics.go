package observability

import (
	"context"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
)

// BuildInfoName is the name of the gauge NewRegistry registers.
const BuildInfoName = "loteria_build_info"

// ExemplarTraceIDLabel is the exemplar label ObserveWithTrace sets.
const ExemplarTraceIDLabel = "trace_id"

const unknown = "unknown"

// NewRegistry returns a fresh registry (never the global one) holding the Go
// and process collectors and loteria_build_info, a gauge of value 1 labelled
// with service, version (the main module's version), revision (vcs.revision)
// and goversion; a value the binary does not record is "unknown".
func NewRegistry(service string) *prometheus.Registry {
	bi, _ := debug.ReadBuildInfo() // nil when the binary has none
	reg := prometheus.NewRegistry()
	// A fresh registry cannot already hold these, so MustRegister cannot panic.
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(service, bi),
	)
	return reg
}

func newBuildInfo(service string, bi *debug.BuildInfo) prometheus.Gauge {
	version, revision, goVersion := buildInfoLabels(bi)
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: BuildInfoName,
		Help: "Build information about the running binary; always 1.",
		ConstLabels: prometheus.Labels{
			"service":   service,
			"version":   version,
			"revision":  revision,
			"goversion": goVersion,
		},
	})
	g.Set(1)
	return g
}

// buildInfoLabels extracts the build_info label values; bi may be nil.
func buildInfoLabels(bi *debug.BuildInfo) (version, revision, goVersion string) {
	version, revision, goVersion = unknown, unknown, runtime.Version()
	if bi == nil {
		return version, revision, goVersion
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return version, revision, goVersion
}

// ObserveWithTrace records v on o with an exemplar labelled trace_id when the
// span in ctx is sampled and o supports exemplars (a histogram or summary
// observer does); otherwise it is a plain Observe. Exemplars only reach a
// scraper that negotiates OpenMetrics, which [HTTPServer] offers.
func ObserveWithTrace(ctx context.Context, o prometheus.Observer, v float64) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() && sc.IsValid() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prometheus.Labels{ExemplarTraceIDLabel: sc.TraceID().String()})
			return
		}
	}
	o.Observe(v)
}
