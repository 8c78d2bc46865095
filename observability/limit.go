package observability

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter keeps repeated warnings from flooding a log: the first record of
// each kind is written at once; later ones of that kind are counted and
// written at most once per interval, carrying how many were suppressed
// since the last one. A kind is the caller's key (for example the
// message plus a reason), never a value that grows without bound.
//
// LOG_FORMAT=seed does not go through a Limiter: the seed's tooling
// expects one line per batch.
type Limiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*limited
}

type limited struct {
	next       time.Time // when the next record of the kind may be written
	suppressed int
}

// maxKinds bounds the kinds a Limiter remembers; past it, the oldest state
// is dropped (a kind then logs once more).
const maxKinds = 1024

// NewLimiter writes to log at most one record per kind every interval
// (default 10 s); now is the clock (nil: time.Now).
func NewLimiter(log *slog.Logger, every time.Duration, now func() time.Time) *Limiter {
	if every <= 0 {
		every = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{log: log, every: every, now: now, kinds: make(map[string]*limited)}
}

// Log writes a record of the given kind at level, or counts it when one of
// the same kind was written less than an interval ago.
func (l *Limiter) Log(ctx context.Context, level slog.Level, kind, msg string, args ...any) {
	if !l.log.Enabled(ctx, level) {
		return
	}
	now := l.now()
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= maxKinds {
			clear(l.kinds)
		}
		k = &limited{}
		l.kinds[kind] = k
	}
	if now.Before(k.next) {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.suppressed = 0
	k.next = now.Add(l.every)
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed, "suppressed_over", l.every)
	}
	l.log.Log(ctx, level, msg, args...)
}

// Warn is Log at WARN without a context.
func (l *Limiter) Warn(kind, msg string, args ...any) {
	l.Log(context.Background(), slog.LevelWarn, kind, msg, args...)
}
