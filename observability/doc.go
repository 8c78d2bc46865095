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
// The seed's events (EventBetsReceived "apuesta_recibida", EventDraw
// "sorteo", EventWinners "consulta_ganadores") are written exactly as the
// seed wrote them, only their own keys and nothing after the last value
// ("action: apuesta_recibida | result: success | cantidad: 10"; a refused
// batch at ERROR); their other attributes go, at DEBUG only, to a
// following "action: detail | event: apuesta_recibida | ..." line.
//
//	func NewLimiter(log *slog.Logger, every time.Duration, now func() time.Time) *Limiter
//	func (*Limiter) Log(ctx context.Context, level slog.Level, kind, msg string, args ...any)
//	func (*Limiter) Warn(kind, msg string, args ...any)
//	func (*Limiter) Flush(ctx context.Context)
//
// A Limiter writes the first record of a kind, then at most one per
// interval carrying suppressed=N and suppressed_over=<duration>; Flush
// writes the counts still pending. With LOG_FORMAT=seed it never limits
// the seed's events.
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
//	func NewTracerProviderWith(ctx context.Context, opts TracerOptions) (*sdktrace.TracerProvider, error)
//	func NewTracerProvider(ctx context.Context, service string, attrs ...attribute.KeyValue) (*sdktrace.TracerProvider, error)
//	func TraceExportFromEnv() (TraceExport, error)
//	func TraceSamplingFromEnv() (TraceSampling, error)
//	func SpanQueueFromEnv() (SpanQueue, error)
//	func Traceparent(ctx context.Context) string
//	func ContextWithTraceparent(ctx context.Context, tp string) context.Context
//
// NewTracerProviderWith follows the standard OTEL_* variables with these
// deliberate choices:
//
//   - Spans are exported only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
//     OTEL_EXPORTER_OTLP_ENDPOINT is set (the specification would default to
//     localhost). Without one, or with OTEL_TRACES_EXPORTER=none, the provider
//     has no exporter and makes no connections.
//   - The OTLP protocol defaults to http/protobuf, as the specification
//     says; set OTEL_EXPORTER_OTLP_PROTOCOL=grpc for port 4317 collectors.
//   - Sampling is ours, not the peer's: every span, root or with a remote
//     parent, is recorded by the ratio of OTEL_TRACES_SAMPLER /
//     OTEL_TRACES_SAMPLER_ARG applied to its trace id (TraceIDRatioBased),
//     whatever the sampled flag of an incoming traceparent says. Default:
//     1 when spans are exported, 0 (valid ids for logs, nothing recorded)
//     when not.
//   - The queue in front of the exporter (OTEL_BSP_*, defaults 16,384
//     spans, batches of 1,024) drops what does not fit and counts it in
//     loteria_trace_spans_dropped_total{reason="queue_full"}, and the spans
//     of failed exports with reason="export_failed", on opts.Registerer.
//
// OTEL_TRACES_EXPORTER accepts otlp (default) and none; anything else is an
// error, as is a protocol other than grpc or http/protobuf, a sampler this
// package does not support, or an OTEL_BSP_* value that is not a positive
// integer. The exporters read the endpoint, headers, timeout and TLS
// variables. TraceExportFromEnv and TraceSamplingFromEnv describe the
// choice (their String is meant for the effective-configuration line).
//
// Traceparent and ContextWithTraceparent carry the W3C traceparent in the
// batch header's traceparent= field (tracestate is not carried). Both are
// cheap enough to call per batch.
package observability
