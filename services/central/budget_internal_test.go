package central

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// TestBudgetServesWaitsInOrder: a large frame waiting for room is not
// overtaken by a smaller one that came after it and fits the room an ack
// frees. In a budget that is not fifo (the unnamed connections') the
// smaller one takes it, which is what kept a full-size frame of an agency
// waiting behind a stream of smaller ones (helper-31).
func TestBudgetServesWaitsInOrder(t *testing.T) {
	for _, tc := range []struct {
		fifo  bool
		first string // which wait gets room first
	}{
		{fifo: true, first: "large"},
		{fifo: false, first: "small"},
	} {
		b := newBudget(100, tc.fifo)
		if took, err := b.acquire(100, time.Time{}); took != 100 || err != nil {
			t.Fatalf("acquire(100) = %d, %v", took, err)
		}
		got := make(chan string, 2)
		wait := func(name string, n int64, waiters int) {
			go func() {
				if took, err := b.acquire(n, time.Time{}); took != n || err != nil {
					t.Errorf("%s: acquire(%d) = %d, %v", name, n, took, err)
				}
				got <- name
			}()
			testenv.Eventually(t, 5*time.Second, name+" to wait", func() bool { return b.waiters() == waiters })
		}
		wait("large", 80, 1)
		wait("small", 30, 2)
		b.release(30) // room for the small one only
		if !tc.fifo {
			// The small one takes it, though the large one waited first.
			testenv.Eventually(t, 5*time.Second, "small to take the room", func() bool { return b.waiters() == 1 })
		}
		b.release(70) // room now for either, not both: fifo, the large one
		if first := <-got; first != tc.first {
			t.Errorf("fifo %v: %s got room first, want %s", tc.fifo, first, tc.first)
		}
		if n := b.waiters(); n != 1 {
			t.Errorf("fifo %v: %d waits left, want 1", tc.fifo, n)
		}
		b.release(b.inUse()) // the one left gets in
		<-got
		if used := b.inUse(); used != 80 && used != 30 {
			t.Errorf("fifo %v: %d bytes in use at the end", tc.fifo, used)
		}
	}
}

// TestFifoBudgetClose: close ends every queued wait, the front one and
// those behind it, and leaves the queue empty; a frame that finds room
// after the close takes it, queue or not, so that it is answered that the
// central is shutting down rather than dropped (helper-34: with the queue
// it was dropped).
func TestFifoBudgetClose(t *testing.T) {
	b := newBudget(100, true)
	b.acquire(100, time.Time{})
	errs := make(chan error, 3)
	for i, n := range []int64{80, 10, 100} {
		go func() { _, err := b.acquire(n, time.Time{}); errs <- err }()
		testenv.Eventually(t, 5*time.Second, "the wait to queue", func() bool { return b.waiters() == i+1 })
	}
	b.mu.Lock()
	b.closed = true // closed, the queue still full: the moment a shutdown begins
	b.mu.Unlock()
	b.release(50)
	if took, err := b.acquire(20, time.Time{}); took != 20 || err != nil {
		t.Errorf("after close, with room: acquire(20) = %d, %v; want 20, nil", took, err)
	}
	b.close()
	for range 3 {
		if err := <-errs; !errors.Is(err, errBudgetClosed) {
			t.Errorf("err %v, want errBudgetClosed", err)
		}
	}
	if n := b.queue.Len(); n != 0 {
		t.Errorf("queue %d after close", n)
	}
}

// TestFifoBudgetModel: random waits with stop flags set and woken at
// random, deadlines, overdraws (take) and frames clamped to the whole
// limit. No wait is left hanging (a lost wakeup, or a front blocked while
// room exists, would hang it), and at the end the queue is empty and every
// byte is back (helper-34).
func TestFifoBudgetModel(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 34))
		const limit = 1000
		b := newBudget(limit, true)
		var wg sync.WaitGroup
		for w := range 2 + rng.IntN(10) {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				var stop atomic.Bool
				for range 200 {
					n := int64(1 + r.IntN(limit+200)) // some clamped to the limit
					var deadline time.Time
					if r.IntN(4) == 0 {
						deadline = time.Now().Add(time.Duration(r.IntN(300)) * time.Microsecond)
					}
					if r.IntN(10) == 0 {
						go func() { stop.Store(true); b.wake() }()
					}
					took, err := b.acquireUnless(n, deadline, &stop)
					stop.Store(false)
					if err != nil {
						if took != 0 {
							t.Errorf("took %d with %v", took, err)
						}
						continue
					}
					extra := int64(0)
					if took == limit && r.IntN(2) == 0 {
						extra = int64(r.IntN(300)) // a clamped frame's rows beyond its charge
						b.take(extra)
					}
					b.release(took + extra)
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			b.mu.Lock()
			t.Fatalf("seed %d: waits hang: used %d, queue %d, waiting %d", seed, b.used, b.queue.Len(), b.waiting)
		}
		b.mu.Lock()
		if b.used != 0 || b.queue.Len() != 0 || b.waiting != 0 {
			t.Errorf("seed %d: used %d, queue %d, waiting %d at the end", seed, b.used, b.queue.Len(), b.waiting)
		}
		b.mu.Unlock()
	}
}
