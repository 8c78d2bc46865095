package observability

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// seedTimeLayout is the seed's python logging datefmt, '%Y-%m-%d %H:%M:%S'.
const seedTimeLayout = "2006-01-02 15:04:05"

// The seed's log events (PROTOCOL-seed.md, "Log lines of the seed"): log
// them as the message, with their keys as attributes, in any format.
const (
	EventBetsReceived = "apuesta_recibida"   // result, cantidad
	EventDraw         = "sorteo"             // result
	EventWinners      = "consulta_ganadores" // result, cant_ganadores
)

// Keys of the seed's events.
const (
	KeyResult  = "result"
	KeyCount   = "cantidad"
	KeyWinners = "cant_ganadores"
)

// seedDetailAction is the action of the line that carries, at DEBUG, the
// attributes of a seed event that the seed's line has no room for.
const seedDetailAction = "detail"

// seedEventKeys returns the keys of a seed event's line, in order.
func seedEventKeys(msg string) (keys [2]string, n int, ok bool) {
	switch msg {
	case EventBetsReceived:
		return [2]string{KeyResult, KeyCount}, 2, true
	case EventDraw:
		return [2]string{KeyResult}, 1, true
	case EventWinners:
		return [2]string{KeyResult, KeyWinners}, 2, true
	}
	return keys, 0, false
}

// IsSeedEvent reports whether msg is one of the seed's events, whose lines
// LOG_FORMAT=seed writes exactly as the seed did.
func IsSeedEvent(msg string) bool {
	_, _, ok := seedEventKeys(msg)
	return ok
}

// seedHandler writes one line per record the way the seed's python server
// logged (format '%(asctime)s %(levelname)-8s %(message)s'), with the message
// written as the seed's events:
//
//	2026-11-26 14:00:00 INFO     action: apuesta_recibida | result: success | cantidad: 100
//
// The time is the record's, in the local zone, and is left out (with its
// separator) when the record has none. Level names are python's: DEBUG, INFO,
// WARNING, ERROR, padded to eight characters. Each attribute follows as
// " | key: value"; groups are flattened into dotted keys ("conn.agency: 3"),
// empty groups are dropped. Values are written as they are except that a value
// (or key, or message) holding a control character such as a newline is
// quoted Go-style, so a record is always exactly one line.
//
// The seed's events (apuesta_recibida, sorteo, consulta_ganadores) are
// written exactly as the seed wrote them, so tooling that parses its logs
// keeps working: only the event's own keys, in the seed's order, and
// nothing after the last value:
//
//	action: apuesta_recibida | result: success | cantidad: 10
//	action: apuesta_recibida | result: fail | cantidad: 0      (at ERROR, as the seed)
//	action: sorteo | result: success
//	action: consulta_ganadores | result: success | cant_ganadores: 2
//
// The keys are taken from the record's attributes wherever they are (in a
// group too), the first of each name. An apuesta_recibida whose result is
// fail is written at ERROR whatever the record's level. Every other
// attribute (agency, seq, trace_id, those of With...) goes, only when the
// handler is enabled at DEBUG, to a second line at DEBUG:
//
//	action: detail | event: apuesta_recibida | agency: 3 | seq: 7 | trace_id: ...
//
// whose action is not the event's, so a count of the event's lines stays
// one per event.
type seedHandler struct {
	level  slog.Leveler
	prefix string // " | key: value" for attributes added with WithAttrs, preformatted
	group  string // dotted prefix ("a.b.") for keys added from now on

	mu *sync.Mutex // shared by all handlers derived from the same one
	w  io.Writer
}

func newSeedHandler(w io.Writer, level slog.Leveler) *seedHandler {
	return &seedHandler{level: level, mu: &sync.Mutex{}, w: w}
}

func (h *seedHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *seedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	b := []byte(h.prefix)
	for _, a := range attrs {
		b = appendSeedAttr(b, h.group, a)
	}
	h2 := *h
	h2.prefix = string(b)
	return &h2
}

func (h *seedHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

func (h *seedHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128+len(h.prefix))
	if keys, n, ok := seedEventKeys(r.Message); ok {
		buf = h.appendEvent(buf, r, keys[:n])
	} else {
		buf = appendSeedLinePrefix(buf, r.Time, r.Level)
		buf = append(buf, "action: "...)
		buf = appendSeedString(buf, r.Message)
		buf = append(buf, h.prefix...)
		r.Attrs(func(a slog.Attr) bool {
			buf = appendSeedAttr(buf, h.group, a)
			return true
		})
		buf = append(buf, '\n')
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

// appendEvent appends a seed event's line and, at DEBUG, its detail line.
func (h *seedHandler) appendEvent(buf []byte, r slog.Record, keys []string) []byte {
	var (
		vals  [2]slog.Value
		found [2]bool
	)
	detail := h.level.Level() <= slog.LevelDebug
	var extra []byte // " | key: value" of every attribute the line leaves out
	if detail {
		extra = append(extra, h.prefix...)
	}
	var take func(group string, a slog.Attr)
	take = func(group string, a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		if a.Value.Kind() == slog.KindGroup {
			if a.Key != "" {
				group += a.Key + "."
			}
			for _, ga := range a.Value.Group() {
				take(group, ga)
			}
			return
		}
		for i, k := range keys {
			if a.Key == k && !found[i] {
				vals[i], found[i] = a.Value, true
				return
			}
		}
		if detail {
			extra = appendSeedAttr(extra, group, a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		take(h.group, a)
		return true
	})

	level := r.Level
	if r.Message == EventBetsReceived && found[0] && vals[0].Kind() == slog.KindString && vals[0].String() == "fail" {
		level = slog.LevelError // the seed logged a refused batch at ERROR
	}
	buf = appendSeedLinePrefix(buf, r.Time, level)
	buf = append(buf, "action: "...)
	buf = append(buf, r.Message...)
	for i, k := range keys {
		if found[i] {
			buf = append(buf, " | "...)
			buf = append(buf, k...)
			buf = append(buf, ": "...)
			buf = appendSeedValue(buf, vals[i])
		}
	}
	buf = append(buf, '\n')
	if len(extra) == 0 {
		return buf
	}
	buf = appendSeedLinePrefix(buf, r.Time, slog.LevelDebug)
	buf = append(buf, "action: "+seedDetailAction+" | event: "...)
	buf = append(buf, r.Message...)
	buf = append(buf, extra...)
	return append(buf, '\n')
}

// appendSeedLinePrefix appends the time (when there is one) and the level.
func appendSeedLinePrefix(b []byte, t time.Time, l slog.Level) []byte {
	if !t.IsZero() {
		b = t.AppendFormat(b, seedTimeLayout)
		b = append(b, ' ')
	}
	return appendSeedLevel(b, l)
}

// appendSeedLevel appends python's level name padded to eight characters
// ('%(levelname)-8s') and the space that follows it.
func appendSeedLevel(b []byte, l slog.Level) []byte {
	var name string
	switch l {
	case slog.LevelDebug:
		name = "DEBUG"
	case slog.LevelInfo:
		name = "INFO"
	case slog.LevelWarn:
		name = "WARNING"
	case slog.LevelError:
		name = "ERROR"
	default:
		name = l.String()
	}
	b = append(b, name...)
	for i := len(name); i < 8; i++ {
		b = append(b, ' ')
	}
	return append(b, ' ')
}

func appendSeedAttr(b []byte, group string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return b
		}
		if a.Key != "" {
			group += a.Key + "."
		}
		for _, ga := range attrs {
			b = appendSeedAttr(b, group, ga)
		}
		return b
	}
	b = append(b, " | "...)
	b = appendSeedString(b, group+a.Key)
	b = append(b, ": "...)
	return appendSeedValue(b, a.Value)
}

func appendSeedValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendSeedString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return append(b, v.Duration().String()...)
	case slog.KindTime:
		return v.Time().AppendFormat(b, time.RFC3339Nano)
	default:
		// KindAny: fmt's rendering, which uses Error() for errors and
		// String() for Stringers.
		return appendSeedString(b, v.String())
	}
}

// appendSeedString appends s as it is, or quoted when it holds a control
// character that would break the one-line-per-record rule.
func appendSeedString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return strconv.AppendQuote(b, s)
		}
	}
	return append(b, s...)
}
