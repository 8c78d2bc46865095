package central

import (
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
