package observability

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceExportFrom(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    TraceExport
		enabled bool
		wantErr string
	}{
		{
			name: "nothing set",
			want: TraceExport{Exporter: "otlp", Protocol: "http/protobuf"},
		},
		{
			name:    "endpoint, default protocol",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want:    TraceExport{Exporter: "otlp", Protocol: "http/protobuf", Endpoint: "http://collector:4318"},
			enabled: true,
		},
		{
			name: "traces endpoint and protocol win over the general ones",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4317",
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
			},
			want:    TraceExport{Exporter: "otlp", Protocol: "grpc", Endpoint: "http://tempo:4317"},
			enabled: true,
		},
		{
			name:    "general protocol, any case and spaces",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": " GRPC ", "OTEL_EXPORTER_OTLP_ENDPOINT": " http://c:4317 "},
			want:    TraceExport{Exporter: "otlp", Protocol: "grpc", Endpoint: "http://c:4317"},
			enabled: true,
		},
		{
			name:    "explicit otlp",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			want:    TraceExport{Exporter: "otlp", Protocol: "http/protobuf", Endpoint: "http://c:4318"},
			enabled: true,
		},
		{
			name: "none wins over the endpoint",
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			want: TraceExport{Exporter: "none"},
		},
		{
			name: "none ignores a bad protocol",
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
			want: TraceExport{Exporter: "none"},
		},
		{
			name:    "unknown exporter",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"},
			wantErr: `unsupported OTEL_TRACES_EXPORTER value "zipkin": use otlp or none`,
		},
		{
			name:    "unknown exporter in a list",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"},
			wantErr: `unsupported OTEL_TRACES_EXPORTER value "console"`,
		},
		{
			name:    "unsupported protocol",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `unsupported OTEL_EXPORTER_OTLP_PROTOCOL value "http/json": use grpc or http/protobuf`,
		},
		{
			name:    "unsupported traces protocol",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"},
			wantErr: `unsupported OTEL_EXPORTER_OTLP_TRACES_PROTOCOL value "udp"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := traceExportFrom(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || got.Enabled() != tt.enabled {
				t.Errorf("got %+v (enabled %v), want %+v (enabled %v)", got, got.Enabled(), tt.want, tt.enabled)
			}
			if got.String() == "" {
				t.Error("empty description")
			}
		})
	}
}

// otelEnv lists the variables these tests depend on; each test starts with
// all of them empty, which the SDK and this package treat as unset.
var otelEnv = []string{
	"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT",
}

func setOTelEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func resourceAttr(t *testing.T, span trace.Span, key attribute.Key) string {
	t.Helper()
	ro, ok := span.(sdktrace.ReadOnlySpan)
	if !ok {
		t.Fatalf("span %T is not an SDK span", span)
	}
	v, _ := ro.Resource().Set().Value(key)
	return v.Emit()
}

func TestNewTracerProvider(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string
		wantSampled bool
		wantService string
	}{
		// With nowhere to export, spans are not recorded (valid ids for
		// logs, no cost), unless OTEL_TRACES_SAMPLER says otherwise.
		{name: "no endpoint", wantSampled: false, wantService: "loteria-test"},
		{
			name:        "no endpoint, sampler set",
			env:         map[string]string{"OTEL_TRACES_SAMPLER": "always_on"},
			wantSampled: true, wantService: "loteria-test",
		},
		{
			name:        "exporter none",
			env:         map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
			wantSampled: false, wantService: "loteria-test",
		},
		{
			name:        "grpc exporter is created without connecting",
			env:         map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
			wantSampled: true, wantService: "loteria-test",
		},
		{
			name:        "http exporter is created without connecting",
			env:         map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"},
			wantSampled: true, wantService: "loteria-test",
		},
		{
			name:        "OTEL_TRACES_SAMPLER is honoured",
			env:         map[string]string{"OTEL_TRACES_SAMPLER": "always_off"},
			wantSampled: false, wantService: "loteria-test",
		},
		{
			name:        "OTEL_SERVICE_NAME overrides",
			env:         map[string]string{"OTEL_SERVICE_NAME": "renamed", "OTEL_TRACES_SAMPLER": "always_on"},
			wantSampled: true, wantService: "renamed",
		},
		{
			name:        "ratio 0 with an endpoint",
			env:         map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
			wantSampled: false, wantService: "loteria-test",
		},
		{
			name:        "parentbased_always_on (the compose file's) records roots",
			env:         map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
			wantSampled: true, wantService: "loteria-test",
		},
		{
			name:    "unknown exporter",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"},
			wantErr: `tracing: unsupported OTEL_TRACES_EXPORTER value "jaeger"`,
		},
		{
			name:    "unsupported sampler",
			env:     map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
			wantErr: `tracing: unsupported OTEL_TRACES_SAMPLER value "jaeger_remote"`,
		},
		{
			name:    "sampler argument out of range",
			env:     map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10"},
			wantErr: `OTEL_TRACES_SAMPLER_ARG="10" is not a ratio`,
		},
		{
			name:    "bad queue size with an endpoint",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_BSP_MAX_QUEUE_SIZE": "lots"},
			wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="lots" is not a positive integer`,
		},
		{
			name:    "unsupported protocol",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
			wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL",
		},
		{
			name:    "malformed resource attributes",
			env:     map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "no-equals-sign"},
			wantErr: "check OTEL_RESOURCE_ATTRIBUTES",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setOTelEnv(t, tt.env)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			tp, err := NewTracerProvider(ctx, "loteria-test", attribute.Int("loteria.agency.id", 3))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(ctx, "op")
			sc := span.SpanContext()
			if !sc.IsValid() || sc.IsSampled() != tt.wantSampled {
				t.Errorf("span context valid=%v sampled=%v, want valid and sampled=%v", sc.IsValid(), sc.IsSampled(), tt.wantSampled)
			}
			if tt.wantSampled {
				if got := resourceAttr(t, span, "service.name"); got != tt.wantService {
					t.Errorf("service.name = %q, want %q", got, tt.wantService)
				}
				if got := resourceAttr(t, span, "loteria.agency.id"); got != "3" {
					t.Errorf("loteria.agency.id = %q, want 3", got)
				}
			}
			// Unsampled and exporter-less spans are never sent; the
			// exporters above point at a closed port, so only end the span
			// where there is nowhere to send it.
			if exp, err := TraceExportFromEnv(); err != nil || !exp.Enabled() {
				span.End()
			}
			if err := tp.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestNewTracerProviderExportsOTLPHTTP checks spans really leave through the
// http/protobuf exporter: a stub collector receives them on Shutdown's flush.
func TestNewTracerProviderExportsOTLPHTTP(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
		size  int
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		size += len(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()

	setOTelEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tp, err := NewTracerProvider(ctx, "loteria-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(ctx, "agency.send_batch")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/v1/traces" || size == 0 {
		t.Errorf("collector got requests %v (%d bytes), want a POST to /v1/traces", paths, size)
	}
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

func TestTraceparentRoundTrip(t *testing.T) {
	tracer, _ := newTestTracer(t)
	sampledCtx, span := tracer.Start(context.Background(), "agency.send_batch")
	defer span.End()
	unsampledCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6},
	}))

	tests := []struct {
		name      string
		ctx       context.Context
		wantFlags string
	}{
		{"sampled", sampledCtx, "01"},
		{"not sampled", unsampledCtx, "00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := trace.SpanContextFromContext(tt.ctx)
			tp := Traceparent(tt.ctx)
			if !traceparentRE.MatchString(tp) || !strings.HasSuffix(tp, "-"+tt.wantFlags) {
				t.Fatalf("Traceparent = %q, want 00-<trace>-<span>-%s", tp, tt.wantFlags)
			}
			if wantTP := "00-" + want.TraceID().String() + "-" + want.SpanID().String() + "-" + tt.wantFlags; tp != wantTP {
				t.Errorf("Traceparent = %q, want %q", tp, wantTP)
			}

			got := trace.SpanContextFromContext(ContextWithTraceparent(context.Background(), tp))
			if !got.IsValid() || !got.IsRemote() {
				t.Fatalf("extracted %+v: want a valid remote span context", got)
			}
			if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || got.IsSampled() != want.IsSampled() {
				t.Errorf("extracted %s/%s sampled=%v, want %s/%s sampled=%v",
					got.TraceID(), got.SpanID(), got.IsSampled(), want.TraceID(), want.SpanID(), want.IsSampled())
			}
		})
	}

	// A server span started from the extracted context joins the trace.
	remote := ContextWithTraceparent(context.Background(), Traceparent(sampledCtx))
	_, child := tracer.Start(remote, "central.batch")
	defer child.End()
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("child trace %s, want %s", child.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
	if p := child.(sdktrace.ReadOnlySpan).Parent(); p.SpanID() != span.SpanContext().SpanID() || !p.IsRemote() {
		t.Errorf("child parent = %s remote=%v, want %s remote", p.SpanID(), p.IsRemote(), span.SpanContext().SpanID())
	}
}

func TestTraceparentWithoutSpan(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"background", context.Background()},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Traceparent(tt.ctx); got != "" {
				t.Errorf("Traceparent = %q, want empty", got)
			}
		})
	}
}

func TestContextWithTraceparentRejectsGarbage(t *testing.T) {
	tracer, _ := newTestTracer(t)
	withSpan, span := tracer.Start(context.Background(), "existing")
	defer span.End()

	const (
		trace32 = "4bf92f3577b34da6a3ce929d0e0e4736"
		span16  = "00f067aa0ba902b7"
	)
	inputs := []string{
		"",
		"garbage",
		"00-" + trace32 + "-" + span16, // no flags
		"00-" + strings.Repeat("0", 32) + "-" + span16 + "-01",  // zero trace id
		"00-" + trace32 + "-" + strings.Repeat("0", 16) + "-01", // zero span id
		"00-" + strings.ToUpper(trace32) + "-" + span16 + "-01", // upper-case hex
		"00-" + trace32[:31] + "-" + span16 + "-01",             // short trace id
		"00-" + trace32 + "-" + span16 + "-01-extra",            // extra field in version 00
		"ff-" + trace32 + "-" + span16 + "-01",                  // forbidden version
		"00-" + trace32 + "-" + span16 + "-zz",                  // bad flags
	}
	bases := []struct {
		name string
		ctx  context.Context
	}{
		{"background", context.Background()},
		{"with span", withSpan},
	}
	for _, base := range bases {
		for _, in := range inputs {
			t.Run(base.name+"/"+in, func(t *testing.T) {
				if got := ContextWithTraceparent(base.ctx, in); got != base.ctx {
					t.Errorf("ContextWithTraceparent(%q) changed the context to span %v",
						in, trace.SpanContextFromContext(got))
				}
			})
		}
	}
}

func BenchmarkTraceparent(b *testing.B) {
	tracer, _ := newTestTracer(b)
	ctx, span := tracer.Start(context.Background(), "bench")
	defer span.End()
	b.ReportAllocs()
	for b.Loop() {
		if Traceparent(ctx) == "" {
			b.Fatal("empty traceparent")
		}
	}
}

func BenchmarkContextWithTraceparent(b *testing.B) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ContextWithTraceparent(ctx, tp) == ctx {
			b.Fatal("not extracted")
		}
	}
}

func TestTraceSamplingFrom(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		exported bool
		want     float64
		wantErr  string
	}{
		{name: "unset, nothing exported", want: 0},
		{name: "unset, exported", exported: true, want: DefaultExportRatio},
		{name: "always_on", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, want: 1},
		{name: "always_off, exported", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, exported: true, want: 0},
		{name: "traceidratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, exported: true, want: 0.25},
		{name: "traceidratio without argument", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio"}, want: 1},
		{name: "any case and spaces", env: map[string]string{"OTEL_TRACES_SAMPLER": " TraceIdRatio ", "OTEL_TRACES_SAMPLER_ARG": " 0.5 "}, want: 0.5},
		{name: "argument 0", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, exported: true, want: 0},
		{name: "argument 1", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, want: 1},
		{name: "parentbased ratio is the same ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}, want: 0.01},
		{name: "parentbased_always_on", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, want: 1},
		{name: "parentbased_always_off", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, exported: true, want: 0},
		{name: "argument ignored by always_on", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "x"}, want: 1},
		{name: "argument not a number", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "ten percent"}, wantErr: "is not a ratio"},
		{name: "argument negative", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"}, wantErr: "is not a ratio"},
		{name: "argument above 1", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, wantErr: "is not a ratio"},
		{name: "argument NaN", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"}, wantErr: "is not a ratio"},
		{name: "unsupported", env: map[string]string{"OTEL_TRACES_SAMPLER": "xray"}, wantErr: `unsupported OTEL_TRACES_SAMPLER value "xray"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := traceSamplingFrom(func(k string) string { return tt.env[k] }, tt.exported)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Ratio != tt.want {
				t.Fatalf("got %+v, %v; want ratio %v", got, err, tt.want)
			}
			if !strings.Contains(got.String(), "sampled flag is ignored") {
				t.Errorf("description %q does not say the peer's flag is ignored", got)
			}
		})
	}
}

func TestSpanQueueFrom(t *testing.T) {
	def := SpanQueue{QueueSize: DefaultSpanQueueSize, BatchSize: DefaultSpanBatchSize,
		ScheduleDelay: DefaultSpanScheduleDelay, ExportTimeout: DefaultSpanExportTimeout}
	tests := []struct {
		name    string
		env     map[string]string
		want    SpanQueue
		wantErr string
	}{
		{name: "defaults", want: def},
		{name: "all set", env: map[string]string{
			"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
			"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_EXPORT_TIMEOUT": "1500",
		}, want: SpanQueue{QueueSize: 100, BatchSize: 10, ScheduleDelay: 200 * time.Millisecond, ExportTimeout: 1500 * time.Millisecond}},
		{name: "small queue shrinks the default batch", env: map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "64"},
			want: SpanQueue{QueueSize: 64, BatchSize: 64, ScheduleDelay: def.ScheduleDelay, ExportTimeout: def.ExportTimeout}},
		{name: "batch larger than queue", env: map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "64", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128"},
			wantErr: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=128 is larger than OTEL_BSP_MAX_QUEUE_SIZE=64"},
		{name: "zero queue", env: map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, wantErr: `OTEL_BSP_MAX_QUEUE_SIZE="0" is not a positive integer`},
		{name: "negative batch", env: map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "-1"}, wantErr: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
		{name: "delay with a unit", env: map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "5s"}, wantErr: `OTEL_BSP_SCHEDULE_DELAY="5s" is not a positive integer (milliseconds)`},
		{name: "timeout not a number", env: map[string]string{"OTEL_BSP_EXPORT_TIMEOUT": "soon"}, wantErr: "OTEL_BSP_EXPORT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := spanQueueFrom(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// testProvider is a provider sampling at ratio, with exporter (may be nil)
// behind the bounded queue q, counting drops on a fresh registry.
func testProvider(t *testing.T, ratio float64, exporter sdktrace.SpanExporter, q SpanQueue) (*sdktrace.TracerProvider, *prometheus.CounterVec) {
	t.Helper()
	dropped, err := newSpansDropped(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tp := newTracerProvider(resource.Empty(), TraceSampling{Ratio: ratio}, exporter, q, dropped)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, dropped
}

// remoteParent is a context holding a remote span context of traceID with
// the sampled flag as given, as ContextWithTraceparent makes from a peer.
func remoteParent(traceID trace.TraceID, sampled bool) context.Context {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0, 0, 0, 0, 0, 0, 1}, TraceFlags: flags, Remote: true,
	}))
}

// TestSampledFlagOfPeerIgnored: an untrusted peer's traceparent saying
// "sampled" does not make the central record a span its ratio drops, and
// "not sampled" does not stop one its ratio keeps.
func TestSampledFlagOfPeerIgnored(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
	tests := []struct {
		name   string
		ratio  float64
		flags  string
		record bool
	}{
		{"ratio 0, peer says sampled", 0, "01", false},
		{"ratio 1, peer says not sampled", 1, "00", true},
		{"ratio 0, peer says not sampled", 0, "00", false},
		{"ratio 1, peer says sampled", 1, "01", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provider, _ := testProvider(t, tt.ratio, nil, SpanQueue{})
			parent := ContextWithTraceparent(context.Background(), tp+tt.flags)
			if !trace.SpanContextFromContext(parent).IsRemote() {
				t.Fatal("traceparent not extracted")
			}
			ctx, span := provider.Tracer("test").Start(parent, "central.batch", trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			if span.IsRecording() != tt.record || span.SpanContext().IsSampled() != tt.record {
				t.Errorf("recording=%v sampled=%v, want %v", span.IsRecording(), span.SpanContext().IsSampled(), tt.record)
			}
			// Its local children follow: the same trace id, the same answer.
			_, child := provider.Tracer("test").Start(ctx, "central.validate")
			defer child.End()
			if child.IsRecording() != tt.record {
				t.Errorf("child recording=%v, want %v", child.IsRecording(), tt.record)
			}
			// The logs still get the peer's trace id.
			if got := span.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("trace id %s, want the peer's", got)
			}
		})
	}
}

// ratioOracle is the decision TraceIDRatioBased makes, from the OpenTelemetry
// specification's arithmetic: the trace id's last 8 bytes as a big-endian
// integer, shifted right once, below ratio × 2^63.
func ratioOracle(id trace.TraceID, ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	return binary.BigEndian.Uint64(id[8:])>>1 < uint64(ratio*(1<<63))
}

// TestSamplingMatchesTraceIDRatio: for root and remote-parented spans,
// whatever the parent's flag, the decision is TraceIDRatioBased's for the
// same trace id.
func TestSamplingMatchesTraceIDRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ratio := range []float64{0, 0.001, 0.1, 0.25, 0.5, 0.9, 1} {
		t.Run(strconv.FormatFloat(ratio, 'g', -1, 64), func(t *testing.T) {
			provider, _ := testProvider(t, ratio, nil, SpanQueue{})
			tracer := provider.Tracer("test")
			sdkSampler := sdktrace.TraceIDRatioBased(ratio)
			const n = 4000
			kept := 0
			for i := range n {
				var id trace.TraceID
				binary.BigEndian.PutUint64(id[:8], rng.Uint64())
				binary.BigEndian.PutUint64(id[8:], rng.Uint64())
				want := ratioOracle(id, ratio)
				sdkWant := sdkSampler.ShouldSample(sdktrace.SamplingParameters{TraceID: id}).Decision == sdktrace.RecordAndSample
				if want != sdkWant {
					t.Fatalf("oracle and TraceIDRatioBased disagree on %s", id)
				}
				if want {
					kept++
				}
				_, span := tracer.Start(remoteParent(id, i%2 == 0), "central.batch")
				if got := span.SpanContext().IsSampled(); got != want {
					t.Fatalf("trace %s (parent sampled=%v): sampled=%v, want %v", id, i%2 == 0, got, want)
				}
				span.End()

				_, root := tracer.Start(context.Background(), "agency.send_batch")
				if got, want := root.SpanContext().IsSampled(), ratioOracle(root.SpanContext().TraceID(), ratio); got != want {
					t.Fatalf("root trace %s: sampled=%v, want %v", root.SpanContext().TraceID(), got, want)
				}
				root.End()
			}
			// The share kept is near the ratio (a binomial's 5 standard deviations).
			sd := math.Sqrt(ratio * (1 - ratio) / n)
			if share := float64(kept) / n; math.Abs(share-ratio) > 5*sd+1e-9 {
				t.Errorf("kept %.4f of traces, want about %v", share, ratio)
			}
		})
	}
}

// TestCentralKeepsWhatAgencyKeeps: with the central's ratio at least the
// agency's, every trace the agency records has its central side recorded,
// through the real traceparent round trip.
func TestCentralKeepsWhatAgencyKeeps(t *testing.T) {
	agencyTP, _ := testProvider(t, 0.1, nil, SpanQueue{})
	centralTP, _ := testProvider(t, 0.3, nil, SpanQueue{})
	agencyKept, centralKept := 0, 0
	for range 5000 {
		ctx, span := agencyTP.Tracer("agency").Start(context.Background(), "agency.send_batch")
		remote := ContextWithTraceparent(context.Background(), Traceparent(ctx))
		_, cspan := centralTP.Tracer("central").Start(remote, "central.batch")
		if span.SpanContext().IsSampled() {
			agencyKept++
			if !cspan.SpanContext().IsSampled() {
				t.Fatalf("agency kept trace %s, the central did not", span.SpanContext().TraceID())
			}
		}
		if cspan.SpanContext().IsSampled() {
			centralKept++
		}
		cspan.End()
		span.End()
	}
	if agencyKept == 0 || centralKept <= agencyKept {
		t.Errorf("agency kept %d, central %d: want some, and more at the central", agencyKept, centralKept)
	}
}

// blockingExporter holds every export until release is closed, and counts
// the spans it was given.
type blockingExporter struct {
	release chan struct{}
	entered chan struct{} // gets a value when an export starts
	fail    bool
	mu      sync.Mutex
	spans   int
}

func (e *blockingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case e.entered <- struct{}{}:
	default:
	}
	select {
	case <-e.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.fail {
		return errors.New("collector refused")
	}
	e.mu.Lock()
	e.spans += len(spans)
	e.mu.Unlock()
	return nil
}

func (e *blockingExporter) Shutdown(context.Context) error { return nil }

func (e *blockingExporter) exported() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spans
}

// TestDroppedSpansCounted: with the exporter blocked, the queue takes
// QueueSize spans and every further one is counted as dropped, not lost
// unseen; once the exporter is free, every admitted span is exported.
func TestDroppedSpansCounted(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	q := SpanQueue{QueueSize: 8, BatchSize: 4, ScheduleDelay: time.Hour, ExportTimeout: time.Hour}
	provider, dropped := testProvider(t, 1, exp, q)
	tracer := provider.Tracer("test")
	end := func(n int) {
		for range n {
			_, span := tracer.Start(context.Background(), "central.batch")
			span.End()
		}
	}
	end(4) // a full batch: its export starts and blocks
	select {
	case <-exp.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch was not exported")
	}
	end(16) // 4 more fit (8 waiting in all), 12 do not
	if got := testutil.ToFloat64(dropped.WithLabelValues(DropQueueFull)); got != 12 {
		t.Errorf("%s{reason=queue_full} = %v, want 12", SpansDroppedName, got)
	}
	close(exp.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported(); got != 8 {
		t.Errorf("exported %d spans, want the 8 admitted", got)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues(DropExportFailed)); got != 0 {
		t.Errorf("%s{reason=export_failed} = %v, want 0", SpansDroppedName, got)
	}
}

// TestFailedExportsCounted: the spans of an export that fails are counted
// as dropped, and they free their places in the queue.
func TestFailedExportsCounted(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{}), entered: make(chan struct{}, 1), fail: true}
	close(exp.release)
	q := SpanQueue{QueueSize: 4, BatchSize: 2, ScheduleDelay: time.Hour, ExportTimeout: time.Hour}
	provider, dropped := testProvider(t, 1, exp, q)
	for range 3 {
		_, span := provider.Tracer("test").Start(context.Background(), "central.batch")
		span.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := provider.ForceFlush(ctx); err == nil {
		t.Error("ForceFlush with a failing exporter returned no error")
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues(DropExportFailed)); got != 3 {
		t.Errorf("%s{reason=export_failed} = %v, want 3", SpansDroppedName, got)
	}
	// The queue is empty again: 4 more are admitted, none dropped.
	for range 4 {
		_, span := provider.Tracer("test").Start(context.Background(), "central.batch")
		span.End()
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues(DropQueueFull)); got != 0 {
		t.Errorf("%s{reason=queue_full} = %v, want 0", SpansDroppedName, got)
	}
}

// TestNewTracerProviderWithRegistersDrops: the counter is on the given
// registry from the start, both reasons at 0, and twice is an error.
func TestNewTracerProviderWithRegistersDrops(t *testing.T) {
	setOTelEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
	reg := prometheus.NewRegistry()
	ctx := t.Context()
	tp, err := NewTracerProviderWith(ctx, TracerOptions{Service: "loteria-test", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(ctx)
	const want = `
# HELP loteria_trace_spans_dropped_total Spans ended but never exported: reason=queue_full when the exporter fell behind (lower OTEL_TRACES_SAMPLER_ARG or raise OTEL_BSP_MAX_QUEUE_SIZE), export_failed when the collector refused them or timed out.
# TYPE loteria_trace_spans_dropped_total counter
loteria_trace_spans_dropped_total{reason="export_failed"} 0
loteria_trace_spans_dropped_total{reason="queue_full"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), SpansDroppedName); err != nil {
		t.Error(err)
	}
	if _, err := NewTracerProviderWith(ctx, TracerOptions{Service: "loteria-test", Registerer: reg}); err == nil ||
		!strings.Contains(err.Error(), SpansDroppedName) {
		t.Errorf("second provider on the same registry: %v, want a registration error", err)
	}
}

// BenchmarkEndSpan prices one span through the bounded queue (exporter
// discarding), against the plain batch span processor.
func BenchmarkEndSpan(b *testing.B) {
	discard := &blockingExporter{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	close(discard.release)
	q := SpanQueue{QueueSize: DefaultSpanQueueSize, BatchSize: DefaultSpanBatchSize, ScheduleDelay: time.Second, ExportTimeout: time.Second}
	dropped, _ := newSpansDropped(nil)
	for _, c := range []struct {
		name string
		tp   func() *sdktrace.TracerProvider
	}{
		{"bounded", func() *sdktrace.TracerProvider {
			return newTracerProvider(resource.Empty(), TraceSampling{Ratio: 1}, discard, q, dropped)
		}},
		{"sdk batcher", func() *sdktrace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithResource(resource.Empty()), sdktrace.WithBatcher(discard,
				sdktrace.WithMaxQueueSize(q.QueueSize), sdktrace.WithMaxExportBatchSize(q.BatchSize)))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			tp := c.tp()
			defer tp.Shutdown(context.Background())
			tracer := tp.Tracer("bench")
			b.ReportAllocs()
			for b.Loop() {
				_, span := tracer.Start(context.Background(), "central.batch")
				span.End()
			}
		})
	}
}
