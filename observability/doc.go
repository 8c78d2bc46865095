// Package observability builds what every loteria program needs to be
// watched: a logger, a metrics registry with its HTTP endpoints, a tracer
// provider, and the helpers that tie the three together (trace ids in logs,
// trace ids as exemplars, trace context across the wire).
//
// It holds no package-level state and touches no global: nothing is
// registered on prometheus.DefaultRegisterer, otel.SetTracerProvider is never
// called. Each constructor returns what it builds; the program's main wires
// it in and passes it down (see DESIGN.md, "Dependencies are passed in").
//
// # Logging
//
//	type LogOptions struct{ Level, Format string }
//	func NewLogger(w io.Writer, opts LogOptions) (*slog.Logger, error)
//	func ParseLevel(s string) (slog.Level, error)   // DEBUG|INFO|WARN|WARNING|ERROR, any case; "" = INFO
//	func ParseFormat(s string) (string, error)      // tint|json|seed, any case; "" = tint
//	func NewTraceHandler(h slog.Handler) slog.Handler
//
// Formats: "tint" (github.com/lmittmann/tint, coloured only when w is a
// terminal, i.e. an *os.File on a character device), "json" (log/slog's JSON
// handler) and "seed", which writes the seed's python log lines
// ('%(asctime)s %(levelname)-8s %(message)s', datefmt '%Y-%m-%d %H:%M:%S')
// with the message as the seed's action:
//
//	2026-11-26 14:00:00 INFO     action: apuesta_recibida | result: success | cantidad: 100
//
// The time is local and omitted when the record has none; level names are
// python's (WARN prints as WARNING); attributes follow as " | key: value" with
// groups flattened into dotted keys. Values are written verbatim, except that
// a key, value or message holding a control character is Go-quoted so each
// record stays on one line.
//
// Every logger NewLogger returns is wrapped by NewTraceHandler: a record
// logged with a context carrying a valid span context (logger.InfoContext(ctx,
// ...)) gets trace_id and span_id attributes at the top level, even from a
// logger derived with WithGroup.
//
// # Metrics and HTTP
//
//	func NewRegistry(service string) *prometheus.Registry
//	func ObserveWithTrace(ctx context.Context, o prometheus.Observer, v float64)
//	type HTTPOptions struct{ Logger *slog.Logger; Pprof bool; Ready func() error }
//	func NewHTTPServer(addr string, g prometheus.Gatherer, opts HTTPOptions) *HTTPServer
//	func (*HTTPServer) Start() error
//	func (*HTTPServer) Addr() string
//	func (*HTTPServer) Shutdown(ctx context.Context) error
//	func (*HTTPServer) Handler() http.Handler
//	func Healthcheck(ctx context.Context, url string) error
//
// NewRegistry returns a fresh registry with the Go and process collectors and
// loteria_build_info{service,version,revision,goversion} = 1. The HTTP server
// serves it at /metrics (OpenMetrics when asked for, so the trace_id
// exemplars ObserveWithTrace records reach Prometheus), /healthz, /readyz and,
// with Pprof, /debug/pprof/ on its own mux. (Importing net/http/pprof also
// registers its handlers on http.DefaultServeMux as a side effect; that mux
// is never served here.) Healthcheck is the body of the programs'
// "healthcheck" subcommand for images without a shell.
//
// # Tracing
//
//	func NewTracerProvider(ctx context.Context, service string, attrs ...attribute.KeyValue) (*sdktrace.TracerProvider, error)
//	func TraceExportFromEnv() (TraceExport, error)
//	func Traceparent(ctx context.Context) string
//	func ContextWithTraceparent(ctx context.Context, tp string) context.Context
//
// NewTracerProvider follows the standard OTEL_* variables with two
// deliberate choices:
//
//   - Spans are exported only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
//     OTEL_EXPORTER_OTLP_ENDPOINT is set (the specification would default to
//     localhost). Without one, or with OTEL_TRACES_EXPORTER=none, the provider
//     has no exporter, makes no connections, and still creates real sampled
//     spans so trace ids appear in logs and exemplars.
//   - The OTLP protocol defaults to http/protobuf, as the specification
//     says; set OTEL_EXPORTER_OTLP_PROTOCOL=grpc for port 4317 collectors.
//
// OTEL_TRACES_EXPORTER accepts otlp (default) and none; anything else is an
// error, as is a protocol other than grpc or http/protobuf. The SDK itself
// honours OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*; the exporters read the
// endpoint, headers, timeout and TLS variables. TraceExportFromEnv describes
// the choice (its String is meant for the effective-configuration line).
//
// Traceparent and ContextWithTraceparent carry the W3C traceparent in the
// batch header's traceparent= field (tracestate is not carried). Both are
// cheap enough to call per batch.
package observability
