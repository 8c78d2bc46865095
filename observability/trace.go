package observability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Values of TraceExport.Exporter and TraceExport.Protocol.
const (
	ExporterOTLP = "otlp"
	ExporterNone = "none"

	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// The OTEL_* variables read here; the SDK and the OTLP exporters read more
// (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS, ...).
const (
	envTracesExporter   = "OTEL_TRACES_EXPORTER"
	envProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envTracesSampler    = "OTEL_TRACES_SAMPLER"
	defaultOTLPProtocol = ProtocolHTTPProtobuf
)

// TraceExport is where spans go, as the OTEL_* environment says.
type TraceExport struct {
	// Exporter is "otlp" or "none" (OTEL_TRACES_EXPORTER; default otlp).
	Exporter string
	// Protocol is "grpc" or "http/protobuf" (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
	// else OTEL_EXPORTER_OTLP_PROTOCOL; default http/protobuf as the
	// OpenTelemetry specification says). Empty when Exporter is "none".
	Protocol string
	// Endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
	// OTEL_EXPORTER_OTLP_ENDPOINT. Empty means nothing is exported (unlike
	// the specification, there is no implicit localhost endpoint).
	Endpoint string
}

// Enabled reports whether spans are exported at all.
func (e TraceExport) Enabled() bool {
	return e.Exporter == ExporterOTLP && e.Endpoint != ""
}

// String describes the export for the effective-configuration line.
func (e TraceExport) String() string {
	switch {
	case e.Exporter == ExporterNone:
		return "none (OTEL_TRACES_EXPORTER=none)"
	case e.Endpoint == "":
		return "none (no OTEL_EXPORTER_OTLP_ENDPOINT)"
	default:
		return "otlp " + e.Protocol + " to " + e.Endpoint
	}
}

// TraceExportFromEnv reads the OTEL_* variables that decide where spans go,
// and rejects values this program does not support.
func TraceExportFromEnv() (TraceExport, error) {
	return traceExportFrom(os.Getenv)
}

func traceExportFrom(getenv func(string) string) (TraceExport, error) {
	e := TraceExport{Exporter: ExporterOTLP}
	for _, v := range strings.Split(getenv(envTracesExporter), ",") {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "", ExporterOTLP:
		case ExporterNone:
			e.Exporter = ExporterNone
		default:
			return TraceExport{}, fmt.Errorf("unsupported %s value %q: use otlp or none", envTracesExporter, v)
		}
	}
	if e.Exporter == ExporterNone {
		return e, nil
	}

	key, proto := envTracesProtocol, strings.TrimSpace(getenv(envTracesProtocol))
	if proto == "" {
		key, proto = envProtocol, strings.TrimSpace(getenv(envProtocol))
	}
	switch proto = strings.ToLower(proto); proto {
	case "":
		e.Protocol = defaultOTLPProtocol
	case ProtocolGRPC, ProtocolHTTPProtobuf:
		e.Protocol = proto
	default:
		return TraceExport{}, fmt.Errorf("unsupported %s value %q: use grpc or http/protobuf", key, proto)
	}

	e.Endpoint = strings.TrimSpace(getenv(envTracesEndpoint))
	if e.Endpoint == "" {
		e.Endpoint = strings.TrimSpace(getenv(envEndpoint))
	}
	return e, nil
}

// NewTracerProvider builds a tracer provider from the standard OTEL_*
// environment (see [TraceExportFromEnv]). When spans are exported, an OTLP
// exporter for the chosen protocol (which reads the endpoint, headers,
// timeout, ... variables itself) sits behind a batch span processor; creating
// it does not connect. Otherwise the provider has no exporter but still makes
// real, sampled spans, so trace ids reach logs and exemplars.
//
// The resource has service.name = service (OTEL_SERVICE_NAME overrides it),
// attrs (e.g. loteria.agency.id), OTEL_RESOURCE_ATTRIBUTES (which override
// both), the telemetry SDK and host.name. No sampler is passed, so the SDK's
// parent-based always-on default applies and OTEL_TRACES_SAMPLER /
// OTEL_TRACES_SAMPLER_ARG are honoured.
//
// Nothing global is set: the caller passes the provider (or tracers from it)
// where they are needed, and calls Shutdown on exit to flush.
func NewTracerProvider(ctx context.Context, service string, attrs ...attribute.KeyValue) (*sdktrace.TracerProvider, error) {
	if service == "" {
		return nil, errors.New("tracing: empty service name")
	}
	exp, err := TraceExportFromEnv()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}

	kvs := make([]attribute.KeyValue, 0, 1+len(attrs))
	kvs = append(kvs, semconv.ServiceName(service))
	kvs = append(kvs, attrs...)
	res, err := resource.New(ctx,
		resource.WithAttributes(kvs...),
		resource.WithFromEnv(), // after WithAttributes, so the environment wins
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: building the resource (check OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME): %w", err)
	}

	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exp.Enabled() {
		var exporter sdktrace.SpanExporter
		switch exp.Protocol {
		case ProtocolGRPC:
			exporter, err = otlptracegrpc.New(ctx)
		default:
			exporter, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("tracing: creating the OTLP %s exporter for %s (check the OTEL_EXPORTER_OTLP_* variables): %w", exp.Protocol, exp.Endpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exporter))
	} else if os.Getenv(envTracesSampler) == "" {
		// Nothing exports, so recording spans would cost time for no
		// reader (a quarter of the official run with small batches). Spans
		// stay non-recording but keep valid, unsampled ids, so logs still
		// carry trace_id and span_id and the context still crosses the
		// wire. OTEL_TRACES_SAMPLER, when set, is the user's word.
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// traceparentKey is the W3C header the batch header's traceparent field
// carries. tracestate is not carried.
const traceparentKey = "traceparent"

// traceparentCarrier is a propagation.TextMapCarrier holding only traceparent.
type traceparentCarrier struct{ value string }

func (c *traceparentCarrier) Get(key string) string {
	if key == traceparentKey {
		return c.value
	}
	return ""
}

func (c *traceparentCarrier) Set(key, value string) {
	if key == traceparentKey {
		c.value = value
	}
}

func (c *traceparentCarrier) Keys() []string { return []string{traceparentKey} }

// Traceparent returns the W3C traceparent of the span context in ctx
// ("00-<trace id>-<span id>-<flags>"), or "" when there is none valid.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceparentCarrier
	propagation.TraceContext{}.Inject(ctx, &c)
	return c.value
}

// ContextWithTraceparent returns ctx carrying the remote span context that tp
// (a W3C traceparent) describes, so spans started from it join that trace.
// An empty or invalid tp returns ctx unchanged.
func ContextWithTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	c := traceparentCarrier{value: tp}
	return propagation.TraceContext{}.Extract(ctx, &c)
}
