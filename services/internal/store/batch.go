package store

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/loteria/loteria/services/internal/ledger"
)

// op is what a queued entry asks of the writer.
type op uint8

const (
	opBatch  op = iota + 1 // rows and a MARK
	opReject               // a MARK with a refused count, no rows
	opNoop                 // nothing to record: completes once what is before it is durable
	opClaim                // STREAM
	opEnd                  // END
	opClose                // CLOSE
	opDraw                 // DRAW
)

// entry is one queued operation.
type entry struct {
	kind     op
	batch    bool // a Submit or Reject (counted in GroupInfo.Batches)
	agency   int
	round    int   // the round open when it was queued
	mark     int64 // opBatch, opReject: the agency's new mark; opEnd: its mark
	stored   int
	rejected int64
	rows     *[]byte // opBatch: the encoded rows (pooled)
	fp       string
	reason   ledger.CloseReason
	draw     ledger.Draw
	rec      *ledger.Receipt
	pos      int64 // set by the writer: data offset of the entry's rows
}

// batch implements ledger.Batch; it is its own queue entry.
type batch struct {
	entry
	s     *Store
	from  int64
	n     int
	skip  int   // bets below the mark, skipped by Add
	base  int64 // the agency's mark at Begin
	added int
	state batchState
}

type batchState uint8

const (
	building batchState = iota
	queued
	dropped
)

var errBatchUsed = errors.New("batch already submitted, rejected or discarded")

// Begin implements ledger.Ledger.
func (s *Store) Begin(agency int, from int64, n int) (ledger.Batch, error) {
	if err := checkAgency(agency, false); err != nil {
		return nil, err
	}
	if n < 0 || n > maxBatchBets {
		return nil, fmt.Errorf("agency %d: a batch holds 0 to %d bets, not %d", agency, maxBatchBets, n)
	}
	if from < 0 && from != ledger.AtMark {
		return nil, fmt.Errorf("agency %d: a batch cannot start at bet %d", agency, from)
	}
	s.mu.Lock()
	err := s.usable()
	mark := s.admitted(agency).mark
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if from == ledger.AtMark {
		from = mark
	}
	if from > mark {
		return nil, &ledger.GapError{Agency: agency, Expected: mark, Got: from}
	}
	b := &batch{s: s, from: from, n: n, skip: int(min(int64(n), mark-from)), base: mark}
	b.agency = agency
	b.rows = s.getBuf(n - b.skip)
	return b, nil
}

// Add implements ledger.Batch: it encodes the bet's row into the batch's
// buffer, or skips it when it is below the mark.
func (b *batch) Add(bet ledger.Bet) {
	if b.state != building {
		return
	}
	i := b.added
	b.added++
	if i < b.skip || i >= b.n {
		return
	}
	*b.rows = appendBetRow(*b.rows, b.agency, bet)
}

// New implements ledger.Batch.
func (b *batch) New() int { return b.n - b.skip }

// Bytes implements ledger.Batch: the encoded rows so far (0 once the
// batch is submitted: its rows are the writer's then).
func (b *batch) Bytes() int {
	if b.state != building || b.rows == nil {
		return 0
	}
	return len(*b.rows)
}

// Submit implements ledger.Batch. Every bet announced at Begin must have
// been added.
func (b *batch) Submit() (*ledger.Receipt, error) {
	s := b.s
	if b.state != building {
		return nil, errBatchUsed
	}
	if b.added != b.n {
		b.drop()
		return nil, fmt.Errorf("agency %d: batch of %d bets submitted after %d were added", b.agency, b.n, b.added)
	}
	if size := len(*b.rows); size > s.opts.MaxGroupBytes {
		b.drop()
		return nil, fmt.Errorf("agency %d: batch of %d bytes is larger than the store's group bound (%d bytes): nothing stored", b.agency, size, s.opts.MaxGroupBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := b.admit()
	if err != nil {
		return nil, err
	}
	if end := b.from + int64(b.n); end > a.mark {
		b.kind, b.stored, b.mark = opBatch, int(end-a.mark), end
		a.mark = end
	} else {
		b.kind = opNoop // wholly below the mark: the first copy is queued
		s.putBuf(b.rows)
		b.rows = nil
	}
	return b.queue(), nil
}

// Reject implements ledger.Batch.
func (b *batch) Reject() (*ledger.Receipt, error) {
	s := b.s
	if b.state != building {
		return nil, errBatchUsed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := b.admit()
	if err != nil {
		return nil, err
	}
	s.putBuf(b.rows)
	b.rows = nil
	if end := b.from + int64(b.n); end > a.mark {
		b.kind, b.rejected, b.mark = opReject, end-a.mark, end
		a.mark = end
	} else {
		b.kind = opNoop
	}
	return b.queue(), nil
}

// admit checks, with s.mu held, that the batch may be queued: room, a
// working store, and the mark where Begin saw it.
func (b *batch) admit() (*admitted, error) {
	s := b.s
	if err := s.waitRoom(); err != nil {
		b.drop()
		return nil, err
	}
	a := s.admitted(b.agency)
	if a.mark != b.base {
		b.drop()
		return nil, fmt.Errorf("agency %d: %w (it is now %d, was %d at the batch's start)", b.agency, ledger.ErrConflict, a.mark, b.base)
	}
	return a, nil
}

// queue pushes the admitted batch, with s.mu held.
func (b *batch) queue() *ledger.Receipt {
	b.batch, b.state = true, queued
	b.rec = ledger.NewReceipt()
	b.s.push(&b.entry)
	return b.rec
}

// Discard implements ledger.Batch; after Submit or Reject it does nothing.
func (b *batch) Discard() {
	if b.state == building {
		b.drop()
	}
}

func (b *batch) drop() {
	b.state = dropped
	if b.rows != nil {
		b.s.putBuf(b.rows)
		b.rows = nil
	}
}

// Batch buffers are pooled per store in power-of-two size classes from
// 1 KiB to 1 MiB, so that a small batch never holds a buffer a large one
// grew (memory in flight is what the central budgets). Begin picks the
// class from the batch's bet count; a buffer returns to the class of its
// capacity; larger ones are left to the GC.
const (
	minBufShift = 10 // 1 KiB
	maxBufShift = 20 // 1 MiB
	rowEstimate = 64 // bytes a row usually takes at most
)

type bufPools [maxBufShift - minBufShift + 1]sync.Pool

func (s *Store) getBuf(bets int) *[]byte {
	c := 0
	for c < len(s.bufs)-1 && 1<<(minBufShift+c) < bets*rowEstimate {
		c++
	}
	if p, ok := s.bufs[c].Get().(*[]byte); ok {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, 1<<(minBufShift+c))
	return &b
}

func (s *Store) putBuf(p *[]byte) {
	if p == nil {
		return
	}
	n := cap(*p)
	if n < 1<<minBufShift || n > 1<<maxBufShift {
		return
	}
	c := bits.Len(uint(n)) - 1 - minBufShift // the largest class it fills
	s.bufs[c].Put(p)
}
