package central

import "sync"

// budget bounds the bytes of batches held in memory between their frame
// being read and their ack being written, across every connection, so a
// crowd of agencies with deep pipelines cannot exhaust memory: a reader
// that would go over waits (and TCP holds its agency back) until acks
// free room.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	limit int64
	used  int64
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes, waiting for room; it returns what it took, which
// is at most the whole budget, so one oversized batch still goes alone.
func (b *budget) acquire(n int64) int64 {
	n = min(n, b.limit)
	b.mu.Lock()
	for b.used+n > b.limit {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
	return n
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}
