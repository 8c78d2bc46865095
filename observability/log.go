package observability

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/lmittmann/tint"
)

// Log formats accepted by [LogOptions].Format.
const (
	FormatTint = "tint" // human-readable, coloured when writing to a terminal (the default)
	FormatJSON = "json" // one JSON object per line (log/slog's JSON handler)
	FormatSeed = "seed" // the seed's "action: <msg> | key: value" lines
)

// LogOptions selects a logger's level and format.
type LogOptions struct {
	// Level is DEBUG, INFO, WARN (or WARNING) or ERROR, in any case.
	// Empty means INFO.
	Level string
	// Format is "tint", "json" or "seed", in any case. Empty means "tint".
	Format string
}

// ParseLevel turns a level name (DEBUG, INFO, WARN, WARNING, ERROR; any case,
// surrounding spaces ignored; empty means INFO) into a [slog.Level].
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "", "INFO":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("unknown log level %q: use DEBUG, INFO, WARN or ERROR", s)
	}
}

// ParseFormat normalises a log format name (tint, json, seed; any case; empty
// means tint) so configuration can be checked before a logger is built.
func ParseFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "":
		return FormatTint, nil
	case FormatTint, FormatJSON, FormatSeed:
		return f, nil
	default:
		return "", fmt.Errorf("unknown log format %q: use tint, json or seed", s)
	}
}

// NewLogger returns a logger writing to w in the format and at the level opts
// ask for. The tint format is coloured only when w is a terminal. Whatever the
// format, records logged with a context that carries a valid span context
// get top-level trace_id and span_id attributes (see [NewTraceHandler]).
func NewLogger(w io.Writer, opts LogOptions) (*slog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	format, err := ParseFormat(opts.Format)
	if err != nil {
		return nil, err
	}

	var h slog.Handler
	switch format {
	case FormatJSON:
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	case FormatSeed:
		h = newSeedHandler(w, level)
	default:
		h = tint.NewTextHandler(w, &tint.Options{
			Level:   level,
			NoColor: !isTerminal(w),
		})
	}
	return slog.New(NewTraceHandler(h)), nil
}

// isTerminal reports whether w is an *os.File that is a terminal (tint
// colours only then); /dev/null and pipes are not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
