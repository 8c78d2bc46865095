package observability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newTestTracer returns a tracer from a provider that records spans in memory.
func newTestTracer(t testing.TB) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("observability_test"), rec
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"DEBUG", slog.LevelDebug, false},
		{"debug", slog.LevelDebug, false},
		{"Info", slog.LevelInfo, false},
		{" INFO ", slog.LevelInfo, false},
		{"WARN", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{"ERROR", slog.LevelError, false},
		{"TRACE", 0, true},
		{"CRITICAL", 0, true},
		{"1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseLevel(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "DEBUG, INFO, WARN or ERROR") {
					t.Errorf("error %q does not say which levels are valid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"", FormatTint, false},
		{"tint", FormatTint, false},
		{"JSON", FormatJSON, false},
		{" seed ", FormatSeed, false},
		{"text", "", true},
		{"logfmt", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseFormat(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNewLoggerRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts LogOptions
		want string
	}{
		{"level", LogOptions{Level: "verbose"}, `unknown log level "verbose"`},
		{"format", LogOptions{Format: "xml"}, `unknown log format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLogger(&bytes.Buffer{}, tt.opts)
			if err == nil || l != nil {
				t.Fatalf("NewLogger(%+v) = %v, %v; want nil and an error", tt.opts, l, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestNewLoggerFormats(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, out string)
	}{
		{"json", func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("output %q is not one JSON object: %v", out, err)
			}
			want := map[string]any{"level": "WARN", "msg": "apuesta_recibida", "result": "success", "cantidad": float64(100)}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v (record %v)", k, m[k], v, m)
				}
			}
		}},
		{"seed", func(t *testing.T, out string) {
			re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING  action: apuesta_recibida \| result: success \| cantidad: 100\n$`)
			if !re.MatchString(out) {
				t.Errorf("output %q does not match %v", out, re)
			}
		}},
		{"tint", func(t *testing.T, out string) {
			for _, want := range []string{"WRN", "apuesta_recibida", "result=success", "cantidad=100"} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("output %q has colour codes, but the writer is not a terminal", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogOptions{Level: "warn", Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			l.Info("filtered_out")
			l.Warn("apuesta_recibida", "result", "success", "cantidad", 100)
			out := buf.String()
			if strings.Count(out, "\n") != 1 {
				t.Fatalf("want exactly one line (INFO filtered out at WARN), got %q", out)
			}
			tt.check(t, out)
		})
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	// The master side of a new pseudo-terminal is a terminal.
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test with: %v", err)
	}
	defer pty.Close()
	tests := []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"buffer", &bytes.Buffer{}, false},
		{"regular file", f, false},
		{"nil file", (*os.File)(nil), false},
		{"character device that is no terminal", devNull, false},
		{"pseudo-terminal", pty, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTerminal(tt.w); got != tt.want {
				t.Errorf("isTerminal = %v, want %v", got, tt.want)
			}
		})
	}
}

type stringer struct{}

func (stringer) String() string { return "stringer" }

func TestSeedHandlerLines(t *testing.T) {
	when := time.Date(2026, 11, 26, 14, 0, 0, 0, time.Local)
	tests := []struct {
		name  string
		h     func(h slog.Handler) slog.Handler
		level slog.Level
		time  time.Time
		msg   string
		attrs []slog.Attr
		want  string
	}{
		{
			name: "seed event", level: slog.LevelInfo, time: when, msg: "apuesta_recibida",
			attrs: []slog.Attr{slog.String("result", "success"), slog.Int("cantidad", 100)},
			want:  "2026-11-26 14:00:00 INFO     action: apuesta_recibida | result: success | cantidad: 100\n",
		},
		{
			name: "no attributes", level: slog.LevelInfo, time: when, msg: "sorteo",
			want: "2026-11-26 14:00:00 INFO     action: sorteo\n",
		},
		{
			name: "zero time", level: slog.LevelError, msg: "apuesta_recibida",
			attrs: []slog.Attr{slog.String("result", "fail"), slog.Int("cantidad", 0)},
			want:  "ERROR    action: apuesta_recibida | result: fail | cantidad: 0\n",
		},
		{
			name: "python level names", level: slog.LevelWarn, time: when, msg: "m",
			want: "2026-11-26 14:00:00 WARNING  action: m\n",
		},
		{
			name: "debug", level: slog.LevelDebug, time: when, msg: "m",
			want: "2026-11-26 14:00:00 DEBUG    action: m\n",
		},
		{
			name: "other level", level: slog.LevelError + 4, time: when, msg: "m",
			want: "2026-11-26 14:00:00 ERROR+4  action: m\n",
		},
		{
			name: "kinds", level: slog.LevelInfo, time: when, msg: "m",
			attrs: []slog.Attr{
				slog.Bool("ok", true), slog.Float64("f", 1.5), slog.Uint64("u", 7),
				slog.Duration("d", 1500*time.Millisecond),
				slog.Time("t", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
				slog.Any("err", errors.New("disk full")), slog.Any("s", stringer{}),
			},
			want: "2026-11-26 14:00:00 INFO     action: m | ok: true | f: 1.5 | u: 7 | d: 1.5s | t: 2026-01-02T03:04:05Z | err: disk full | s: stringer\n",
		},
		{
			name: "groups flattened with dots", level: slog.LevelInfo, time: when, msg: "m",
			attrs: []slog.Attr{
				slog.Group("conn", slog.Int("agency", 3), slog.Group("peer", slog.String("addr", "10.0.0.2:5000"))),
				slog.Group("empty"),
				slog.Group("", slog.String("inlined", "yes")),
				{},
			},
			want: "2026-11-26 14:00:00 INFO     action: m | conn.agency: 3 | conn.peer.addr: 10.0.0.2:5000 | inlined: yes\n",
		},
		{
			name: "WithAttrs and WithGroup",
			h: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("component", "store")}).
					WithGroup("batch").WithAttrs([]slog.Attr{slog.Int("agency", 2)}).WithGroup("")
			},
			level: slog.LevelInfo, time: when, msg: "stored",
			attrs: []slog.Attr{slog.Int("bets", 5)},
			want:  "2026-11-26 14:00:00 INFO     action: stored | component: store | batch.agency: 2 | batch.bets: 5\n",
		},
		{
			name: "control characters are quoted", level: slog.LevelInfo, time: when, msg: "two\nlines",
			attrs: []slog.Attr{slog.String("v", "a\tb"), slog.String("plain", "a b | c")},
			want:  "2026-11-26 14:00:00 INFO     action: \"two\\nlines\" | v: \"a\\tb\" | plain: a b | c\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = newSeedHandler(&buf, slog.LevelDebug)
			if tt.h != nil {
				h = tt.h(h)
			}
			r := slog.NewRecord(tt.time, tt.level, tt.msg, 0)
			r.AddAttrs(tt.attrs...)
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// parseSeedLine turns a seed line back into the map slogtest expects.
func parseSeedLine(t *testing.T, line string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if len(line) >= len(seedTimeLayout) {
		if _, err := time.ParseInLocation(seedTimeLayout, line[:len(seedTimeLayout)], time.Local); err == nil {
			m[slog.TimeKey] = line[:len(seedTimeLayout)]
			line = line[len(seedTimeLayout)+1:]
		}
	}
	level, rest, ok := strings.Cut(line, " ")
	if !ok {
		t.Fatalf("no level in %q", line)
	}
	m[slog.LevelKey] = level
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), "action: ")
	if !ok {
		t.Fatalf("no action in %q", line)
	}
	fields := strings.Split(rest, " | ")
	m[slog.MessageKey] = fields[0]
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, ": ")
		if !ok {
			t.Fatalf("field %q of %q is not key: value", f, line)
		}
		path := strings.Split(k, ".")
		g := m
		for _, p := range path[:len(path)-1] {
			sub, ok := g[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				g[p] = sub
			}
			g = sub
		}
		g[path[len(path)-1]] = v
	}
	return m
}

// TestHandlersConform runs log/slog's handler conformance suite on each
// handler NewLogger can build, with and without the trace wrapper.
func TestHandlersConform(t *testing.T) {
	parseJSON := func(t *testing.T, line string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return m
	}
	tests := []struct {
		name  string
		new   func(w *bytes.Buffer) slog.Handler
		parse func(t *testing.T, line string) map[string]any
	}{
		{"seed", func(w *bytes.Buffer) slog.Handler { return newSeedHandler(w, slog.LevelInfo) }, parseSeedLine},
		{"trace+seed", func(w *bytes.Buffer) slog.Handler { return NewTraceHandler(newSeedHandler(w, slog.LevelInfo)) }, parseSeedLine},
		{"trace+json", func(w *bytes.Buffer) slog.Handler { return NewTraceHandler(slog.NewJSONHandler(w, nil)) }, parseJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slogtest.Run(t,
				func(*testing.T) slog.Handler { buf.Reset(); return tt.new(&buf) },
				func(t *testing.T) map[string]any {
					line := strings.TrimSuffix(buf.String(), "\n")
					if strings.Contains(line, "\n") {
						t.Fatalf("more than one line: %q", buf.String())
					}
					return tt.parse(t, line)
				})
		})
	}
}

func TestTraceHandlerAddsIDs(t *testing.T) {
	tracer, _ := newTestTracer(t)
	ctx, span := tracer.Start(context.Background(), "test")
	defer span.End()
	traceID, spanID := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

	tests := []struct {
		name  string
		ctx   context.Context
		log   func(l *slog.Logger, ctx context.Context)
		check func(t *testing.T, m map[string]any)
	}{
		{
			name: "plain", ctx: ctx,
			log: func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m", "a", 1) },
			check: func(t *testing.T, m map[string]any) {
				if m["a"] != float64(1) {
					t.Errorf("a = %v", m["a"])
				}
			},
		},
		{
			name: "With", ctx: ctx,
			log: func(l *slog.Logger, ctx context.Context) { l.With("component", "store").InfoContext(ctx, "m") },
			check: func(t *testing.T, m map[string]any) {
				if m["component"] != "store" {
					t.Errorf("component = %v", m["component"])
				}
			},
		},
		{
			name: "WithGroup", ctx: ctx,
			log: func(l *slog.Logger, ctx context.Context) {
				l.With("top", "x").WithGroup("g").With("b", 2).WithGroup("h").InfoContext(ctx, "m", "c", 3)
			},
			check: func(t *testing.T, m map[string]any) {
				g, _ := m["g"].(map[string]any)
				h, _ := g["h"].(map[string]any)
				if m["top"] != "x" || g["b"] != float64(2) || h["c"] != float64(3) {
					t.Errorf("attributes misplaced: %v", m)
				}
				if _, ok := g[TraceIDKey]; ok {
					t.Errorf("trace_id inside the group: %v", m)
				}
			},
		},
		{
			name: "WithGroup and no attributes", ctx: ctx,
			log: func(l *slog.Logger, ctx context.Context) { l.WithGroup("g").InfoContext(ctx, "m") },
			check: func(t *testing.T, m map[string]any) {
				if _, ok := m["g"]; ok {
					t.Errorf("empty group written: %v", m)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogOptions{Format: FormatJSON})
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l, tt.ctx)
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatalf("%q: %v", buf.String(), err)
			}
			if m[TraceIDKey] != traceID || m[SpanIDKey] != spanID {
				t.Errorf("trace_id, span_id = %v, %v; want %s, %s (record %v)", m[TraceIDKey], m[SpanIDKey], traceID, spanID, m)
			}
			tt.check(t, m)
		})
	}
}

func TestTraceHandlerWithoutSpan(t *testing.T) {
	tracer, _ := newTestTracer(t)
	_, span := tracer.Start(context.Background(), "elsewhere")
	defer span.End()

	tests := []struct {
		name string
		ctx  context.Context
		log  func(l *slog.Logger, ctx context.Context)
	}{
		{"background", context.Background(), func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") }},
		{"no context", nil, func(l *slog.Logger, _ context.Context) { l.Info("m") }},
		{"grouped", context.Background(), func(l *slog.Logger, ctx context.Context) { l.WithGroup("g").InfoContext(ctx, "m", "a", 1) }},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}),
			func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogOptions{Format: FormatJSON})
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l, tt.ctx)
			if strings.Contains(buf.String(), TraceIDKey) || strings.Contains(buf.String(), SpanIDKey) {
				t.Errorf("ids outside a span: %s", buf.String())
			}
		})
	}
}

// TestTraceHandlerSeedFormat checks the ids stay undotted (top level) in
// the seed format too, after a group.
func TestTraceHandlerSeedFormat(t *testing.T) {
	tracer, _ := newTestTracer(t)
	ctx, span := tracer.Start(context.Background(), "test")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	l, err := NewLogger(&buf, LogOptions{Format: FormatSeed})
	if err != nil {
		t.Fatal(err)
	}
	l.WithGroup("batch").InfoContext(ctx, "agency finished", "agency", 7)
	want := " INFO     action: agency finished | trace_id: " + sc.TraceID().String() +
		" | span_id: " + sc.SpanID().String() + " | batch.agency: 7\n"
	if got := buf.String(); !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want suffix %q", got, want)
	}

	// A seed event keeps its line; at DEBUG the ids go to its detail line.
	buf.Reset()
	l, err = NewLogger(&buf, LogOptions{Format: FormatSeed, Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	l.WithGroup("batch").InfoContext(ctx, EventBetsReceived, KeyResult, "success", KeyCount, 7)
	lines := strings.SplitAfter(buf.String(), "\n")
	if len(lines) != 3 || lines[2] != "" ||
		!strings.HasSuffix(lines[0], " INFO     action: apuesta_recibida | result: success | cantidad: 7\n") ||
		!strings.HasSuffix(lines[1], " DEBUG    action: detail | event: apuesta_recibida | trace_id: "+sc.TraceID().String()+" | span_id: "+sc.SpanID().String()+"\n") {
		t.Errorf("got %q, want the seed's line, then the ids on a detail line", buf.String())
	}
}

// TestTraceHandlerDerivedHandlersIndependent guards against handlers derived
// from the same parent sharing group attribute storage.
func TestTraceHandlerDerivedHandlersIndependent(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, LogOptions{Format: FormatSeed})
	if err != nil {
		t.Fatal(err)
	}
	// Three separate With calls leave spare capacity behind the parent's
	// attributes, which a careless append would let left and right share.
	parent := l.WithGroup("g").With("a", 1).With("x", 0).With("y", 0)
	left := parent.With("b", 2)
	right := parent.With("c", 3)
	left.Info("m")
	right.Info("m")
	parent.Info("m")

	sc := bufio.NewScanner(&buf)
	var got []string
	for sc.Scan() {
		_, fields, _ := strings.Cut(sc.Text(), "action: m")
		got = append(got, fields)
	}
	want := []string{
		" | g.a: 1 | g.x: 0 | g.y: 0 | g.b: 2",
		" | g.a: 1 | g.x: 0 | g.y: 0 | g.c: 3",
		" | g.a: 1 | g.x: 0 | g.y: 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTraceHandlerEnabledPassesThrough(t *testing.T) {
	tests := []struct {
		level string
		check slog.Level
		want  bool
	}{
		{"INFO", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, true},
		{"ERROR", slog.LevelWarn, false},
		{"DEBUG", slog.LevelDebug, true},
	}
	for _, tt := range tests {
		for _, format := range []string{FormatTint, FormatJSON, FormatSeed} {
			l, err := NewLogger(&bytes.Buffer{}, LogOptions{Level: tt.level, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			for _, lg := range []*slog.Logger{l, l.WithGroup("g").With("a", 1)} {
				if got := lg.Enabled(context.Background(), tt.check); got != tt.want {
					t.Errorf("%s logger at %s: Enabled(%v) = %v, want %v", format, tt.level, tt.check, got, tt.want)
				}
			}
		}
	}
}

// TestSeedEventLines checks the seed's lines byte for byte
// (PROTOCOL-seed.md, "Exact lines"), whatever else the caller adds.
func TestSeedEventLines(t *testing.T) {
	when := time.Date(2026, 11, 26, 14, 0, 0, 0, time.Local)
	const stamp = "2026-11-26 14:00:00 "
	tests := []struct {
		name   string
		level  string // the logger's
		log    func(l *slog.Logger)
		want   []string
		noTime bool
	}{
		{
			name: "bets received", level: "info",
			log:  func(l *slog.Logger) { l.Info(EventBetsReceived, "result", "success", "cantidad", 10) },
			want: []string{"INFO     action: apuesta_recibida | result: success | cantidad: 10"},
		},
		{
			name: "more attributes do not follow the count", level: "info",
			log: func(l *slog.Logger) {
				l.With("component", "conn").Info(EventBetsReceived, "result", "success", "cantidad", 10, "agency", 3, "seq", 17)
			},
			want: []string{"INFO     action: apuesta_recibida | result: success | cantidad: 10"},
		},
		{
			name: "the seed's order whatever the caller's", level: "info",
			log:  func(l *slog.Logger) { l.Info(EventBetsReceived, "agency", 3, "cantidad", 10, "result", "success") },
			want: []string{"INFO     action: apuesta_recibida | result: success | cantidad: 10"},
		},
		{
			name: "refused batch at ERROR, even logged as a warning", level: "info",
			log: func(l *slog.Logger) {
				l.Warn(EventBetsReceived, "result", "fail", "cantidad", 0, "reason", "invalid_bet", "err", "line 2: first name is empty")
			},
			want: []string{"ERROR    action: apuesta_recibida | result: fail | cantidad: 0"},
		},
		{
			name: "refused batch logged at ERROR", level: "error",
			log:  func(l *slog.Logger) { l.Error(EventBetsReceived, "result", "fail", "cantidad", 0) },
			want: []string{"ERROR    action: apuesta_recibida | result: fail | cantidad: 0"},
		},
		{
			name: "draw", level: "info",
			log: func(l *slog.Logger) {
				l.Info(EventDraw, "result", "success", "bets", 78697, "winners", 17, "took", time.Millisecond)
			},
			want: []string{"INFO     action: sorteo | result: success"},
		},
		{
			name: "winners", level: "info",
			log: func(l *slog.Logger) {
				l.Info(EventWinners, "result", "success", "cant_ganadores", 2, "bets", 100, "batches", 1)
			},
			want: []string{"INFO     action: consulta_ganadores | result: success | cant_ganadores: 2"},
		},
		{
			name: "keys inside a group are found", level: "info",
			log:  func(l *slog.Logger) { l.WithGroup("batch").Info(EventBetsReceived, "result", "success", "cantidad", 5) },
			want: []string{"INFO     action: apuesta_recibida | result: success | cantidad: 5"},
		},
		{
			name: "the rest on a DEBUG detail line at DEBUG", level: "debug",
			log: func(l *slog.Logger) {
				l.With("component", "conn").Info(EventBetsReceived, "result", "success", "cantidad", 10, "agency", 3, "seq", 17)
			},
			want: []string{
				"INFO     action: apuesta_recibida | result: success | cantidad: 10",
				"DEBUG    action: detail | event: apuesta_recibida | component: conn | agency: 3 | seq: 17",
			},
		},
		{
			name: "no detail line when there is nothing more", level: "debug",
			log:  func(l *slog.Logger) { l.Info(EventDraw, "result", "success") },
			want: []string{"INFO     action: sorteo | result: success"},
		},
		{
			name: "a missing key is left out", level: "info",
			log:  func(l *slog.Logger) { l.Info(EventBetsReceived, "result", "success") },
			want: []string{"INFO     action: apuesta_recibida | result: success"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := newSeedHandler(&buf, mustLevel(t, tt.level))
			// A fixed time: a handler in front of the seed's sets it.
			tt.log(slog.New(fixedTime{NewTraceHandler(h), when}))
			var want string
			for _, w := range tt.want {
				want += stamp + w + "\n"
			}
			if got := buf.String(); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestSeedLinesParse: a parser anchored the way the seed's tooling is
// matches every apuesta_recibida line, whatever attributes the records
// carried, and there is exactly one per record.
func TestSeedLinesParse(t *testing.T) {
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO |ERROR)    action: apuesta_recibida \| result: (success|fail) \| cantidad: [0-9]+$`)
	for _, level := range []string{"info", "debug"} {
		var buf bytes.Buffer
		l, err := NewLogger(&buf, LogOptions{Format: FormatSeed, Level: level})
		if err != nil {
			t.Fatal(err)
		}
		tracer, _ := newTestTracer(t)
		ctx, span := tracer.Start(context.Background(), "central.batch")
		for i := range 50 {
			lg := l.With("component", "conn").WithGroup("batch")
			if i%5 == 0 {
				lg.WarnContext(ctx, EventBetsReceived, "result", "fail", "cantidad", i, "err", "line 2: bad", "seq", i)
			} else {
				lg.InfoContext(ctx, EventBetsReceived, "result", "success", "cantidad", i, "agency", 3, "seq", i)
			}
		}
		span.End()
		n := 0
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			if !strings.Contains(line, "action: apuesta_recibida") {
				continue
			}
			n++
			if !re.MatchString(line) {
				t.Errorf("LOG_FORMAT=seed at %s: line %q does not match %v", level, line, re)
			}
		}
		if n != 50 {
			t.Errorf("at %s: %d apuesta_recibida lines for 50 records", level, n)
		}
	}
}

func mustLevel(t *testing.T, s string) slog.Level {
	t.Helper()
	l, err := ParseLevel(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fixedTime sets every record's time, so lines can be compared whole.
type fixedTime struct {
	slog.Handler
	at time.Time
}

func (h fixedTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = h.at
	return h.Handler.Handle(ctx, r)
}
func (h fixedTime) WithAttrs(a []slog.Attr) slog.Handler {
	return fixedTime{h.Handler.WithAttrs(a), h.at}
}
func (h fixedTime) WithGroup(g string) slog.Handler { return fixedTime{h.Handler.WithGroup(g), h.at} }
