package observability

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// The OTEL_* variables read here; the OTLP exporters read more
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, ...).
const (
	envTracesExporter   = "OTEL_TRACES_EXPORTER"
	envProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envTracesSampler    = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
	envBSPQueueSize     = "OTEL_BSP_MAX_QUEUE_SIZE"
	envBSPBatchSize     = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
	envBSPDelay         = "OTEL_BSP_SCHEDULE_DELAY"
	envBSPTimeout       = "OTEL_BSP_EXPORT_TIMEOUT"
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

// Values of OTEL_TRACES_SAMPLER (the specification's names).
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// DefaultExportRatio is the share of traces recorded when spans are
// exported and OTEL_TRACES_SAMPLER is unset: all of them. A run of the
// official data makes some 4,000 to 40,000 spans, which a collector takes
// easily, and the spans that happen once per run (the draw, the barrier,
// the winners) would be missing from most runs under any smaller ratio.
// At scale, set OTEL_TRACES_SAMPLER=traceidratio and a smaller
// OTEL_TRACES_SAMPLER_ARG; loteria_trace_spans_dropped_total says when.
const DefaultExportRatio = 1.0

// TraceSampling is which traces are recorded: a share of trace ids,
// decided for every span by its trace id alone (the SDK's
// TraceIDRatioBased), never by the sampled flag of a parent. A peer's
// traceparent cannot make this process record more than its ratio, and
// since the decision is a threshold on the trace id, a process whose ratio
// is at least a peer's records its side of every trace that peer records.
type TraceSampling struct {
	// Ratio is the share of traces recorded, 0 (none) to 1 (all).
	Ratio float64
	// Sampler is the OTEL_TRACES_SAMPLER value it comes from, "" when
	// unset (the default applies: DefaultExportRatio when spans are
	// exported, else 0).
	Sampler string
}

// String describes the sampling for the effective-configuration line.
func (s TraceSampling) String() string {
	ratio := strconv.FormatFloat(s.Ratio, 'g', -1, 64)
	from := "default"
	if s.Sampler != "" {
		from = envTracesSampler + "=" + s.Sampler
	}
	return "traceidratio " + ratio + " (" + from + "; a peer's sampled flag is ignored)"
}

// sampler is the SDK sampler for s, applied to every span.
func (s TraceSampling) sampler() sdktrace.Sampler { return sdktrace.TraceIDRatioBased(s.Ratio) }

// TraceSamplingFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (see [TraceSampling]). Every standard value is a ratio here: always_on
// is 1, always_off 0, traceidratio the argument (1 without one); the
// parentbased_ forms mean the same as their root sampler, since no parent
// is trusted. Other values, and an argument that is not a number in
// [0, 1], are errors.
func TraceSamplingFromEnv() (TraceSampling, error) {
	exp, err := TraceExportFromEnv()
	if err != nil {
		return TraceSampling{}, err
	}
	return traceSamplingFrom(os.Getenv, exp.Enabled())
}

func traceSamplingFrom(getenv func(string) string, exported bool) (TraceSampling, error) {
	name := strings.ToLower(strings.TrimSpace(getenv(envTracesSampler)))
	s := TraceSampling{Sampler: name}
	switch name {
	case "":
		if exported {
			s.Ratio = DefaultExportRatio
		}
	case SamplerAlwaysOn, SamplerParentBasedAlwaysOn:
		s.Ratio = 1
	case SamplerAlwaysOff, SamplerParentBasedAlwaysOff:
		s.Ratio = 0
	case SamplerTraceIDRatio, SamplerParentBasedTraceIDRatio:
		s.Ratio = 1
		if arg := strings.TrimSpace(getenv(envTracesSamplerArg)); arg != "" {
			r, err := strconv.ParseFloat(arg, 64)
			if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
				return TraceSampling{}, fmt.Errorf("%s=%q is not a ratio: use a number from 0 to 1, such as 0.01", envTracesSamplerArg, arg)
			}
			s.Ratio = r
		}
	default:
		return TraceSampling{}, fmt.Errorf("unsupported %s value %q: use %s, %s or %s (with %s)",
			envTracesSampler, name, SamplerTraceIDRatio, SamplerAlwaysOn, SamplerAlwaysOff, envTracesSamplerArg)
	}
	return s, nil
}

// Defaults of the span queue in front of the exporter, larger than the
// SDK's (2,048 and 512): a loaded central ends some 50,000 spans a second
// (four per batch), which would fill 2,048 places in 40 ms, less than one
// export round trip. 16,384 places hold a third of a second at that rate,
// and stay bounded (16 MiB if a span took 1 KiB).
const (
	DefaultSpanQueueSize     = 16384
	DefaultSpanBatchSize     = 1024
	DefaultSpanScheduleDelay = 5 * time.Second  // the SDK's
	DefaultSpanExportTimeout = 30 * time.Second // the SDK's
)

// SpanQueue is how ended spans wait for the exporter (OTEL_BSP_*).
type SpanQueue struct {
	// QueueSize is how many spans may wait, queued or being exported;
	// past it, spans are dropped and counted in
	// loteria_trace_spans_dropped_total{reason="queue_full"}.
	QueueSize int
	// BatchSize is the most spans one export carries (at most QueueSize).
	BatchSize int
	// ScheduleDelay is the longest a span waits for its batch to fill.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export; spans of an export that fails or
	// times out are counted with reason="export_failed".
	ExportTimeout time.Duration
}

// SpanQueueFromEnv reads OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
// OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_EXPORT_TIMEOUT (milliseconds), each
// a positive integer; a batch size above the queue size is an error, and
// the default batch size shrinks to a smaller queue.
func SpanQueueFromEnv() (SpanQueue, error) { return spanQueueFrom(os.Getenv) }

func spanQueueFrom(getenv func(string) string) (SpanQueue, error) {
	q := SpanQueue{
		QueueSize:     DefaultSpanQueueSize,
		BatchSize:     DefaultSpanBatchSize,
		ScheduleDelay: DefaultSpanScheduleDelay,
		ExportTimeout: DefaultSpanExportTimeout,
	}
	positive := func(key string, into *int) (bool, error) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return false, fmt.Errorf("%s=%q is not a positive integer", key, v)
		}
		*into = n
		return true, nil
	}
	if _, err := positive(envBSPQueueSize, &q.QueueSize); err != nil {
		return SpanQueue{}, err
	}
	batchSet, err := positive(envBSPBatchSize, &q.BatchSize)
	if err != nil {
		return SpanQueue{}, err
	}
	if q.BatchSize > q.QueueSize {
		if batchSet {
			return SpanQueue{}, fmt.Errorf("%s=%d is larger than %s=%d: a batch must fit in the queue",
				envBSPBatchSize, q.BatchSize, envBSPQueueSize, q.QueueSize)
		}
		q.BatchSize = q.QueueSize
	}
	for _, d := range []struct {
		key  string
		into *time.Duration
	}{{envBSPDelay, &q.ScheduleDelay}, {envBSPTimeout, &q.ExportTimeout}} {
		var ms int
		set, err := positive(d.key, &ms)
		if err != nil {
			return SpanQueue{}, fmt.Errorf("%w (milliseconds)", err)
		}
		if set {
			*d.into = time.Duration(ms) * time.Millisecond
		}
	}
	return q, nil
}

// SpansDroppedName is the counter of spans that were ended but never
// exported, by reason: queue_full (the exporter fell behind) or
// export_failed (the collector refused them or did not answer in time).
const SpansDroppedName = "loteria_trace_spans_dropped_total"

// Values of the reason label of SpansDroppedName.
const (
	DropQueueFull    = "queue_full"
	DropExportFailed = "export_failed"
)

// TracerOptions are what [NewTracerProviderWith] needs besides the
// environment.
type TracerOptions struct {
	// Service is service.name (OTEL_SERVICE_NAME overrides it).
	Service string
	// Attributes are more resource attributes, e.g. loteria.agency.id
	// (OTEL_RESOURCE_ATTRIBUTES overrides them).
	Attributes []attribute.KeyValue
	// Registerer receives loteria_trace_spans_dropped_total; nil
	// registers nothing (spans are still dropped rather than queued
	// without bound).
	Registerer prometheus.Registerer
}

// NewTracerProvider is [NewTracerProviderWith] without a registerer: the
// dropped-spans counter is kept but not exposed.
func NewTracerProvider(ctx context.Context, service string, attrs ...attribute.KeyValue) (*sdktrace.TracerProvider, error) {
	return NewTracerProviderWith(ctx, TracerOptions{Service: service, Attributes: attrs})
}

// NewTracerProviderWith builds a tracer provider from the standard OTEL_*
// environment:
//
//   - where spans go: [TraceExportFromEnv]. When they are exported, an OTLP
//     exporter for the chosen protocol (which reads the endpoint, headers,
//     timeout, ... variables itself) sits behind the SDK's batch span
//     processor; creating it does not connect.
//   - which are recorded: [TraceSamplingFromEnv], for every span by its
//     trace id, whatever a remote parent's sampled flag says. With nowhere
//     to export and no OTEL_TRACES_SAMPLER, none are: spans stay
//     non-recording but keep valid ids, so logs still carry trace_id and
//     span_id and the context still crosses the wire (recording spans
//     nobody reads cost a quarter of the official run with small batches).
//   - how they wait for the exporter: [SpanQueueFromEnv]. A span that
//     finds the queue full is dropped and counted in
//     loteria_trace_spans_dropped_total{reason="queue_full"}; the spans of
//     a failed export with reason="export_failed". (The SDK's processor
//     drops silently, and only debug-logs a running total.)
//
// The resource has service.name = opts.Service (OTEL_SERVICE_NAME
// overrides it), opts.Attributes, OTEL_RESOURCE_ATTRIBUTES (which override
// both), the telemetry SDK and host.name.
//
// Nothing global is set: the caller passes the provider (or tracers from it)
// where they are needed, and calls Shutdown on exit to flush.
func NewTracerProviderWith(ctx context.Context, opts TracerOptions) (*sdktrace.TracerProvider, error) {
	if opts.Service == "" {
		return nil, errors.New("tracing: empty service name")
	}
	exp, err := TraceExportFromEnv()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	sampling, err := traceSamplingFrom(os.Getenv, exp.Enabled())
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	var queue SpanQueue
	if exp.Enabled() {
		if queue, err = SpanQueueFromEnv(); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	dropped, err := newSpansDropped(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}

	kvs := make([]attribute.KeyValue, 0, 1+len(opts.Attributes))
	kvs = append(kvs, semconv.ServiceName(opts.Service))
	kvs = append(kvs, opts.Attributes...)
	res, err := resource.New(ctx,
		resource.WithAttributes(kvs...),
		resource.WithFromEnv(), // after WithAttributes, so the environment wins
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: building the resource (check OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME): %w", err)
	}

	var exporter sdktrace.SpanExporter
	if exp.Enabled() {
		switch exp.Protocol {
		case ProtocolGRPC:
			exporter, err = otlptracegrpc.New(ctx)
		default:
			exporter, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("tracing: creating the OTLP %s exporter for %s (check the OTEL_EXPORTER_OTLP_* variables): %w", exp.Protocol, exp.Endpoint, err)
		}
	}
	return newTracerProvider(res, sampling, exporter, queue, dropped), nil
}

// newTracerProvider assembles a provider: every span sampled by trace id,
// and, with an exporter, a bounded queue in front of it.
func newTracerProvider(res *resource.Resource, s TraceSampling, exporter sdktrace.SpanExporter, q SpanQueue, dropped *prometheus.CounterVec) *sdktrace.TracerProvider {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(s.sampler())}
	if exporter != nil {
		opts = append(opts, sdktrace.WithSpanProcessor(newBoundedBatcher(exporter, q, dropped)))
	}
	return sdktrace.NewTracerProvider(opts...)
}

func newSpansDropped(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: SpansDroppedName,
		Help: "Spans ended but never exported: reason=queue_full when the exporter fell behind (lower OTEL_TRACES_SAMPLER_ARG or raise OTEL_BSP_MAX_QUEUE_SIZE), export_failed when the collector refused them or timed out.",
	}, []string{"reason"})
	c.WithLabelValues(DropQueueFull)
	c.WithLabelValues(DropExportFailed)
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering %s: %w", SpansDroppedName, err)
		}
	}
	return c, nil
}

// boundedBatcher is the SDK's batch span processor behind an admission
// count, so that it never drops a span unseen. pending counts the spans
// handed to it and not yet given back by the exporter (queued, in the
// batch being built, or being exported); a span ended while pending is at
// QueueSize is dropped here and counted. The processor's own queue has
// one place more than QueueSize (for ForceFlush's marker, one at a time),
// so it always has room for what is admitted.
type boundedBatcher struct {
	sdktrace.SpanProcessor // the batch span processor
	limit                  int64
	pending                atomic.Int64
	queueFull              prometheus.Counter
	flushMu                sync.Mutex
}

func newBoundedBatcher(exporter sdktrace.SpanExporter, q SpanQueue, dropped *prometheus.CounterVec) *boundedBatcher {
	b := &boundedBatcher{limit: int64(q.QueueSize), queueFull: dropped.WithLabelValues(DropQueueFull)}
	failed := dropped.WithLabelValues(DropExportFailed)
	counted := &countingExporter{SpanExporter: exporter, done: func(n int, err error) {
		b.pending.Add(-int64(n))
		if err != nil {
			failed.Add(float64(n))
		}
	}}
	b.SpanProcessor = sdktrace.NewBatchSpanProcessor(counted,
		sdktrace.WithMaxQueueSize(q.QueueSize+1),
		sdktrace.WithMaxExportBatchSize(q.BatchSize),
		sdktrace.WithBatchTimeout(q.ScheduleDelay),
		sdktrace.WithExportTimeout(q.ExportTimeout),
	)
	return b
}

func (b *boundedBatcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batch span processor ignores these too
	}
	for {
		n := b.pending.Load()
		if n >= b.limit {
			b.queueFull.Inc()
			return
		}
		if b.pending.CompareAndSwap(n, n+1) {
			break
		}
	}
	b.SpanProcessor.OnEnd(s)
}

// ForceFlush lets one flush at a time put its marker in the queue.
func (b *boundedBatcher) ForceFlush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	return b.SpanProcessor.ForceFlush(ctx)
}

// countingExporter reports each export's size and outcome once it returns.
type countingExporter struct {
	sdktrace.SpanExporter
	done func(n int, err error)
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.done(len(spans), err)
	return err
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
