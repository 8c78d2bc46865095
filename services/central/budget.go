package central

import (
	"container/list"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// budget bounds the bytes of batches held in memory between their frame
// being read and their ack being written, so a crowd of peers with deep
// pipelines cannot exhaust memory: a reader that would go over waits (and
// TCP holds its peer back) until acks free room.
//
// A frame pays, when its header is read, for everything it may hold until
// its ack: its payload, the rows it may become and its place in the ack
// queue (frameCharge). Nothing it does later waits for the budget again,
// so no reader ever waits while holding a charge that only it can free:
// with a payload charged first and its rows after, three readers of large
// batches each held a payload and waited for rows for ever.
//
// A fifo budget serves its waits in the order they came: a frame that finds
// others waiting waits behind them, even if it would fit. Without that, a
// waiting full-size frame could be overtaken, for as long as they kept
// coming, by smaller frames that fit the room each ack frees (helper-31:
// with four agencies' shares over the budget).
type budget struct {
	mu      sync.Mutex
	cond    *sync.Cond
	limit   int64
	used    int64
	closed  bool
	waiting int // callers in acquireUnless's wait
	fifo    bool
	queue   list.List // a fifo budget's waits, the oldest first
}

// errBudgetClosed: the central is shutting down.
var errBudgetClosed = errors.New("central is shutting down")

// errBudgetTimeout: no room within the wait's bound.
var errBudgetTimeout = errors.New("no room in the in-flight budget in time")

func newBudget(limit int64, fifo bool) *budget {
	b := &budget{limit: limit, fifo: fifo}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes, waiting for room until deadline (zero: no bound)
// or until close (room at once is taken even then). It returns what it took, which is at most the whole
// budget, so one oversized frame still goes alone; on an error it took
// nothing.
func (b *budget) acquire(n int64, deadline time.Time) (int64, error) {
	return b.acquireUnless(n, deadline, nil)
}

// errBudgetStopped: the wait was ended by its stop flag.
var errBudgetStopped = errors.New("wait for the in-flight budget ended")

// acquireUnless is acquire that also ends, taking nothing, once stop (if
// not nil) is set and the budget woken (wake).
func (b *budget) acquireUnless(n int64, deadline time.Time, stop *atomic.Bool) (int64, error) {
	n = min(n, b.limit)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.limit && (b.queue.Len() == 0 || b.closed) {
		// The common case: room at once, no timer. (Even once closed: a
		// frame read at shutdown is answered that the central is
		// shutting down, not dropped.)
		b.used += n
		return n, nil
	}
	var me *list.Element // this wait's place in a fifo budget's queue
	if b.fifo {
		me = b.queue.PushBack(n)
		defer func() { // b.mu still held: deferred after the Unlock
			b.queue.Remove(me)
			b.cond.Broadcast() // the next in the queue may fit now
		}()
	}
	if !deadline.IsZero() {
		t := time.AfterFunc(time.Until(deadline), func() {
			b.mu.Lock()
			b.cond.Broadcast()
			b.mu.Unlock()
		})
		defer t.Stop()
	}
	for (b.used+n > b.limit || (me != nil && b.queue.Front() != me)) && !b.closed {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return 0, errBudgetTimeout
		}
		if stop != nil && stop.Load() {
			return 0, errBudgetStopped
		}
		b.waiting++
		b.cond.Wait()
		b.waiting--
	}
	if b.closed {
		return 0, errBudgetClosed
	}
	b.used += n
	return n, nil
}

// tryAcquire takes n bytes (at most the whole budget) if there is room
// now and nobody waits before it, and reports whether it did.
func (b *budget) tryAcquire(n int64) (int64, bool) {
	n = min(n, b.limit)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit || b.queue.Len() > 0 {
		return 0, false
	}
	b.used += n
	return n, true
}

// take adds n bytes without waiting: only for what a frame turned out to
// need beyond its charge, which only a frame clamped to the whole budget
// can.
func (b *budget) take(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
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

// wake makes every wait look at its stop flag again.
func (b *budget) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

// close ends every wait, now and later, with errBudgetClosed.
func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// waiters is how many callers wait for room (tests).
func (b *budget) waiters() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// inUse is the bytes taken (tests, status).
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// rowsPerPayload bounds the rows a batch's payload can become, per payload
// byte: a bet line "first;last;document;birthdate;number\n" is at least 19
// bytes (a birthdate is 10), and its row adds the agency (at most 9 digits)
// and a comma, and at worst doubles each name (every byte a '"' to escape)
// and quotes it: row <= 2·line + 14 < 3·line.
const rowsPerPayload = 3

// frameCharge is what a frame of size payload bytes pays the budget when
// its header is read.
func frameCharge(size int) int64 {
	return int64(size)*(1+rowsPerPayload) + queueCharge
}

// charge is what a frame has paid and not yet spent or given back. A nil
// pool is a frame that pays nothing (a small one of an anonymous peer).
// What it takes from and gives back to the agencies' pool counts in its
// connection's share too.
type charge struct {
	pool *budget
	left int64
	conn *conn
}

// spend moves n bytes of the charge to what a batch holds until its ack,
// taking from the pool without waiting what the charge lacks. It returns
// what the batch now holds of the pool: 0 for a frame that pays nothing.
func (c *charge) spend(n int64) int64 {
	if c.pool == nil {
		return 0
	}
	if n > c.left {
		c.pool.take(n - c.left)
		c.conn.hold(c.pool, n-c.left)
		c.left = 0
		return n
	}
	c.left -= n
	return n
}

// refund gives back what the frame did not spend.
func (c *charge) refund() {
	if c.pool == nil {
		return
	}
	c.conn.give(c.pool, c.left)
	c.left = 0
}

// The share of one connection: an agency's connection may hold at most
// this much of the agencies' pool (and always one frame, however large),
// so one that sends without reading its acks cannot take the room of the
// others. Its reader waits for its own acks, holding nothing more.
func connShare(limit int64, maxFrame int) int64 {
	return min(limit, max(limit/connShareDiv, frameCharge(maxFrame)))
}

// hold counts n bytes taken from pool in c's share (only the agencies'
// pool has shares).
func (c *conn) hold(pool *budget, n int64) {
	if pool != c.s.budget || n == 0 {
		return
	}
	a := &c.acks
	a.mu.Lock()
	a.held += n
	a.mu.Unlock()
}

// give returns n bytes to pool, and to c's share.
func (c *conn) give(pool *budget, n int64) {
	if n == 0 {
		return
	}
	pool.release(n)
	if pool != c.s.budget {
		return
	}
	a := &c.acks
	a.mu.Lock()
	a.held -= n
	if a.room != nil {
		a.room.Broadcast()
	}
	a.mu.Unlock()
}

// waitShare waits until a frame charging n fits c's share: while c holds
// anything and n more would pass it. It ends early, with an error, when
// an ack cannot be written, the central shuts down (errBudgetClosed) or a
// newer connection replaces c (errBudgetStopped).
func (c *conn) waitShare(n int64) error {
	a := &c.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.held > 0 && a.held+n > c.s.share {
		if a.err != nil {
			return a.err
		}
		if a.woken {
			return errBudgetClosed
		}
		if c.replaced.Load() {
			return errBudgetStopped
		}
		if a.room == nil {
			a.room = sync.NewCond(&a.mu)
		}
		c.s.m.shareWaits.Inc()
		a.room.Wait()
	}
	return nil
}

// wakeShare makes a wait for c's share look at its reasons to end again
// (replaced); with shutdown, it ends every such wait for good.
func (c *conn) wakeShare(shutdown bool) {
	a := &c.acks
	a.mu.Lock()
	a.woken = a.woken || shutdown
	if a.room != nil {
		a.room.Broadcast()
	}
	a.mu.Unlock()
}
