package central

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/loteria/loteria/services/internal/lottery"
)

// ErrDrawHeld refuses bets once the draw has started.
var ErrDrawHeld = errors.New("the draw has already been held: no more bets are taken")

// ErrAgencyFinished refuses bets of an agency that already sent END.
var ErrAgencyFinished = errors.New("this agency already sent END: no more bets are taken from it")

// barrier waits for the N agencies' END, then holds the draw once.
//
// Batches pass through admit (a read lock) on their way to the store, and
// the draw takes the write lock before it starts, so every batch that was
// admitted is in the store, flushed, before the draw reads it, and none is
// admitted after.
type barrier struct {
	expected int
	draw     func(context.Context) (*lottery.Result, error)
	onDraw   func(firstEnd time.Time, took time.Duration, res *lottery.Result, err error)

	gate    sync.RWMutex
	started bool // the draw has begun; guarded by gate

	mu       sync.Mutex
	arrived  map[int]bool
	anon     int // END from connections that never said which agency they are
	firstEnd time.Time
	claimed  bool // an arrival has taken on the draw
	done     chan struct{}
	result   *lottery.Result
	err      error
}

func newBarrier(expected int, draw func(context.Context) (*lottery.Result, error),
	onDraw func(time.Time, time.Duration, *lottery.Result, error)) *barrier {
	return &barrier{
		expected: expected,
		draw:     draw,
		onDraw:   onDraw,
		arrived:  make(map[int]bool),
		done:     make(chan struct{}),
	}
}

// admit runs submit (which must only queue the batch) unless the draw has
// started or the agency has finished.
func (b *barrier) admit(agency int, submit func() error) error {
	b.gate.RLock()
	defer b.gate.RUnlock()
	if b.started {
		return ErrDrawHeld
	}
	b.mu.Lock()
	fin := b.arrived[agency]
	b.mu.Unlock()
	if fin {
		return ErrAgencyFinished
	}
	return submit()
}

// arrive records an agency's END (0 for an unknown agency) and returns a
// channel closed when the draw is done. The last arrival holds the draw,
// in its own goroutine's time, so ctx bounds it.
func (b *barrier) arrive(ctx context.Context, agency int) (finished int, done <-chan struct{}) {
	b.mu.Lock()
	if b.firstEnd.IsZero() {
		b.firstEnd = time.Now()
	}
	if agency == 0 {
		b.anon++
	} else {
		b.arrived[agency] = true
	}
	n := len(b.arrived) + b.anon
	last := n >= b.expected && !b.claimed
	if last {
		b.claimed = true
	}
	b.mu.Unlock()
	if last {
		b.holdDraw(ctx)
	}
	return n, b.done
}

func (b *barrier) holdDraw(ctx context.Context) {
	b.gate.Lock()
	if b.started {
		b.gate.Unlock()
		return
	}
	b.started = true
	b.gate.Unlock()

	start := time.Now()
	res, err := b.draw(ctx)
	if err != nil {
		err = fmt.Errorf("draw: %w", err)
	}
	b.mu.Lock()
	b.result, b.err = res, err
	first := b.firstEnd
	b.mu.Unlock()
	if b.onDraw != nil {
		b.onDraw(first, time.Since(start), res, err)
	}
	close(b.done)
}

// winners is an agency's result once done is closed.
func (b *barrier) winners(agency int) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	if b.result == nil {
		return nil, errors.New("the draw has not been held")
	}
	return b.result.Winners(agency), nil
}

// finished is how many agencies have sent END.
func (b *barrier) finished() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.arrived) + b.anon
}

// isDone reports whether the draw is over.
func (b *barrier) isDone() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}
