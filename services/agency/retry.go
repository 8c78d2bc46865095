package agency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Clock is the time the client paces, backs off and measures its retry
// budget by. Tests pass a fake; network deadlines always use real time.
type Clock interface {
	Now() time.Time
	// Sleep waits d (nothing when d <= 0) or until ctx ends, returning
	// ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Rand is the random source of the backoff; *rand.Rand (math/rand/v2)
// satisfies it. It is used by one client at a time.
type Rand interface {
	Int64N(n int64) int64
}

// globalRand draws from math/rand/v2's top-level source, seeded at random
// per process, so that thousands of agencies never retry in lockstep.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// backoff is capped exponential backoff with full jitter: the wait before
// retry number attempt (from 0) is uniform in [0, min(max, base·2^attempt)].
// Full jitter spreads agencies that failed together (a central restart)
// over the whole interval instead of bunching them at its end.
type backoff struct {
	base, max time.Duration
	rand      Rand
}

// bound is the longest wait before retry attempt.
func (b backoff) bound(attempt int) time.Duration {
	d := b.base
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// delay draws the wait before retry attempt.
func (b backoff) delay(attempt int) time.Duration {
	return time.Duration(b.rand.Int64N(int64(b.bound(attempt)) + 1))
}

// retryableError marks a failure that clears by itself (a lost connection,
// a timeout, an error ack whose code wire.Retryable accepts): the client
// reconnects after a backoff and resumes.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err}
}

// finalError overrides retryableError: in --protocol=seed nothing can be
// resumed once a batch may have been sent.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var fe *finalError
	if errors.As(err, &fe) {
		return false
	}
	var re *retryableError
	return errors.As(err, &re)
}

// errRedirect asks the retry loop to reconnect at once, without counting
// a failure: the HELLO named a round the agency has nothing left to do in.
var errRedirect = errors.New("reconnect to ask for another round")

// retry runs op until it succeeds, fails for good, or the agency has been
// failing without progress for longer than the retry budget. Progress is
// an ack or winners (r.progress moves); while waiting for a draw, a
// connection that got as far as sending END (r.waited moves) renews the
// budget but keeps the backoff growing.
func (r *run) retry(ctx context.Context, what string, op func(context.Context) error) error {
	c := r.c
	for {
		before, beforeWait := r.progress, r.waited
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		if errors.Is(err, errRedirect) {
			continue
		}
		if !isRetryable(err) {
			return err
		}
		switch {
		case r.progress != before:
			r.failingSince, r.attempt = time.Time{}, 0
		case r.waited != beforeWait:
			// Back at the barrier: the budget starts afresh, the backoff
			// does not (a central that takes END and drops the connection
			// at once must not get a reconnect every RetryBase).
			r.failingSince = time.Time{}
		}
		now := c.clock.Now()
		if r.failingSince.IsZero() {
			r.failingSince = now
		}
		failing := now.Sub(r.failingSince)
		if failing >= c.opts.RetryBudget || (c.opts.DialAttempts > 0 && r.attempt+1 >= c.opts.DialAttempts) {
			reason := reasonConnection
			var ae *Error
			if errors.As(err, &ae) {
				reason = ae.Reason
			}
			return &Error{Reason: reason, Err: fmt.Errorf(
				"gave up %s after %s of failures without progress and %d attempts (retry budget %s, --retry-budget): last error: %w",
				what, failing.Round(time.Millisecond), r.attempt+1, c.opts.RetryBudget, err)}
		}
		d := r.backoff.delay(r.attempt)
		r.attempt++
		c.m.retries.Inc()
		c.log.Warn("central unavailable, retrying", "what", what, "attempt", r.attempt, "in", d.Round(time.Millisecond),
			"failing_for", failing.Round(time.Millisecond), "err", err)
		r.afterFailure = true
		if err := c.clock.Sleep(ctx, d); err != nil {
			return stopped(ctx)
		}
	}
}
