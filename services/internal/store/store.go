// Package store keeps the bets durably in the seed's CSV format.
//
// One writer goroutine owns the file and commits in groups: it takes every
// batch queued since its last write, appends them with one write, fsyncs,
// and only then completes each batch's Pending, so a success ack always
// means the bets are on disk and one fsync serves many agencies under load.
//
// Where the last whole group ends is kept apart from the CSV, in a small
// commit log of checksummed byte offsets (<path>.commits) appended and
// fsynced after each group's data. On Open, the CSV is cut back to the last
// committed offset, so a crash at any instant leaves neither a torn row nor
// half a batch visible.
package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is returned for batches submitted after Close.
var ErrClosed = errors.New("store is closed")

// Options tune a Store. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxGroupBytes bounds one group commit's write (default 4 MiB).
	MaxGroupBytes int
	// QueueLen is how many batches may wait for the writer (default 4096).
	QueueLen int
	// SlowSync logs fsyncs slower than this (default 1s).
	SlowSync time.Duration
	// Discard acknowledges batches without writing them: the file stays
	// as it was opened. Only for measuring what storage costs (the load
	// tool's --no-store); a central never runs so.
	Discard bool
}

// GroupInfo describes the group commit a batch joined.
type GroupInfo struct {
	Seq     uint64 // group number since Open, from 1
	Batches int    // batches made durable together
	Bytes   int    // bytes written for the whole group
}

// Pending is a submitted batch; Wait returns once it is durable or failed.
type Pending struct {
	rows   []byte
	bets   int
	flush  bool
	done   chan struct{}
	err    error
	group  GroupInfo
	offset int64
}

// Wait blocks until the batch is on disk (nil) or failed, or ctx ends. The
// batch stays queued if ctx ends first; it may still be committed.
func (p *Pending) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the batch is durable or failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err is the outcome once Done is closed.
func (p *Pending) Err() error { return p.err }

// Group tells which group commit made the batch durable (valid after Done).
func (p *Pending) Group() GroupInfo { return p.group }

// Offset is where the batch's rows start in the bets file (valid after
// Done without error): batches stored later have larger offsets.
func (p *Pending) Offset() int64 { return p.offset }

// Store is the durable bets file.
type Store struct {
	path    string
	data    *os.File
	commits *os.File
	log     *slog.Logger
	m       *metrics
	opts    Options

	reqs chan *Pending

	// closeMu orders sends on reqs before Close closes it: senders hold it
	// shared (and may block while the queue is full), Close exclusively.
	// The writer never takes it, so a full queue always drains.
	closeMu sync.RWMutex
	closed  bool

	mu        sync.Mutex // guards size and writerErr
	size      int64      // committed bytes
	writerErr error

	stopped chan struct{}
}

// Open opens (creating if needed) the bets file at path, recovers it to its
// last committed group, and starts the writer.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = 4 << 20
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 4096
	}
	if opts.SlowSync <= 0 {
		opts.SlowSync = time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create the store's directory: %w", err)
		}
	}
	data, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the bets file: %w", err)
	}
	s := &Store{
		path:    path,
		data:    data,
		log:     opts.Logger,
		m:       newMetrics(opts.Registerer),
		opts:    opts,
		reqs:    make(chan *Pending, opts.QueueLen),
		stopped: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		data.Close()
		if s.commits != nil {
			s.commits.Close()
		}
		return nil, err
	}
	s.m.size.Set(float64(s.size))
	go s.writer()
	return s, nil
}

// CommitsPath is the commit log kept beside the bets file at path.
func CommitsPath(path string) string { return path + ".commits" }

const recordLen = 12 // offset (8 bytes LE) + CRC-32C of those 8 bytes

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func putRecord(b []byte, off int64) {
	binary.LittleEndian.PutUint64(b[0:8], uint64(off))
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], castagnoli))
}

// lastRecord finds the last whole, checksummed record in a commit log.
func lastRecord(log []byte) (int64, bool) {
	for end := len(log) - len(log)%recordLen; end >= recordLen; end -= recordLen {
		r := log[end-recordLen : end]
		if binary.LittleEndian.Uint32(r[8:12]) == crc32.Checksum(r[0:8], castagnoli) {
			return int64(binary.LittleEndian.Uint64(r[0:8])), true
		}
	}
	return 0, false
}

func (s *Store) recover() error {
	st, err := s.data.Stat()
	if err != nil {
		return fmt.Errorf("stat the bets file: %w", err)
	}
	fileSize := st.Size()
	cpath := CommitsPath(s.path)
	log, err := os.ReadFile(cpath)
	var committed int64
	switch {
	case err == nil:
		off, ok := lastRecord(log)
		if !ok && fileSize > 0 {
			// Open always leaves a whole record behind (written aside,
			// then renamed), so this log was damaged outside loteria.
			// Cutting the bets file to nothing would lose acknowledged
			// bets: refuse, and let a person decide.
			return fmt.Errorf("commit log %s has no valid record but %s holds %d bytes: restore the log, or remove it to keep every whole line of the bets file", cpath, s.path, fileSize)
		}
		committed = off
		if committed > fileSize {
			return fmt.Errorf("bets file %s holds %d bytes but its commit log says %d were committed: the file was cut outside loteria", s.path, fileSize, committed)
		}
	case errors.Is(err, os.ErrNotExist):
		// A bets file without a commit log was written by someone else
		// (the seed, a copy): keep its whole lines.
		committed, err = lastNewline(s.data, fileSize)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("read the commit log: %w", err)
	}
	if committed != fileSize {
		s.log.Warn("store recovered: dropping bytes past the last committed group",
			"path", s.path, "committed_bytes", committed, "dropped_bytes", fileSize-committed)
		if err := s.data.Truncate(committed); err != nil {
			return fmt.Errorf("cut the bets file back to its last commit: %w", err)
		}
		if err := s.data.Sync(); err != nil {
			return fmt.Errorf("sync the bets file: %w", err)
		}
	}
	if _, err := s.data.Seek(committed, io.SeekStart); err != nil {
		return fmt.Errorf("seek the bets file: %w", err)
	}
	s.size = committed
	// Compact the commit log to one record, atomically.
	tmp := cpath + ".tmp"
	var rec [recordLen]byte
	putRecord(rec[:], committed)
	if err := writeFileSync(tmp, rec[:]); err != nil {
		return fmt.Errorf("write the commit log: %w", err)
	}
	if err := os.Rename(tmp, cpath); err != nil {
		return fmt.Errorf("replace the commit log: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	s.commits, err = os.OpenFile(cpath, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the commit log: %w", err)
	}
	s.log.Info("store opened", "path", s.path, "bytes", committed)
	return nil
}

func lastNewline(f *os.File, size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read the bets file: %w", err)
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open the store's directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync the store's directory: %w", err)
	}
	return nil
}

// Submit queues rows (whole CSV rows, as AppendRow writes them) holding bets
// bets, to be written as one unit. The caller must not touch rows until the
// Pending is done. It blocks only while the queue is full.
func (s *Store) Submit(rows []byte, bets int) (*Pending, error) {
	p := &Pending{rows: rows, bets: bets, done: make(chan struct{})}
	if err := s.enqueue(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Append submits rows and waits for them to be durable.
func (s *Store) Append(ctx context.Context, rows []byte, bets int) error {
	p, err := s.Submit(rows, bets)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Flush waits until every batch submitted before it is durable.
func (s *Store) Flush(ctx context.Context) error {
	p := &Pending{flush: true, done: make(chan struct{})}
	if err := s.enqueue(p); err != nil {
		return err
	}
	return p.Wait(ctx)
}

func (s *Store) enqueue(p *Pending) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.mu.Lock()
	failed := s.writerErr
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	s.reqs <- p
	return nil
}

// Size is the number of committed bytes in the bets file.
func (s *Store) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Path is the bets file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) writer() {
	defer close(s.stopped)
	var (
		group []*Pending
		buf   []byte
		seq   uint64
	)
	// pos is where the next batch's rows go: the file's size, except that
	// in Discard mode it counts what would have been written, so offsets
	// still order batches.
	s.mu.Lock()
	pos := s.size
	s.mu.Unlock()
	for first := range s.reqs {
		group = append(group[:0], first)
		buf = append(buf[:0], first.rows...)
	drain:
		for len(buf) < s.opts.MaxGroupBytes {
			select {
			case p, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, p)
				buf = append(buf, p.rows...)
			default:
				break drain
			}
		}
		seq++
		for _, p := range group {
			p.offset = pos
			pos += int64(len(p.rows))
		}
		err := s.commit(buf)
		info := GroupInfo{Seq: seq, Batches: 0, Bytes: len(buf)}
		for _, p := range group {
			if !p.flush {
				info.Batches++
			}
		}
		if err != nil {
			s.mu.Lock()
			if s.writerErr == nil {
				s.writerErr = fmt.Errorf("store failed earlier, restart the central: %w", err)
			}
			s.mu.Unlock()
			s.log.Error("group commit failed", "err", err, "batches", info.Batches)
		}
		if info.Batches > 0 {
			s.m.groupBatches.Observe(float64(info.Batches))
		}
		for i, p := range group {
			p.err, p.group = err, info
			close(p.done)
			group[i] = nil
		}
		if cap(buf) > 4*s.opts.MaxGroupBytes {
			buf = nil // one huge batch must not pin memory forever
		}
	}
}

// commit writes one group and makes it durable: data, fsync, commit
// record, fsync. A failed group is cut back off the file.
func (s *Store) commit(buf []byte) error {
	if len(buf) == 0 || s.opts.Discard {
		return nil
	}
	s.mu.Lock()
	failed := s.writerErr
	off := s.size
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	if _, err := s.data.Write(buf); err != nil {
		s.data.Truncate(off)
		s.data.Seek(off, io.SeekStart)
		return fmt.Errorf("write the bets file: %w", err)
	}
	start := time.Now()
	if err := datasync(s.data); err != nil {
		return fmt.Errorf("fsync the bets file: %w", err)
	}
	end := off + int64(len(buf))
	var rec [recordLen]byte
	putRecord(rec[:], end)
	if _, err := s.commits.Write(rec[:]); err != nil {
		return fmt.Errorf("write the commit log: %w", err)
	}
	if err := datasync(s.commits); err != nil {
		return fmt.Errorf("fsync the commit log: %w", err)
	}
	took := time.Since(start)
	s.m.fsync.Observe(took.Seconds())
	if took > s.opts.SlowSync {
		s.log.Warn("slow fsync", "took", took, "bytes", len(buf))
	}
	s.m.bytes.Add(float64(len(buf)))
	s.m.size.Set(float64(end))
	s.mu.Lock()
	s.size = end
	s.mu.Unlock()
	return nil
}

// Close stops taking batches, lets the writer commit everything queued,
// and closes the files. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		<-s.stopped
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.closeMu.Unlock()
	<-s.stopped
	err := errors.Join(s.data.Sync(), s.data.Close(), s.commits.Close())
	if err != nil {
		return fmt.Errorf("close the store: %w", err)
	}
	s.log.Info("store closed", "path", s.path, "bytes", s.size)
	return nil
}

// Scan calls fn for every committed row, in stored order, with the fields
// the draw needs. document points into a buffer reused between calls.
func (s *Store) Scan(fn func(agency int, document []byte, number int) error) error {
	size := s.Size()
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open the bets file to read it: %w", err)
	}
	defer f.Close()
	return ScanRows(io.NewSectionReader(f, 0, size), fn)
}

// ScanRows reads bets rows as AppendRow writes them. Names never hold a
// comma or newline (validation refuses them), so a row is one line whose
// first field is the agency and whose last three are document, birthdate
// and number.
func ScanRows(r io.Reader, fn func(agency int, document []byte, number int) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for line := 1; ; line++ {
		row, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("bets file row %d is longer than %d bytes", line, br.Size())
		}
		if len(row) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the bets file: %w", err)
		}
		agency, doc, number, ok := splitRow(row)
		if !ok {
			return fmt.Errorf("bets file row %d is not agency,first_name,last_name,document,birthdate,number", line)
		}
		if err := fn(agency, doc, number); err != nil {
			return err
		}
	}
}

func splitRow(row []byte) (agency int, doc []byte, number int, ok bool) {
	n := len(row)
	if n > 0 && row[n-1] == '\n' {
		n--
	}
	if n > 0 && row[n-1] == '\r' {
		n--
	}
	row = row[:n]
	var f [3][]byte // number, birthdate, document, from the end
	end := len(row)
	for i := 0; i < 3; i++ {
		j := lastComma(row[:end])
		if j < 0 {
			return 0, nil, 0, false
		}
		f[i] = row[j+1 : end]
		end = j
	}
	c := firstComma(row[:end])
	if c < 0 {
		return 0, nil, 0, false
	}
	a, err := strconv.Atoi(string(row[:c]))
	if err != nil {
		return 0, nil, 0, false
	}
	num, err := strconv.Atoi(string(f[0]))
	if err != nil {
		return 0, nil, 0, false
	}
	return a, f[2], num, true
}

func lastComma(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return i
		}
	}
	return -1
}

func firstComma(b []byte) int {
	for i, c := range b {
		if c == ',' {
			return i
		}
	}
	return -1
}
