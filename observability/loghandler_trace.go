package observability

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys the trace-aware handler adds.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// NewTraceHandler wraps h so that every record whose context carries a valid
// OpenTelemetry span context gets trace_id and span_id attributes. They are
// always at the top level, even after WithGroup: the wrapper keeps open groups
// (and the attributes added inside them) itself and hands h one record in
// which the groups are nested attributes next to the trace ids. Enabled is
// passed through.
func NewTraceHandler(h slog.Handler) slog.Handler {
	if th, ok := h.(*traceHandler); ok {
		return th
	}
	return &traceHandler{inner: h}
}

type traceHandler struct {
	// inner has every attribute added before the first group already applied.
	inner slog.Handler
	// groups are the open groups, outermost first. Never mutated in place:
	// WithAttrs and WithGroup copy, so handlers derived from one another
	// never share a writable slice.
	groups []logGroup
}

type logGroup struct {
	name  string
	attrs []slog.Attr
}

func (h *traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.groups) == 0 {
		return &traceHandler{inner: h.inner.WithAttrs(attrs)}
	}
	groups := make([]logGroup, len(h.groups))
	copy(groups, h.groups)
	last := &groups[len(groups)-1]
	merged := make([]slog.Attr, 0, len(last.attrs)+len(attrs))
	merged = append(merged, last.attrs...)
	last.attrs = append(merged, attrs...)
	return &traceHandler{inner: h.inner, groups: groups}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := make([]logGroup, len(h.groups), len(h.groups)+1)
	copy(groups, h.groups)
	return &traceHandler{inner: h.inner, groups: append(groups, logGroup{name: name})}
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	valid := sc.IsValid()
	if len(h.groups) == 0 {
		if valid {
			// Clone so appending never writes into storage another copy of
			// r might share.
			r = r.Clone()
			r.AddAttrs(
				slog.String(TraceIDKey, sc.TraceID().String()),
				slog.String(SpanIDKey, sc.SpanID().String()),
			)
		}
		return h.inner.Handle(ctx, r)
	}

	// Rebuild the record: trace ids first, then the open groups nested
	// around their attributes and the record's own.
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if valid {
		nr.AddAttrs(
			slog.String(TraceIDKey, sc.TraceID().String()),
			slog.String(SpanIDKey, sc.SpanID().String()),
		)
	}
	last := h.groups[len(h.groups)-1]
	attrs := make([]slog.Attr, 0, len(last.attrs)+r.NumAttrs())
	attrs = append(attrs, last.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	group := slog.Attr{Key: last.name, Value: slog.GroupValue(attrs...)}
	for i := len(h.groups) - 2; i >= 0; i-- {
		g := h.groups[i]
		outer := make([]slog.Attr, 0, len(g.attrs)+1)
		outer = append(outer, g.attrs...)
		outer = append(outer, group)
		group = slog.Attr{Key: g.name, Value: slog.GroupValue(outer...)}
	}
	nr.AddAttrs(group)
	return h.inner.Handle(ctx, nr)
}
