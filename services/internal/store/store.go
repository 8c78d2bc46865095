// Package store is the central's durable ledger: the bets file, in the
// seed's CSV format, and beside it a journal of what happened to them
// (each agency's mark, ENDs, round cuts, draws). It implements
// ledger.Ledger; docs/STORE.md is the specification of its files and of
// recovery.
//
// One writer goroutine commits in groups: it takes everything queued,
// appends the group's rows to the bets file with one write and one COMMIT
// record to the journal with one write, syncs both files in parallel, and
// only then completes the group's receipts, in order. A COMMIT carries the
// checksum of its data, so after a crash recovery can tell whether the
// data of the last commit reached the disk.
//
// Every file operation goes through fsys.FS, so tests run the store over
// faultfs, which fails chosen calls and simulates power loss.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// ErrClosed is ledger.ErrClosed.
var ErrClosed = ledger.ErrClosed

// Options tune a Store. The zero value is usable.
type Options struct {
	// FS is the file layer; nil is the real file system.
	FS fsys.FS
	// Logger receives the store's events; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxGroupBytes bounds one group commit's data (default 4 MiB). It
	// also bounds one batch's rows, and what recovery quarantines.
	MaxGroupBytes int
	// QueueLen is how many entries may wait for the writer before
	// callers block (default 4096).
	QueueLen int
	// SlowSync logs syncs slower than this, at most once per interval
	// (default 1s).
	SlowSync time.Duration
	// Discard acknowledges without writing: the files stay as they were
	// opened. Only for measuring what storage costs (the load tool's
	// --no-store); a central never runs so.
	Discard bool
	// SerialSync syncs the bets file, then the journal, instead of both
	// at once. Only for measuring what the parallel syncs save.
	SerialSync bool
	// InlineBytes bounds how many bytes of the bets file commits may
	// leave unsynced, their rows being in their journal records (default
	// 1 MiB, at most 16 MiB; negative: none, every commit with rows syncs
	// both files). docs/STORE.md, "One sync a commit".
	InlineBytes int
}

// DefaultMaxGroupBytes is MaxGroupBytes when it is not set: the most one
// batch's rows may hold, so a frame larger than it can never be stored.
const DefaultMaxGroupBytes = 4 << 20

const (
	// preallocMin and preallocBytes bound how much the writer zeroes
	// ahead of a file's end at a time (ahead), and preallocMaxWrite is the
	// largest commit it does so for.
	preallocMin      = 4 << 10
	preallocBytes    = 1 << 20
	preallocMaxWrite = 64 << 10

	defaultQueueLen = 4096
	// defaultInlineBytes is InlineBytes when it is not set, maxInlineBytes
	// the most it may be: recovery refuses a journal whose commits since
	// the last sync of the bets file hold more rows than that.
	defaultInlineBytes = 1 << 20
	maxInlineBytes     = 16 << 20
	// inlineMaxRecord is the largest COMMIT record that holds its rows: a
	// larger commit syncs both files (its own data is most of the sync).
	inlineMaxRecord = preallocMaxWrite
	// maxBatchBets bounds one batch, so that a group's counts fit the
	// journal's u32 fields.
	maxBatchBets = 1 << 20
	// maxGroupCount bounds the bets (stored plus refused) one commit
	// counts, for the same reason.
	maxGroupCount = 1 << 31
)

// Store is the file ledger. Its methods are safe for concurrent use.
type Store struct {
	path string
	fs   fsys.FS
	opts Options
	log  *slog.Logger
	slow *observability.Limiter
	m    *metrics

	lock, data, journal fsys.File
	recovered           *ledger.Recovery
	quarantined         string
	quarantinedBytes    int64
	// rewritten: bytes of inline commits' rows recovery wrote into the
	// bets file from the journal, of rewrittenCommits commits, all within
	// the data bytes [rewroteFrom, rewroteTo).
	rewritten              int64
	rewrittenCommits       int
	rewroteFrom, rewroteTo int64

	mu            sync.Mutex
	work          sync.Cond // the writer waits here for entries
	space         sync.Cond // callers wait here while the queue is full
	queue         []*entry
	queuedBatches int // entries in queue with batch set
	// gatherWait is how long the writer waits to gather a group, given
	// the last commit's time (gatherFor; tests lengthen it).
	gatherWait func(lastCommit time.Duration) time.Duration
	// gathering, if set (by tests), is called as a gather starts waiting.
	gathering func(want int)
	closing   bool
	failed    error // sticky, wraps ledger.ErrFailed
	adm       map[int]*admitted
	round     int          // the open round as queued (admitted)
	drawn     map[int]bool // rounds whose DRAW is queued or durable
	dur       *state       // what is durable; written by the writer only
	disk      int64        // bytes really in the bets file (Discard: as opened)
	synced    int64        // bytes of the bets file synced; the rest is in inline commits' records
	jsize     int64        // bytes in the journal

	// The files' lengths with the zeros the writer keeps ahead of their
	// ends (ahead); written by the writer only, and by Open before it.
	dataCap, journalCap int64
	zeros               []byte // zeros for ahead, grown as it needs
	aheadNoRoom         bool   // the disk had no room for zeros: ahead stopped
	// The log has said that the bets file's large groups go through the
	// page cache, its file system refusing direct writes (the writer's).
	directOffSaid bool

	bufs bufPools // *[]byte row buffers of batches

	syncReq chan fsys.File
	syncRes chan error
	stopped chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// admitted is an agency's state as queued: what the next entries build on.
type admitted struct {
	mark int64
	fp   string
}

var _ ledger.Ledger = (*Store)(nil)

// Open takes the store at path (the bets file; the journal and lock file
// sit beside it), recovers it as docs/STORE.md says, and starts the
// writer. A store held by someone else fails with *LockedError; one that
// recovery cannot repair without guessing, with *RecoveryError, and no
// store file changed in either case.
func Open(path string, opts Options) (*Store, error) {
	t0 := time.Now()
	if opts.FS == nil {
		opts.FS = fsys.OS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = DefaultMaxGroupBytes
	}
	opts.MaxGroupBytes = min(opts.MaxGroupBytes, math.MaxUint32)
	if opts.QueueLen <= 0 {
		opts.QueueLen = defaultQueueLen
	}
	if opts.InlineBytes == 0 {
		opts.InlineBytes = defaultInlineBytes
	}
	opts.InlineBytes = min(opts.InlineBytes, maxInlineBytes)
	if opts.SlowSync <= 0 {
		opts.SlowSync = time.Second
	}
	s := &Store{
		path:    path,
		fs:      opts.FS,
		opts:    opts,
		log:     opts.Logger,
		slow:    observability.NewLimiter(opts.Logger, 10*time.Second, nil),
		adm:     map[int]*admitted{},
		drawn:   map[int]bool{},
		syncReq: make(chan fsys.File),
		syncRes: make(chan error),
		stopped: make(chan struct{}),

		gatherWait: gatherFor,
	}
	s.work.L, s.space.L = &s.mu, &s.mu
	if noFsync {
		s.log.Warn("THIS BINARY NEVER SYNCS: built with -tags loteria_nofsync, for measurement only; a power cut loses acknowledged bets", "path", path)
	}
	if err := notADirectory(s.fs, path); err != nil {
		return nil, err
	}
	if err := s.fs.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, fmt.Errorf("store %s: create its directory: %w", path, err)
	}
	lock, err := s.fs.Lock(lockPath(path), fileMode)
	if errors.Is(err, fsys.ErrLocked) {
		return nil, &LockedError{Path: path, LockPath: lockPath(path), Pid: readPid(s.fs, lockPath(path))}
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: take its lock %s: %w", path, lockPath(path), err)
	}
	s.lock = lock
	if err := s.recover(t0); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.m = newMetrics(opts.Registerer)
	s.m.size.Set(float64(s.dur.size))
	s.m.journal.Set(float64(s.jsize))
	s.m.quarantined.Set(float64(s.quarantinedBytes))
	took := time.Since(t0)
	s.m.recovery.Set(took.Seconds())
	s.log.Info("store opened", "path", path, "bytes", s.dur.size, "bets", s.dur.bets,
		"round", s.dur.round, "commits", s.dur.seq, "agencies", len(s.dur.agencies), "took", took)
	go s.syncer()
	go s.writer()
	return s, nil
}

// recover runs recovery with the lock held: analyse, then apply.
func (s *Store) recover(now time.Time) error {
	pid := []byte("pid " + strconv.Itoa(os.Getpid()) + "\n")
	if err := s.lock.Truncate(0); err != nil {
		return fmt.Errorf("store %s: write its lock file: %w", s.path, err)
	}
	if _, err := s.lock.WriteAt(pid, 0); err != nil {
		return fmt.Errorf("store %s: write its lock file: %w", s.path, err)
	}
	p, err := analyse(s.fs, s.path)
	if err != nil {
		return err
	}
	s.dur = p.st
	if p.torn > 0 {
		s.log.Warn("store recovery: cutting the journal's torn last record", "path", s.path, "bytes", p.torn)
	}
	if p.dropped != 0 {
		s.log.Warn("store recovery: dropping the last commit, whose data did not reach the disk (it was never acknowledged)",
			"path", s.path, "commit", p.dropped, "why", p.droppedWhy)
	}
	if err := s.applyPlan(p, now); err != nil {
		return err
	}
	if s.quarantinedBytes > 0 {
		s.log.Warn("store recovery: moved unacknowledged bytes past the last commit aside",
			"path", s.path, "quarantine", s.quarantined, "bytes", s.quarantinedBytes)
	}
	if s.disk, err = s.data.Size(); err != nil {
		return fmt.Errorf("store %s: look at the bets file: %w", s.path, err)
	}
	if s.disk != s.dur.size {
		return fmt.Errorf("store %s: the bets file holds %d bytes after recovery, its journal %d", s.path, s.disk, s.dur.size)
	}
	s.dataCap, s.journalCap = s.disk, s.jsize
	s.synced = s.disk
	s.recovered = s.dur.recovery()
	s.recovered.Quarantined, s.recovered.QuarantinedBytes = s.quarantined, s.quarantinedBytes
	s.round = s.dur.round
	for a, st := range s.dur.agencies {
		s.adm[a] = &admitted{mark: st.Mark, fp: st.Fingerprint}
	}
	for _, r := range s.dur.rounds {
		if r.Draw != nil {
			s.drawn[r.Round] = true
		}
	}
	return nil
}

func (s *Store) sync(f fsys.File) error {
	if noFsync {
		return nil
	}
	return f.Sync()
}

func (s *Store) syncDir(dir string) error {
	if noFsync {
		return nil
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("store %s: sync its directory: %w", s.path, err)
	}
	return nil
}

// Path is the bets file's path.
func (s *Store) Path() string { return s.path }

// Recovered implements ledger.Ledger.
func (s *Store) Recovered() *ledger.Recovery { return s.recovered }

// Agency implements ledger.Ledger: the durable state.
func (s *Store) Agency(agency int) ledger.AgencyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.dur.agencies[agency]; a != nil {
		return *a
	}
	return ledger.AgencyState{}
}

// Failed implements ledger.Ledger.
func (s *Store) Failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Size is the durable size of the bets file.
func (s *Store) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dur.size
}

// usable is nil while entries may be queued. s.mu is held.
func (s *Store) usable() error {
	switch {
	case s.failed != nil:
		return s.failed
	case s.closing:
		return ledger.ErrClosed
	}
	return nil
}

// waitRoom waits until the queue has room (or the store cannot take
// entries), then says whether it can. s.mu is held.
func (s *Store) waitRoom() error {
	for len(s.queue) >= s.opts.QueueLen && s.failed == nil && !s.closing {
		s.space.Wait()
	}
	return s.usable()
}

func (s *Store) push(e *entry) {
	e.round = s.round
	s.queue = append(s.queue, e)
	if e.batch {
		s.queuedBatches++
	}
	s.work.Signal()
}

func (s *Store) admitted(agency int) *admitted {
	a := s.adm[agency]
	if a == nil {
		a = &admitted{}
		s.adm[agency] = a
	}
	return a
}

func checkAgency(agency int, zero bool) error {
	if agency < 0 || agency > math.MaxUint32 || (agency == 0 && !zero) {
		return fmt.Errorf("agency %d is out of range", agency)
	}
	return nil
}

// Claim implements ledger.Ledger. A fingerprint is 1..255 bytes.
func (s *Store) Claim(agency int, fingerprint string) (*ledger.Receipt, error) {
	if err := checkAgency(agency, false); err != nil {
		return nil, err
	}
	if len(fingerprint) == 0 || len(fingerprint) > maxFingerprint {
		return nil, fmt.Errorf("agency %d: a stream fingerprint is 1 to %d bytes, got %d", agency, maxFingerprint, len(fingerprint))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(); err != nil {
		return nil, err
	}
	a := s.admitted(agency)
	e := &entry{kind: opNoop, agency: agency, rec: ledger.NewReceipt()}
	switch a.fp {
	case fingerprint:
	case "":
		a.fp = fingerprint
		e.kind, e.fp = opClaim, fingerprint
	default:
		return nil, fmt.Errorf("agency %d: %w", agency, ledger.ErrFingerprint)
	}
	s.push(e)
	return e.rec, nil
}

// End implements ledger.Ledger.
func (s *Store) End(agency int) (*ledger.Receipt, error) {
	if err := checkAgency(agency, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(); err != nil {
		return nil, err
	}
	e := &entry{kind: opEnd, agency: agency, rec: ledger.NewReceipt()}
	if agency != 0 {
		e.mark = s.admitted(agency).mark
	}
	s.push(e)
	return e.rec, nil
}

// CloseRound implements ledger.Ledger.
func (s *Store) CloseRound(reason ledger.CloseReason) (*ledger.Receipt, error) {
	if reason < ledger.CloseBarrier || reason > ledger.CloseTimeout {
		return nil, fmt.Errorf("close round: unknown reason %d", uint8(reason))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(); err != nil {
		return nil, err
	}
	e := &entry{kind: opClose, reason: reason, rec: ledger.NewReceipt()}
	s.push(e)
	s.round++
	return e.rec, nil
}

// RecordDraw implements ledger.Ledger: d.Round must be closed (as queued)
// and not drawn yet; the digest is a WinnersDigest (32 bytes).
func (s *Store) RecordDraw(d ledger.Draw) (*ledger.Receipt, error) {
	switch {
	case d.Number < 0 || d.Number > math.MaxUint16:
		return nil, fmt.Errorf("draw of round %d: number %d out of range", d.Round, d.Number)
	case d.Bets < 0 || d.Winners < 0 || d.Winners > math.MaxUint32:
		return nil, fmt.Errorf("draw of round %d: negative or too large counts", d.Round)
	case len(d.Digest) != digestLen:
		return nil, fmt.Errorf("draw of round %d: digest of %d bytes, want %d", d.Round, len(d.Digest), digestLen)
	}
	d.Digest = append([]byte(nil), d.Digest...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(); err != nil {
		return nil, err
	}
	if d.Round < 1 || d.Round >= s.round {
		return nil, fmt.Errorf("draw of round %d: only a closed round is drawn (round %d is open)", d.Round, s.round)
	}
	if s.drawn[d.Round] {
		return nil, fmt.Errorf("draw of round %d: the round is already drawn", d.Round)
	}
	s.drawn[d.Round] = true
	e := &entry{kind: opDraw, draw: d, rec: ledger.NewReceipt()}
	s.push(e)
	return e.rec, nil
}

// Scan implements ledger.Ledger.
func (s *Store) Scan(round int, fn func(agency int, document []byte, number int) error) error {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	var start, end int64
	switch {
	case round >= 1 && round <= len(s.dur.rounds):
		r := s.dur.rounds[round-1]
		start, end = r.Start, r.Cut
	case round == s.dur.round:
		start, end = s.dur.roundStart, s.dur.size
	default:
		open := s.dur.round
		s.mu.Unlock()
		return fmt.Errorf("scan round %d: no such round (round %d is open)", round, open)
	}
	end = min(end, s.disk)
	s.mu.Unlock()
	if end <= start {
		return nil
	}
	f, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("scan round %d: open the bets file: %w", round, err)
	}
	defer f.Close()
	return ScanRows(io.NewSectionReader(f, start, end-start), fn)
}

// Close implements ledger.Ledger: it lets the writer commit everything
// queued, stops it and releases the files and the lock. After a failure
// it syncs nothing and returns the failure.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.work.Broadcast()
		s.space.Broadcast()
		s.mu.Unlock()
		<-s.stopped
		close(s.syncReq)
		s.mu.Lock()
		failed := s.failed
		s.mu.Unlock()
		var err error
		if failed == nil {
			err = s.cutAhead()
		}
		err = errors.Join(err, s.closeFiles())
		switch {
		case failed != nil:
			s.closeErr = failed
			s.log.Error("store closed after a failure", "path", s.path, "err", failed)
		case err != nil:
			s.closeErr = fmt.Errorf("store %s: close: %w", s.path, err)
		default:
			s.log.Info("store closed", "path", s.path, "bytes", s.Size())
		}
	})
	return s.closeErr
}

// cutAhead cuts the zeros the writer kept ahead of the files' ends
// (ahead), so that a store closed cleanly leaves the bets file a plain
// CSV, and syncs what inline commits left unsynced of the bets file. The
// writer has stopped. Should a power cut undo a cut, recovery cuts the
// zeros again (and rewrites inline rows from the journal).
func (s *Store) cutAhead() error {
	for _, f := range []struct {
		f        fsys.File
		end, cap int64
		dirty    bool
		name     string
	}{{s.data, s.disk, s.dataCap, s.synced < s.disk, "bets file"}, {s.journal, s.jsize, s.journalCap, false, "journal"}} {
		if f.cap <= f.end && !f.dirty {
			continue
		}
		if f.cap > f.end {
			if err := f.f.Truncate(f.end); err != nil {
				return fmt.Errorf("cut the zeros past the %s's end: %w", f.name, err)
			}
		}
		if err := s.sync(f.f); err != nil {
			if f.cap > f.end {
				return fmt.Errorf("sync the %s once the zeros past its end are cut: %w", f.name, err)
			}
			return fmt.Errorf("sync the %s's inline commits at close: %w", f.name, err)
		}
	}
	s.synced = s.disk
	return nil
}

func (s *Store) closeFiles() error {
	var errs []error
	for _, f := range []fsys.File{s.data, s.journal, s.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// syncer syncs the journal while the writer syncs the bets file.
func (s *Store) syncer() {
	for f := range s.syncReq {
		s.syncRes <- s.sync(f)
	}
}

// dataCRC is the CRC-32C of a group's data (0 for none).
func dataCRC(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return crc32.Checksum(b, castagnoli)
}

// logSlow reports a slow sync, rate-limited.
func (s *Store) logSlow(took time.Duration, bytes int) {
	if took > s.opts.SlowSync {
		s.slow.Log(context.Background(), slog.LevelWarn, "slow-sync", "slow fsync",
			"path", s.path, "took", took, "bytes", bytes)
	}
}
