package observability

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limiter keeps repeated records from flooding a log: the first record of
// each kind is written at once; later ones of that kind are counted and
// written at most once per interval, carrying how many were suppressed
// since the last one written ("suppressed") and how long ago that was
// ("suppressed_over"). A kind is the caller's key (for example the
// message plus a reason), never a value that grows without bound such as
// an address or an agency number from the network.
//
// Counts still pending when the records stop are written by Flush (call it
// on the way out). A Limiter remembers at most 1,024 kinds that are
// suppressing; further kinds share one more allowance, so even a caller
// that gets the kind wrong writes a bounded number of lines.
//
// With LOG_FORMAT=seed the seed's events (see [IsSeedEvent]) are never
// limited: the seed's tooling expects one apuesta_recibida line per batch.
// Other records are limited in every format.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	seed  bool // the logger writes LOG_FORMAT=seed

	mu       sync.Mutex
	kinds    map[string]*limited
	overflow limited   // shared by the kinds past maxKinds
	sweepAt  time.Time // when a full map may next be swept
}

type limited struct {
	last       time.Time // when a record of the kind was last written
	next       time.Time // when the next record of the kind may be written
	suppressed int
	// level and msg of the last suppressed record, for Flush.
	level slog.Level
	msg   string
}

// maxKinds bounds the kinds a Limiter remembers.
const maxKinds = 1024

// defaultLimitInterval is the interval of NewLimiter(log, 0, ...).
const defaultLimitInterval = 10 * time.Second

// Attribute keys a Limiter adds to the record that follows suppressed ones.
const (
	SuppressedKey     = "suppressed"
	SuppressedOverKey = "suppressed_over"
)

// NewLimiter writes to log at most one record per kind every interval
// (default 10 s); now is the clock (nil: time.Now).
func NewLimiter(log *slog.Logger, every time.Duration, now func() time.Time) *Limiter {
	if every <= 0 {
		every = defaultLimitInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{log: log, every: every, now: now, seed: isSeedHandler(log.Handler()),
		kinds: make(map[string]*limited)}
}

// Log writes a record of the given kind at level, or counts it when one of
// the same kind was written less than an interval ago.
func (l *Limiter) Log(ctx context.Context, level slog.Level, kind, msg string, args ...any) {
	if !l.log.Enabled(ctx, level) {
		return
	}
	if l.seed && IsSeedEvent(msg) {
		l.log.Log(ctx, level, msg, args...)
		return
	}
	now := l.now()
	l.mu.Lock()
	k := l.kind(kind, now)
	if now.Before(k.next) {
		k.suppressed++
		k.level, k.msg = level, msg
		l.mu.Unlock()
		return
	}
	suppressed, last := k.suppressed, k.last
	k.suppressed, k.msg = 0, ""
	k.last, k.next = now, now.Add(l.every)
	l.mu.Unlock()
	if suppressed > 0 {
		// A fresh slice: appending to args could write into the caller's
		// array when it has spare capacity.
		args = append(args[:len(args):len(args)], SuppressedKey, suppressed, SuppressedOverKey, now.Sub(last))
	}
	l.log.Log(ctx, level, msg, args...)
}

// kind returns the state of a kind, making room for it when needed. l.mu
// is held.
func (l *Limiter) kind(kind string, now time.Time) *limited {
	if k := l.kinds[kind]; k != nil {
		return k
	}
	if len(l.kinds) >= maxKinds {
		if now.Before(l.sweepAt) {
			return &l.overflow
		}
		// A kind whose interval is over and that counts nothing behaves
		// as an unknown one: forgetting it loses nothing. Swept at most
		// once an interval, so a flood of new kinds costs no more.
		l.sweepAt = now.Add(l.every)
		for name, k := range l.kinds {
			if k.suppressed == 0 && !now.Before(k.next) {
				delete(l.kinds, name)
			}
		}
		if len(l.kinds) >= maxKinds {
			return &l.overflow
		}
	}
	k := &limited{}
	l.kinds[kind] = k
	return k
}

// Warn is Log at WARN without a context.
func (l *Limiter) Warn(kind, msg string, args ...any) {
	l.Log(context.Background(), slog.LevelWarn, kind, msg, args...)
}

// Flush writes, for every kind with suppressed records, one record with
// the last suppressed message and the count, so nothing counted is lost
// when the records stop (call it at shutdown). The records carry none of
// the suppressed records' attributes.
func (l *Limiter) Flush(ctx context.Context) {
	type pending struct {
		level slog.Level
		msg   string
		n     int
		over  time.Duration
	}
	now := l.now()
	var out []pending
	l.mu.Lock()
	flush := func(k *limited) {
		if k.suppressed > 0 {
			out = append(out, pending{k.level, k.msg, k.suppressed, now.Sub(k.last)})
			k.suppressed, k.msg = 0, ""
		}
	}
	for _, k := range l.kinds {
		flush(k)
	}
	flush(&l.overflow)
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b pending) int { return strings.Compare(a.msg, b.msg) })
	for _, p := range out {
		l.log.Log(ctx, p.level, p.msg, SuppressedKey, p.n, SuppressedOverKey, p.over)
	}
}

// isSeedHandler reports whether h writes LOG_FORMAT=seed, behind the trace
// handler NewLogger puts in front.
func isSeedHandler(h slog.Handler) bool {
	if th, ok := h.(*traceHandler); ok {
		h = th.inner
	}
	_, ok := h.(*seedHandler)
	return ok
}
