package store

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// writer is the writer goroutine's own state, reused from group to group.
type writer struct {
	group  []*entry
	data   []byte
	rec    []byte
	c      commit
	markAt map[int]int // agency → its MARK in c.entries
	seq    uint64      // commits since open

	// What the last group says of the next, for gather: how many batches
	// to wait for (0: none) and how long its write and sync took.
	expect     int
	lastCommit time.Duration
	wake       *time.Timer // ends a gather's wait
}

const (
	// gatherMaxBatches: a group of more batches than this already shares
	// its sync widely; the writer does not wait to match it.
	gatherMaxBatches = 64
	// gatherMaxWait bounds one gather's wait, whatever the disk takes.
	gatherMaxWait = time.Millisecond
	// gatherMinCommit: a commit quicker than this (no sync: the
	// measurement-only builds) saves a straggler less than the wait and
	// the wake-up cost the others.
	gatherMinCommit = 50 * time.Microsecond
)

// writer commits what is queued, group by group, until Close and an
// empty queue.
func (s *Store) writer() {
	defer close(s.stopped)
	// The group's data buffer is made at its bound once: grown by append
	// from empty, a fresh central copied every group into a buffer twice
	// the last and faulted its pages in, and the garbage brought the GC
	// forward, all on the one goroutine every ack waits for (run B:
	// 0.050 -> 0.044 s). It counts as live heap from the start; fresh
	// from the system its pages are touched as groups reach them (an idle
	// central's RSS grew by 0.5 MiB), reused memory is zeroed at once.
	w := &writer{markAt: map[int]int{}, data: make([]byte, 0, s.opts.MaxGroupBytes)}
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.work.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		s.gather(w)
		s.take(w)
		failed := s.failed
		s.mu.Unlock()
		if failed != nil {
			s.finish(w, failed, ledger.GroupInfo{}, 0)
			continue
		}
		s.commitGroup(w)
	}
}

// gather waits, with s.mu held, a little for the batches the last group
// says are coming. Agencies that wait for each ack (the seed's client)
// come back together once a group is durable, but one by one: a writer
// that committed the first alone made the others wait for that sync and
// then their own, two syncs an ack (five stop-and-wait clients: 7,872
// batches in 5,254 groups, for agency 1's 2,694 rounds; with gather,
// 2,712). So while fewer batches are queued than the last group had
// (one batch from each of at most gatherMaxBatches agencies: agencies
// that pipeline send again without waiting, and show it with two batches
// in a group), the writer waits for them, for at most the last commit's
// time (the wait it saves them) and gatherMaxWait. One client alone is
// never kept waiting: its last group had one batch. Nor is anything
// that is not a batch (an END, a claim, a round's CLOSE or DRAW): what
// comes next is not more of the same.
func (s *Store) gather(w *writer) {
	want := w.expect
	if want < 2 || s.queuedBatches >= want || len(s.queue) != s.queuedBatches || s.closing || s.failed != nil {
		return
	}
	wait := s.gatherWait(w.lastCommit)
	if wait <= 0 {
		return
	}
	if s.gathering != nil {
		s.gathering(want)
	}
	deadline := time.Now().Add(wait)
	if w.wake == nil {
		w.wake = time.AfterFunc(wait, func() {
			s.mu.Lock()
			s.work.Signal()
			s.mu.Unlock()
		})
	} else {
		w.wake.Reset(wait)
	}
	for s.queuedBatches < want && len(s.queue) == s.queuedBatches && len(s.queue) < s.opts.QueueLen && !s.closing && s.failed == nil {
		s.work.Wait()
		if !time.Now().Before(deadline) {
			break
		}
	}
	w.wake.Stop()
}

// gatherFor is how long a gather waits after a commit that took
// lastCommit: what the batches it waits for would otherwise wait, up to
// gatherMaxWait, and none after one quicker than gatherMinCommit.
func gatherFor(lastCommit time.Duration) time.Duration {
	if lastCommit < gatherMinCommit {
		return 0
	}
	return min(lastCommit, gatherMaxWait)
}

// oneEach says whether group holds at most one batch of each agency. It
// is quadratic: gather asks it of groups of at most gatherMaxBatches.
func oneEach(group []*entry) bool {
	for i, e := range group {
		if !e.batch {
			continue
		}
		for _, f := range group[:i] {
			if f.batch && f.agency == e.agency {
				return false
			}
		}
	}
	return true
}

// take moves the next group from the queue to w.group, with s.mu held:
// everything queued, up to the group's bounds (data, record size, counts),
// and never past a CLOSE.
func (s *Store) take(w *writer) {
	data, rec, count := 0, frameLen+minBody+commitFixed+1, int64(0)
	n := 0
	for ; n < len(s.queue); n++ {
		e := s.queue[n]
		d, r, c := 0, 0, int64(0)
		switch e.kind {
		case opBatch:
			d, r, c = len(*e.rows), markLen, int64(e.stored)
		case opReject:
			r, c = markLen, e.rejected
		case opClaim:
			r = streamFixed + len(e.fp)
		case opEnd:
			r = endLen
		case opDraw:
			r = drawLen
		case opClose:
			r = closeLen
		}
		if n > 0 && (data+d > s.opts.MaxGroupBytes || rec+r > maxRecordBytes || count+c > maxGroupCount) {
			break
		}
		data, rec, count = data+d, rec+r, count+c
		if e.kind == opClose {
			n++
			break
		}
	}
	w.group = append(w.group[:0], s.queue[:n]...)
	batches := 0
	for _, e := range w.group {
		if e.batch {
			batches++
		}
	}
	s.queuedBatches -= batches
	w.expect = 0
	if batches <= gatherMaxBatches && oneEach(w.group) {
		w.expect = batches
	}
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	s.space.Broadcast()
}

// mark adds a batch's or refusal's move of its agency's mark to the
// group's MARK of that agency.
func (w *writer) mark(e *entry) {
	i, ok := w.markAt[e.agency]
	if !ok {
		i = len(w.c.entries)
		w.markAt[e.agency] = i
		w.c.entries = append(w.c.entries, jentry{kind: kindMark, agency: uint32(e.agency)})
	}
	m := &w.c.entries[i]
	m.mark = uint64(e.mark)
	m.stored += uint32(e.stored)
	m.rejected += uint32(e.rejected)
}

// commitGroup writes w.group as one commit and completes its receipts.
func (s *Store) commitGroup(w *writer) {
	c := &w.c
	c.entries = c.entries[:0]
	w.data = w.data[:0]
	clear(w.markAt)
	// Only the writer changes s.dur, so it reads it without the lock.
	start := s.dur.size
	batches := 0
	for _, e := range w.group {
		e.pos = start + int64(len(w.data))
		if e.batch {
			batches++
		}
		switch e.kind {
		case opBatch:
			w.data = append(w.data, *e.rows...)
			s.putBuf(e.rows)
			e.rows = nil
			w.mark(e)
		case opReject:
			w.mark(e)
		case opClaim:
			c.entries = append(c.entries, jentry{kind: kindStrm, agency: uint32(e.agency), fp: e.fp})
		case opEnd:
			c.entries = append(c.entries, jentry{kind: kindEnd, agency: uint32(e.agency), mark: uint64(e.mark)})
		case opDraw:
			c.entries = append(c.entries, jentry{kind: kindDraw, draw: e.draw})
		case opClose:
			c.entries = append(c.entries, jentry{kind: kindClose, reason: uint8(e.reason), mark: uint64(e.pos)})
		}
	}
	info := ledger.GroupInfo{Seq: w.seq, Batches: batches, Bytes: len(w.data)}
	if len(c.entries) == 0 && len(w.data) == 0 {
		// Resends and repeated claims only: what they wait for is durable.
		s.finish(w, nil, info, start)
		return
	}
	w.seq++
	info.Seq = w.seq
	end := start + int64(len(w.data))
	c.round = uint32(w.group[0].round)
	c.seq = s.dur.seq + 1
	c.start, c.end = uint64(start), uint64(end)
	c.dataCRC = dataCRC(w.data)
	inline := s.inline(c, len(w.data), end)
	if inline {
		c.entries = slices.Insert(c.entries, 0, jentry{kind: kindRows, rows: w.data})
	}
	w.rec = appendCommit(w.rec[:0], c)
	t := time.Now()
	err := s.write(w.data, w.rec, inline)
	w.lastCommit = time.Since(t)
	if err != nil {
		s.finish(w, err, info, end)
		return
	}
	s.mu.Lock()
	s.dur.apply(c)
	if !s.opts.Discard {
		s.disk = end
		s.jsize += int64(len(w.rec))
	}
	s.mu.Unlock()
	if batches > 0 {
		s.m.groupBatches.Observe(float64(batches))
	}
	if !s.opts.Discard {
		s.m.bytes.Add(float64(len(w.data)))
		s.m.size.Set(float64(end))
		s.m.journal.Set(float64(s.jsize))
	}
	s.finish(w, nil, info, end)
}

// inline says whether a commit of n data bytes ending at data byte end
// puts its rows in its COMMIT record and syncs the journal alone, leaving
// the bets file's write unsynced (docs/STORE.md, "One sync a commit"): a
// small commit, while the bets file's unsynced bytes stay within
// InlineBytes. Any other commit with data syncs both files, and with them
// every inline commit before it.
func (s *Store) inline(c *commit, n int, end int64) bool {
	if n == 0 || s.opts.Discard || s.opts.InlineBytes < 0 || end-s.synced > int64(s.opts.InlineBytes) {
		return false
	}
	rec := frameLen + minBody + commitFixed + 1 + rowsFixed + n
	for i := range c.entries {
		rec += entryLen(&c.entries[i])
	}
	return rec <= inlineMaxRecord
}

// finish completes the group's receipts, in order.
func (s *Store) finish(w *writer, err error, info ledger.GroupInfo, end int64) {
	for i, e := range w.group {
		r := e.rec
		if e.rows != nil { // a group failed before it was written
			s.putBuf(e.rows)
			e.rows = nil
		}
		if err == nil {
			r.Round, r.Pos, r.Stored, r.Group = e.round, e.pos, e.stored, info
			if e.kind == opClose {
				r.Pos, r.Stored = end, int(s.dur.rounds[e.round-1].Bets)
			}
		}
		r.Complete(err)
		w.group[i] = nil
	}
}

// write appends a group's data and its COMMIT record and makes both
// durable, syncing the two files at once (SerialSync: one after the
// other), or the journal alone when the record holds the rows (inline).
// A group too large to keep zeros ahead of goes to the bets file past the
// page cache where the file allows it (fsys.DirectWriter): it is written
// once and read back only at a restart or the draw, and copying it into
// fresh page-cache pages cost the throughput central a quarter of its CPU
// (docs/BENCHMARKS.md). Such a write waits for the device, so it runs
// beside the journal's write and sync, not before them: a crash may then
// leave the record durable without its data, as a crash between the two
// syncs may, and recovery drops such a last commit (docs/STORE.md). On
// failure it rolls the commit back and fails the store.
func (s *Store) write(data, rec []byte, inline bool) error {
	if s.opts.Discard {
		return nil
	}
	prevD, prevJ := s.disk, s.jsize
	dw, direct := s.data.(fsys.DirectWriter)
	direct = direct && len(data) > preallocMaxWrite && !inline && !s.opts.SerialSync
	if len(data) > 0 && !direct {
		if _, err := s.data.WriteAt(data, prevD); err != nil {
			return s.rollback(fmt.Errorf("write the bets file: %w", err), prevD, prevJ, false)
		}
		if err := s.ahead(s.data, &s.dataCap, prevD+int64(len(data)), len(data)); err != nil {
			return s.rollback(fmt.Errorf("write zeros ahead of the bets file's end: %w", err), prevD, prevJ, false)
		}
	}
	if _, err := s.journal.WriteAt(rec, prevJ); err != nil {
		return s.rollback(fmt.Errorf("write the journal: %w", err), prevD, prevJ, true)
	}
	if err := s.ahead(s.journal, &s.journalCap, prevJ+int64(len(rec)), len(rec)); err != nil {
		return s.rollback(fmt.Errorf("write zeros ahead of the journal's end: %w", err), prevD, prevJ, true)
	}
	t := time.Now()
	var werr, derr, jerr error
	switch {
	case len(data) == 0 || inline:
		jerr = s.sync(s.journal)
	case s.opts.SerialSync:
		if derr = s.sync(s.data); derr == nil {
			jerr = s.sync(s.journal)
		}
	case direct:
		s.syncReq <- s.journal
		if _, werr = dw.WriteDirectAt(data, prevD); werr == nil {
			derr = s.sync(s.data)
		}
		jerr = <-s.syncRes
	default:
		s.syncReq <- s.journal
		derr = s.sync(s.data)
		jerr = <-s.syncRes
	}
	took := time.Since(t)
	switch {
	case werr != nil:
		return s.rollback(fmt.Errorf("write the bets file: %w", werr), prevD, prevJ, true)
	case derr != nil:
		return s.rollback(fmt.Errorf("fsync the bets file: %w", derr), prevD, prevJ, true)
	case jerr != nil:
		return s.rollback(fmt.Errorf("fsync the journal: %w", jerr), prevD, prevJ, true)
	}
	if len(data) > 0 && !inline {
		s.synced = prevD + int64(len(data))
		s.dataCap = max(s.dataCap, s.synced) // ahead did not see a direct write
	}
	if direct && !s.directOffSaid {
		if why := dw.DirectOff(); why != nil {
			s.directOffSaid = true
			s.log.Warn("store: direct writes are off: large commit groups go through the page cache from now on, at a cost in CPU",
				"path", s.path, "err", why)
		}
	}
	s.m.fsync.Observe(took.Seconds())
	s.logSlow(took, len(data))
	return nil
}

// ahead keeps a file zeroed ahead of its end, so that the commits after
// this one overwrite bytes already on disk: a sync of an overwrite writes
// the data and no new file size, which on ext4 is one journal commit of
// the file system fewer (BenchmarkDiskSync: two small appends synced in
// parallel 455 µs, two overwrites 300-330 µs, 2026-12-07). end is where
// the file's data now ends, n what this commit wrote to it; *capacity is
// how far the file reaches, zeros included. When fewer than n bytes of
// zeros are left, it writes more, an eighth of the file's size between
// preallocMin and preallocBytes (a small store stays small), not synced:
// the commit's own sync carries them. A commit larger than
// preallocMaxWrite is appended as before: its sync is its data's, and
// zeroing ahead would write it twice. A disk without room for the zeros
// is not a failure: the zeros that did fit are cut off again (the room is
// the commits' own bytes'), and the writer zeroes ahead no more this run,
// so the store fails when a commit's own bytes find no room, as it did
// without zeros (TestNearlyFullDisk). Any other failed write of zeros
// fails the commit like a failed write of its data: it is the disk's.
//
// Nothing reads the zeros: the writer's next commit starts at the data's
// end, Scan stops at the durable size, Close cuts them off, and recovery
// cuts them (docs/STORE.md, "Zeros ahead of the end").
func (s *Store) ahead(f fsys.File, capacity *int64, end int64, n int) error {
	if *capacity < end {
		*capacity = end
	}
	if n > preallocMaxWrite || *capacity-end >= int64(n) || s.aheadNoRoom {
		return nil
	}
	ahead := min(preallocBytes, max(preallocMin, end/8))
	if int64(len(s.zeros)) < ahead {
		s.zeros = make([]byte, ahead)
	}
	from := *capacity
	k, err := f.WriteAt(s.zeros[:end+ahead-from], from)
	*capacity += int64(k)
	if errors.Is(err, syscall.ENOSPC) {
		// Give back what the zeros took: the next commits' own bytes
		// (the other file's too) need it more.
		if k > 0 {
			if err := f.Truncate(from); err != nil {
				return err
			}
			*capacity = from
		}
		s.aheadNoRoom = true
		s.log.Warn("store: the disk has no room for the zeros kept ahead of the files' ends: commits go on without them until the disk is full", "path", s.path)
		return nil
	}
	return err
}

// rollback undoes a commit that failed: it cuts the journal and the bets
// file back to their sizes before it and syncs the journal, so that the
// commit is certainly not in the journal. The store fails for good (no
// sync of the failed commit is ever retried). The error returned for the
// group wraps ledger.ErrFailed when the rollback worked ("not stored"),
// ledger.ErrOutcomeUnknown when it did not.
func (s *Store) rollback(cause error, prevD, prevJ int64, journalWritten bool) error {
	rolledBack := true
	if journalWritten {
		if err := s.journal.Truncate(prevJ); err != nil {
			rolledBack = false
			s.log.Error("store rollback: cannot cut the journal back", "path", s.path, "err", err)
		} else if err := s.sync(s.journal); err != nil {
			rolledBack = false
			s.log.Error("store rollback: cannot sync the journal", "path", s.path, "err", err)
		}
	}
	if err := s.data.Truncate(prevD); err != nil {
		// Not needed for the outcome: what the journal does not commit,
		// recovery moves aside.
		s.log.Error("store rollback: cannot cut the bets file back", "path", s.path, "err", err)
	}
	s.dataCap, s.journalCap = prevD, prevJ
	s.mu.Lock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w; restart the central once the cause is fixed (recovery then tells what is stored)", ledger.ErrFailed, cause)
	}
	failed := s.failed
	s.space.Broadcast()
	s.mu.Unlock()
	s.m.failed.Set(1)
	s.log.Error("store failed: it takes nothing more", "path", s.path, "err", cause, "rolled_back", rolledBack)
	if !rolledBack {
		return fmt.Errorf("%w: %w", ledger.ErrOutcomeUnknown, cause)
	}
	return failed
}
