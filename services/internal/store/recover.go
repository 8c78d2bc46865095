package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loteria/loteria/services/internal/store/fsys"
)

// Store files beside the bets file at path.
func journalPath(path string) string { return path + ".journal" }
func lockPath(path string) string    { return path + ".lock" }
func legacyPath(path string) string  { return path + ".commits" }

// quarantinePrefix + a UTC time names the file recovery moves unaccounted
// data to.
const quarantineTime = "20060102T150405.000000000Z"

// tornSlack is how far past one group's bytes a torn write may leave a
// file: one file-system block (a tail of zeros or garbage to its end).
const tornSlack = 4096

// journalSlack is the most a journal may hold past its last whole record
// after a crash: a torn record, the zeros kept ahead of it, a torn block.
const journalSlack = frameLen + maxRecordBytes + preallocBytes + tornSlack

// File modes: bets are personal data.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// LockedError: another store (this process or another) holds the store.
type LockedError struct {
	Path     string // the bets file
	LockPath string
	Pid      int // the holder's pid, 0 when its lock file does not say
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.Pid > 0 {
		who = "pid " + strconv.Itoa(e.Pid)
	}
	return fmt.Sprintf("store %s is in use by %s (lock %s): stop that central first, or give this one another store path", e.Path, who, e.LockPath)
}

// RecoveryError: recovery found something it cannot repair without
// guessing, and refused. It changed no store file.
type RecoveryError struct {
	Path   string
	Found  string // what recovery found
	Action string // what a person can do about it
}

func (e *RecoveryError) Error() string {
	return fmt.Sprintf("store %s not opened: %s; %s (no store file was changed)", e.Path, e.Found, e.Action)
}

// plan is what recovery decided, before it changes anything.
type plan struct {
	create      bool   // no store yet: create the journal (and data file)
	st          *state // replayed up to the commit kept
	dataSize    int64  // bytes in the data file now, without the zeros at its end (0: missing)
	dataFile    int64  // bytes in the data file now, zeros included
	dataExists  bool
	journalSize int64 // bytes in the journal now, zeros included
	journalKeep int64 // journal bytes to keep (the rest: a torn tail or a dropped commit)
	dropped     uint64
	droppedWhy  string
	torn        int64 // bytes of torn journal tail
	bound       int64 // what recovery may quarantine: the last run's group bound plus tornSlack
	// The records from inlineFrom to journalKeep may hold inline commits,
	// whose rows the bets file may have lost (their writes were not
	// synced): recovery rewrites those that differ from the journal's.
	// inlineFrom follows the last checkpoint: a HEADER (the open that wrote
	// it synced the bets file) or a commit that synced the bets file and
	// was followed by another record (so its sync had finished).
	inlineFrom  int64
	inlineBytes int64 // rows of the inline commits past inlineFrom
	dataInline  bool  // the last commit with rows past inlineFrom is inline
}

// inlineCommit notes a commit for the inline rewrite, once it is known to
// be kept; after is where its record ends in the journal.
func (p *plan) inlineCommit(c *commit, after int64) error {
	switch {
	case c.inline:
		p.inlineBytes += int64(c.end - c.start)
		p.dataInline = true
		if p.inlineBytes > maxInlineBytes {
			return fmt.Errorf("its commits since the bets file was last synced hold more than %d bytes of rows, more than loteria leaves unsynced", maxInlineBytes)
		}
	case c.start < c.end:
		// It synced the bets file, and the record after it was written
		// once that sync had finished: a checkpoint.
		p.inlineFrom, p.inlineBytes, p.dataInline = after, 0, false
	}
	return nil
}

// tail is the data bytes past the kept commit: quarantined.
func (p *plan) tail() int64 { return p.dataSize - p.st.size }

// notADirectory refuses a path that names a directory, before anything is
// created: read as the bets file, a directory seemed to hold its own size
// (4096 bytes) with no journal, and its lock and journal would have gone
// inside it.
func notADirectory(fsy fsys.FS, path string) error {
	dir := path != "" && os.IsPathSeparator(path[len(path)-1])
	if !dir {
		fi, err := fsy.Stat(path)
		dir = err == nil && fi.IsDir()
	}
	if dir {
		return fmt.Errorf("store %s not opened: STORE_PATH %s is a directory: give the path of the bets file, e.g. %s",
			path, path, filepath.Join(path, "bets.csv"))
	}
	return nil
}

// analyse reads the store's files and decides what recovery must do,
// changing nothing.
func analyse(fsy fsys.FS, path string) (*plan, error) {
	refuse := func(found, action string) error {
		return &RecoveryError{Path: path, Found: found, Action: action}
	}
	base := filepath.Base(path)
	p := &plan{st: newState()}
	if fi, err := fsy.Stat(path); err == nil {
		p.dataSize, p.dataExists = fi.Size(), true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store %s: look at the bets file: %w", path, err)
	}
	jpath := journalPath(path)
	jf, err := fsy.OpenFile(jpath, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := fsy.Stat(legacyPath(path)); err == nil {
			return nil, refuse(fmt.Sprintf("it was written before the journal existed (%s.commits is there, %s.journal is not)", base, base),
				fmt.Sprintf("%s is a plain seed-format CSV that the seed's load_bets reads: to keep it, move it aside with its commit log (mv %s %s.before-journal && mv %s.commits %s.before-journal.commits) and start again with an empty store, or set STORE_PATH to another file", base, path, path, path, path))
		}
		if p.dataSize > 0 {
			return nil, refuse(fmt.Sprintf("%s holds %d bytes but there is no journal (%s.journal): it was not written by this store (the seed's server, a copy?)", base, p.dataSize, base),
				fmt.Sprintf("it stays a plain seed-format CSV: move it aside (mv %s %s.seed) to start with an empty store, or set STORE_PATH to another file", path, path))
		}
		p.create = true
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: open the journal: %w", path, err)
	}
	defer jf.Close()
	if p.journalSize, err = jf.Size(); err != nil {
		return nil, fmt.Errorf("store %s: look at the journal: %w", path, err)
	}
	aside := fmt.Sprintf("restore %s and %s.journal together from one backup, or move both aside to start with an empty store", base, base)
	var magic [len(journalMagic)]byte
	if n, _ := jf.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != journalMagic {
		return nil, refuse(fmt.Sprintf("%s.journal does not start with %q: it is not a loteria journal, or its first bytes are damaged", base, journalMagic), aside)
	}

	// Replay every whole record. The last commit is held back (pending)
	// until recovery knows whether the data confirms it.
	r := &journalReader{f: jf, size: p.journalSize, off: int64(len(journalMagic))}
	var (
		rec        record
		pending    *commit // the last COMMIT, when it is the last record
		pendingOff int64
		hold       = &commit{}
		last, prev *commit // the last two COMMITs (ranges only)
		lastBuf    = [2]commit{}
		records    int
		commits    int
		hdr        header
	)
	for {
		at := r.off
		ok, err := r.next(&rec)
		if err != nil {
			return nil, refuse(err.Error(), aside)
		}
		if !ok {
			break
		}
		records++
		if records == 1 && rec.typ != recHeader {
			return nil, refuse(fmt.Sprintf("%s.journal does not begin with a HEADER record", base), aside)
		}
		if pending != nil {
			if err := p.st.applyChecked(pending); err != nil {
				return nil, refuse(fmt.Sprintf("%s.journal is inconsistent: %v", base, err), aside)
			}
			if err := p.inlineCommit(pending, at); err != nil {
				return nil, refuse(fmt.Sprintf("%s.journal is inconsistent: %v", base, err), aside)
			}
			pending = nil
		}
		switch rec.typ {
		case recHeader:
			if err := p.st.checkHeader(&rec.header); err != nil {
				return nil, refuse(fmt.Sprintf("%s.journal record at byte %d: %v", base, at, err), aside)
			}
			hdr = rec.header
			p.inlineFrom, p.inlineBytes, p.dataInline = r.off, 0, false
		case recCommit:
			// Keep the record: it may be the last one.
			*hold, rec.commit = rec.commit, *hold
			pending, pendingOff = hold, at
			commits++
			slot := &lastBuf[commits%2]
			*slot = commit{seq: pending.seq, start: pending.start, end: pending.end, dataCRC: pending.dataCRC, inline: pending.inline}
			prev, last = last, slot
		default:
			return nil, refuse(fmt.Sprintf("%s.journal record at byte %d has unknown type %d (written by a newer loteria?)", base, at, rec.typ), aside)
		}
	}
	if records == 0 {
		return nil, refuse(fmt.Sprintf("%s.journal holds no whole record (its HEADER is missing)", base), aside)
	}
	p.bound = int64(hdr.maxGroupBytes) + tornSlack
	p.journalKeep = r.off
	if rest := p.journalSize - r.off; rest > 0 {
		// What follows the last good record is a torn last write when it
		// is no longer than one record, the zeros the writer keeps ahead
		// of the journal's end (ahead) and a torn block, and no good record
		// starts in it. Only zeros: nothing was torn.
		damaged := rest > journalSlack
		if !damaged {
			b := make([]byte, rest)
			if _, err := jf.ReadAt(b, r.off); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("store %s: read the journal: %w", path, err)
			}
			p.torn = int64(len(bytes.TrimRight(b, "\x00")))
			damaged = p.torn > 0 && laterRecord(b)
		}
		if damaged {
			return nil, refuse(fmt.Sprintf("%s.journal is damaged in the middle: the record at byte %d is unreadable but %d bytes follow it, more than a torn last write leaves", base, r.off, rest), aside)
		}
	}

	df, err := openData(fsy, path, p.dataExists)
	if err != nil {
		return nil, err
	}
	if df != nil {
		defer df.Close()
	}
	// The zeros the writer keeps ahead of the bets file's end (ahead) are
	// not data: past the last commit lie at most one group, the zeros
	// ahead of it and a torn block. Rows end in a newline, so no row
	// loses a byte.
	p.dataFile = p.dataSize
	if df != nil {
		if p.dataSize, err = zeroTail(df, p.dataFile, p.bound+preallocBytes); err != nil {
			return nil, fmt.Errorf("store %s: read the bets file: %w", path, err)
		}
	}
	if pending != nil {
		if err := p.st.check(pending); err != nil {
			return nil, refuse(fmt.Sprintf("%s.journal is inconsistent: %v", base, err), aside)
		}
		var why string
		switch {
		case pending.inline:
			// Its rows are in its record: the bets file need not hold them.
			if err := p.inlineCommit(pending, r.off); err != nil {
				return nil, refuse(fmt.Sprintf("%s.journal is inconsistent: %v", base, err), aside)
			}
		case pending.start == pending.end && p.dataInline:
			// No rows, after an inline commit's, which end a row.
		default:
			if why, err = checkData(df, p.dataSize, last); err != nil {
				return nil, fmt.Errorf("store %s: read the bets file: %w", path, err)
			}
		}
		switch {
		case why == "":
			p.st.apply(pending)
		case strings.HasPrefix(why, midRow):
			return nil, refuse(fmt.Sprintf("the journal's last commit (%d) %s", last.seq, why), aside)
		default:
			// The last commit was never acknowledged: its syncs did not
			// both finish. The one before it must hold, unless its rows
			// are in its record.
			if prev != nil && !prev.inline && !(prev.start == prev.end && p.dataInline) {
				pwhy, err := checkData(df, p.dataSize, prev)
				if err != nil {
					return nil, fmt.Errorf("store %s: read the bets file: %w", path, err)
				}
				if pwhy != "" {
					return nil, refuse(fmt.Sprintf("%s does not match the journal's last two commits (commit %d: %s; commit %d: %s): the journal and the bets file do not belong together (one of them older, or cut or changed outside loteria)", base, prev.seq, pwhy, last.seq, why), aside)
				}
			}
			p.dropped, p.droppedWhy = last.seq, why
			p.journalKeep, p.torn = pendingOff, 0
		}
	} else if last != nil {
		// The last commit was followed by a HEADER: an open accepted it,
		// so the data must still hold it.
		why, err := checkData(df, p.dataSize, last)
		if err != nil {
			return nil, fmt.Errorf("store %s: read the bets file: %w", path, err)
		}
		if why != "" {
			return nil, refuse(fmt.Sprintf("%s no longer matches the journal's last commit (%d: %s), which an earlier open had checked: the bets file was cut or changed outside loteria", base, last.seq, why), aside)
		}
	}
	if t := p.tail(); t > p.bound {
		// Past the last commit lie at most one group and a torn block: the
		// zeros kept ahead of them, which a torn write may leave between
		// the two, do not count.
		n := t
		if t <= p.bound+preallocBytes {
			if n, err = nonZero(df, p.st.size, t); err != nil {
				return nil, fmt.Errorf("store %s: read the bets file: %w", path, err)
			}
		}
		if n > p.bound {
			return nil, refuse(fmt.Sprintf("%s holds %d bytes past the journal's last commit (which ends at byte %d), more than one group commit (%d bytes) can leave behind: the journal is older than the bets file", base, n, p.st.size, p.bound), aside)
		}
	}
	return p, nil
}

func openData(fsy fsys.FS, path string, exists bool) (fsys.File, error) {
	if !exists {
		return nil, nil
	}
	f, err := fsy.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("store %s: open the bets file: %w", path, err)
	}
	return f, nil
}

const midRow = "points into the middle of a row"

// checkData says why the data does not hold commit c ("" when it does).
func checkData(f fsys.File, size int64, c *commit) (string, error) {
	start, end := int64(c.start), int64(c.end)
	if size < end {
		return fmt.Sprintf("ends at data byte %d but the bets file holds %d", end, size), nil
	}
	var b [1]byte
	if start == end {
		// A commit of no rows (an END, a claim, a draw) sits where the
		// rows before it end: past a newline, or at the file's start.
		if end > 0 {
			if _, err := f.ReadAt(b[:], end-1); err != nil {
				return "", err
			}
			if b[0] != '\n' {
				return fmt.Sprintf("%s: it holds no rows, at data byte %d, which does not end a row", midRow, end), nil
			}
		}
		return "", nil
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, start, end-start)); err != nil {
		return "", err
	}
	if h.Sum32() != c.dataCRC {
		return fmt.Sprintf("data bytes %d..%d fail its checksum", start, end), nil
	}
	if _, err := f.ReadAt(b[:], end-1); err != nil {
		return "", err
	}
	if b[0] != '\n' {
		return fmt.Sprintf("%s: its data range %d..%d checks but does not end a row", midRow, start, end), nil
	}
	if start > 0 {
		if _, err := f.ReadAt(b[:], start-1); err != nil {
			return "", err
		}
		if b[0] != '\n' {
			return fmt.Sprintf("%s: its data range %d..%d checks but does not start a row", midRow, start, end), nil
		}
	}
	return "", nil
}

// applyPlan makes the files what the plan says, and opens them for the
// writer: quarantine first (synced, directory synced), then the cuts.
func (s *Store) applyPlan(p *plan, now time.Time) error {
	path, dir := s.path, filepath.Dir(s.path)
	var err error
	if p.create {
		return s.create(now)
	}
	if s.data, err = s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode); err != nil {
		return fmt.Errorf("store %s: open the bets file: %w", path, err)
	}
	if !p.dataExists {
		if err := s.syncDir(dir); err != nil {
			return err
		}
	}
	if t := p.tail(); t > 0 {
		name := path + ".quarantine-" + now.UTC().Format(quarantineTime)
		if err := s.quarantine(name, p.st.size, t); err != nil {
			return err
		}
		s.quarantined, s.quarantinedBytes = name, t
		if err := s.data.Truncate(p.st.size); err != nil {
			return fmt.Errorf("store %s: cut the bets file back to its last commit: %w", path, err)
		}
	} else if p.dataFile > p.st.size {
		// Only zeros past the last commit: cut, not quarantined (the sync
		// below makes the cut durable, so that a store closed cleanly
		// after it leaves a plain CSV).
		if err := s.data.Truncate(p.st.size); err != nil {
			return fmt.Errorf("store %s: cut the zeros past the bets file's last commit: %w", path, err)
		}
	}
	if s.journal, err = s.fs.OpenFile(journalPath(path), os.O_RDWR, 0); err != nil {
		return fmt.Errorf("store %s: open the journal: %w", path, err)
	}
	if p.journalKeep < p.journalSize {
		if err := s.journal.Truncate(p.journalKeep); err != nil {
			return fmt.Errorf("store %s: cut the journal's torn tail: %w", path, err)
		}
	}
	s.jsize = p.journalKeep
	if p.inlineBytes > 0 {
		if err := s.rewriteInline(p); err != nil {
			return err
		}
	}
	// The bets file synced before this run's HEADER is written: a HEADER
	// is a checkpoint, everything before it is on disk.
	if err := s.sync(s.data); err != nil {
		return fmt.Errorf("store %s: sync the bets file: %w", path, err)
	}
	// This run's HEADER: the bound recovery will use for what it leaves.
	rec := appendHeader(nil, s.header(now))
	if _, err := s.journal.WriteAt(rec, s.jsize); err != nil {
		return fmt.Errorf("store %s: write the journal: %w", path, err)
	}
	if err := s.sync(s.journal); err != nil {
		return fmt.Errorf("store %s: sync the journal: %w", path, err)
	}
	s.jsize += int64(len(rec))
	return nil
}

// rewriteInline writes into the bets file the rows of the inline commits
// past the last checkpoint that it does not hold (docs/STORE.md, "One
// sync a commit"): their writes were not synced, and a power cut may have
// lost or torn them; their records, synced, hold them.
func (s *Store) rewriteInline(p *plan) error {
	r := &journalReader{f: s.journal, size: p.journalKeep, off: p.inlineFrom}
	var (
		rec   record
		have  []byte
		total int64
		count int
	)
	for r.off < p.journalKeep {
		ok, err := r.next(&rec)
		if err != nil || !ok {
			return fmt.Errorf("store %s: read the journal again to rewrite inline rows at byte %d: %w", s.path, r.off, cmp.Or(err, io.ErrUnexpectedEOF))
		}
		if rec.typ != recCommit || !rec.commit.inline {
			continue
		}
		var rows []byte
		for _, e := range rec.commit.entries {
			if e.kind == kindRows {
				rows = e.rows
			}
		}
		start := int64(rec.commit.start)
		have = slices.Grow(have[:0], len(rows))[:len(rows)]
		n, err := s.data.ReadAt(have, start)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("store %s: read the bets file: %w", s.path, err)
		}
		if n == len(rows) && string(have) == string(rows) {
			continue
		}
		if _, err := s.data.WriteAt(rows, start); err != nil {
			return fmt.Errorf("store %s: rewrite rows from the journal into the bets file: %w", s.path, err)
		}
		if count == 0 {
			s.rewroteFrom = start
		}
		s.rewroteTo = start + int64(len(rows))
		total += int64(len(rows))
		count++
	}
	if count > 0 {
		s.rewritten, s.rewrittenCommits = total, count
		s.log.Warn("store recovery: rewrote rows the bets file had lost from the journal (their writes had not reached the disk)",
			"path", s.path, "commits", count, "bytes", total)
	}
	return nil
}

func (s *Store) header(now time.Time) header {
	return header{round: uint32(s.dur.round), version: journalVersion,
		maxGroupBytes: uint32(s.opts.MaxGroupBytes), maxRecordBytes: maxRecordBytes, created: now.UnixNano()}
}

// create makes a new store: the journal is written aside and renamed into
// place once synced, so a journal under its name always has its HEADER.
func (s *Store) create(now time.Time) error {
	path, dir := s.path, filepath.Dir(s.path)
	tmp := journalPath(path) + ".tmp"
	f, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("store %s: create the journal: %w", path, err)
	}
	b := appendHeader([]byte(journalMagic), s.header(now))
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("store %s: write the journal: %w", path, err)
	}
	if err := s.sync(f); err != nil {
		f.Close()
		return fmt.Errorf("store %s: sync the journal: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store %s: close the journal: %w", path, err)
	}
	if s.data, err = s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode); err != nil {
		return fmt.Errorf("store %s: create the bets file: %w", path, err)
	}
	if err := s.fs.Rename(tmp, journalPath(path)); err != nil {
		return fmt.Errorf("store %s: put the journal in place: %w", path, err)
	}
	if err := s.syncDir(dir); err != nil {
		return err
	}
	if s.journal, err = s.fs.OpenFile(journalPath(path), os.O_RDWR, 0); err != nil {
		return fmt.Errorf("store %s: open the journal: %w", path, err)
	}
	s.jsize = int64(len(b))
	return nil
}

// quarantine copies the data's bytes [off, off+n) to a new file, synced,
// with its directory synced, before the data is cut.
func (s *Store) quarantine(name string, off, n int64) error {
	q, err := s.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("store %s: create the quarantine file: %w", s.path, err)
	}
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		k := min(int64(len(buf)), n-done)
		if _, err := s.data.ReadAt(buf[:k], off+done); err != nil && !errors.Is(err, io.EOF) {
			q.Close()
			return fmt.Errorf("store %s: read the bets file's tail: %w", s.path, err)
		}
		if _, err := q.WriteAt(buf[:k], done); err != nil {
			q.Close()
			return fmt.Errorf("store %s: write the quarantine file: %w", s.path, err)
		}
		done += k
	}
	if err := s.sync(q); err != nil {
		q.Close()
		return fmt.Errorf("store %s: sync the quarantine file: %w", s.path, err)
	}
	if err := q.Close(); err != nil {
		return fmt.Errorf("store %s: close the quarantine file: %w", s.path, err)
	}
	return s.syncDir(filepath.Dir(name))
}

// zeroTail is where f's first size bytes end once the zero bytes at
// their end are left out, looking back at most limit bytes: zeros further
// back count as bytes.
func zeroTail(f fsys.File, size, limit int64) (int64, error) {
	buf := make([]byte, min(limit, size, 64<<10))
	end := size
	for end > 0 && size-end < limit {
		b := buf[:min(int64(len(buf)), end, limit-(size-end))]
		if _, err := f.ReadAt(b, end-int64(len(b))); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return end - int64(len(b)) + int64(i) + 1, nil
			}
		}
		end -= int64(len(b))
	}
	return end, nil
}

// nonZero counts the bytes of f's [off, off+n) that are not zero.
func nonZero(f fsys.File, off, n int64) (int64, error) {
	buf := make([]byte, min(n, 64<<10))
	var count int64
	for done := int64(0); done < n; {
		b := buf[:min(int64(len(buf)), n-done)]
		if _, err := f.ReadAt(b, off+done); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		count += int64(len(b) - bytes.Count(b, []byte{0}))
		done += int64(len(b))
	}
	return count, nil
}

// readPid reads the pid a lock holder wrote ("pid <n>"), 0 if none.
func readPid(fsy fsys.FS, name string) int {
	f, err := fsy.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	var b [64]byte
	n, _ := f.ReadAt(b[:], 0)
	s := strings.TrimSpace(string(b[:n]))
	pid, err := strconv.Atoi(strings.TrimPrefix(s, "pid "))
	if err != nil || !strings.HasPrefix(s, "pid ") {
		return 0
	}
	return pid
}
