package observability

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
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
			name:    "unknown exporter",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"},
			wantErr: `tracing: unsupported OTEL_TRACES_EXPORTER value "jaeger"`,
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
