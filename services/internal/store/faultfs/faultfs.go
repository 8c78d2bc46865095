// Package faultfs is an in-memory file system for testing the store: it
// fails chosen calls (an I/O error, a full disk, a short write) and shows
// what a power cut would leave behind.
//
// Durability is modelled the way a journaling file system on a disk with
// a volatile cache behaves: a file's bytes are durable once File.Sync
// returned, and a directory's entries (files created, renamed or removed
// in it) once SyncDir of that directory returned. Crash returns the file
// system as the power cut left it: every file holds exactly what was
// synced, plus, when a random source is given, possibly a torn part of
// what was not (a prefix of the unsynced bytes, possibly followed by
// garbage); an unsynced directory change may or may not have happened.
// Directories themselves are durable once made.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/loteria/loteria/services/internal/store/fsys"
)

// Op is a kind of file-system call, for choosing which one fails.
type Op uint8

// The calls a fault can be injected into.
const (
	OpOpen     Op = iota + 1 // FS.OpenFile and FS.Lock
	OpRead                   // File.ReadAt
	OpWrite                  // File.WriteAt
	OpSync                   // File.Sync
	OpTruncate               // File.Truncate
	OpRename                 // FS.Rename
	OpRemove                 // FS.Remove
	OpSyncDir                // FS.SyncDir
)

func (o Op) String() string {
	switch o {
	case OpOpen:
		return "open"
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	case OpTruncate:
		return "truncate"
	case OpRename:
		return "rename"
	case OpRemove:
		return "remove"
	case OpSyncDir:
		return "syncdir"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ErrPowerLost is what every call on a file system returns after its
// Crash: nothing done after the power cut reaches the disk.
var ErrPowerLost = errors.New("faultfs: power lost")

// Fault makes one call fail.
type Fault struct {
	Op Op
	// Name is the path the call is on (as the caller spelled it); "" is
	// any path.
	Name string
	// Nth is which matching call fails, from 1 (counted from Inject).
	Nth int
	// Err is the error (default syscall.EIO), wrapped in an *fs.PathError.
	Err error
	// Short, for OpWrite: how many bytes of the failing write are written
	// before it fails (a short write).
	Short int
	// Sticky fails every matching call from the Nth on, not just the Nth.
	Sticky bool
}

type fault struct {
	Fault
	seen int
}

// FS is the in-memory file system. Its methods are safe for concurrent
// use; each call is atomic.
type FS struct {
	mu     sync.Mutex
	dirs   map[string]*dir
	locks  map[string]bool
	faults []*fault
	calls  map[callKey]int
	full   bool
	dead   bool

	ops     int // calls counted for CrashAt
	crashAt int
	crashR  *rand.Rand
	crashed chan *FS
}

type callKey struct {
	op   Op
	name string
}

type dir struct {
	perm    fs.FileMode
	cur     map[string]*node // base name → file
	durable map[string]*node // as of the last SyncDir
}

type node struct {
	data       []byte
	durableLen int    // data[:durableLen] is durable, unless snap is set
	snap       []byte // the durable bytes, once data changed below durableLen
	perm       fs.FileMode
	mtime      time.Time
}

func (n *node) durableData() []byte {
	if n.snap != nil {
		return n.snap
	}
	return n.data[:n.durableLen]
}

// touch keeps the durable bytes before data changes from offset off.
func (n *node) touch(off int64) {
	if n.snap == nil && off < int64(n.durableLen) {
		n.snap = slices.Clone(n.data[:n.durableLen])
	}
}

var _ fsys.FS = (*FS)(nil)

// New is an empty file system; "/" and "." exist.
func New() *FS {
	f := &FS{dirs: map[string]*dir{}, locks: map[string]bool{}, calls: map[callKey]int{}}
	f.dirs["/"] = newDir(0o755)
	f.dirs["."] = newDir(0o755)
	return f
}

func newDir(perm fs.FileMode) *dir {
	return &dir{perm: perm, cur: map[string]*node{}, durable: map[string]*node{}}
}

// Inject adds a fault.
func (f *FS) Inject(flt Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flt.Nth < 1 {
		flt.Nth = 1
	}
	if flt.Err == nil {
		flt.Err = syscall.EIO
	}
	f.faults = append(f.faults, &fault{Fault: flt})
}

// ClearFaults removes every pending fault.
func (f *FS) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// SetFull turns the full disk on or off: while on, a write that would
// make a file larger fails with ENOSPC, writing nothing.
func (f *FS) SetFull(full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = full
}

// Calls is how many calls of op were made on name ("" any) so far.
func (f *FS) Calls(op Op, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "" {
		return f.calls[callKey{op, name}]
	}
	n := 0
	for k, c := range f.calls {
		if k.op == op {
			n += c
		}
	}
	return n
}

// CrashAt cuts the power at the n-th call from now (counting the calls
// that faults can be injected into): that call and every later one fail
// with ErrPowerLost, and the file system the cut leaves (see Crash) is
// sent on the returned channel. n <= 0 disarms an earlier CrashAt.
func (f *FS) CrashAt(n int, rng *rand.Rand) <-chan *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops, f.crashAt, f.crashR = 0, max(n, 0), rng
	f.crashed = make(chan *FS, 1)
	return f.crashed
}

// check counts a call and returns the fault it triggers, if any.
func (f *FS) check(op Op, name string) (*fault, error) {
	if f.crashAt > 0 && !f.dead {
		if f.ops++; f.ops == f.crashAt {
			f.crashed <- f.crash(f.crashR)
		}
	}
	if f.dead {
		return nil, &fs.PathError{Op: op.String(), Path: name, Err: ErrPowerLost}
	}
	f.calls[callKey{op, name}]++
	for i, flt := range f.faults {
		if flt.Op != op || (flt.Name != "" && flt.Name != name) {
			continue
		}
		flt.seen++
		if flt.seen == flt.Nth || (flt.Sticky && flt.seen > flt.Nth) {
			if !flt.Sticky {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
			return flt, &fs.PathError{Op: op.String(), Path: name, Err: flt.Err}
		}
	}
	return nil, nil
}

func split(name string) (string, string) {
	name = filepath.Clean(name)
	return filepath.Dir(name), filepath.Base(name)
}

func (f *FS) lookup(name string) (*dir, string, *node, error) {
	d, base := split(name)
	dd := f.dirs[d]
	if dd == nil {
		return nil, "", nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return dd, base, dd.cur[base], nil
}

// OpenFile implements fsys.FS (os.O_RDONLY, O_WRONLY, O_RDWR, O_CREATE,
// O_EXCL, O_TRUNC; O_APPEND is refused since writes go at offsets).
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (fsys.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, err := f.open(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return h, nil
}

func (f *FS) open(name string, flag int, perm fs.FileMode) (*File, error) {
	if _, err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	if flag&os.O_APPEND != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EINVAL}
	}
	d, base, n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case n == nil:
		n = &node{perm: perm & fs.ModePerm, mtime: time.Now()}
		d.cur[base] = n
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if flag&os.O_TRUNC != 0 && writable {
		n.touch(0)
		n.data = n.data[:0]
	}
	return &File{fs: f, name: name, n: n, write: writable, read: flag&os.O_WRONLY == 0}, nil
}

// Lock implements fsys.FS: one holder per path in this file system.
func (f *FS) Lock(name string, perm fs.FileMode) (fsys.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := filepath.Clean(name)
	if f.locks[key] {
		if f.dead {
			return nil, &fs.PathError{Op: "lock", Path: name, Err: ErrPowerLost}
		}
		return nil, fmt.Errorf("lock %s: %w", name, fsys.ErrLocked)
	}
	file, err := f.open(name, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	f.locks[key] = true
	file.lock = key
	return file, nil
}

// Rename implements fsys.FS.
func (f *FS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.check(OpRename, oldname); err != nil {
		return err
	}
	od, ob, n, err := f.lookup(oldname)
	if err != nil {
		return err
	}
	if n == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	nd, nb, _, err := f.lookup(newname)
	if err != nil {
		return err
	}
	delete(od.cur, ob)
	nd.cur[nb] = n
	return nil
}

// Remove implements fsys.FS.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.check(OpRemove, name); err != nil {
		return err
	}
	d, base, n, err := f.lookup(name)
	if err != nil {
		return err
	}
	if n == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.cur, base)
	return nil
}

// Stat implements fsys.FS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: ErrPowerLost}
	}
	clean := filepath.Clean(name)
	if d := f.dirs[clean]; d != nil {
		return info{name: filepath.Base(clean), mode: fs.ModeDir | d.perm}, nil
	}
	_, base, n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return info{name: base, size: int64(len(n.data)), mode: n.perm, mtime: n.mtime}, nil
}

// MkdirAll implements fsys.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return &fs.PathError{Op: "mkdir", Path: name, Err: ErrPowerLost}
	}
	for p := filepath.Clean(name); ; p = filepath.Dir(p) {
		if f.dirs[p] != nil {
			break
		}
		if d, b := split(p); f.dirs[d] != nil && f.dirs[d].cur[b] != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
		}
		f.dirs[p] = newDir(perm & fs.ModePerm)
	}
	return nil
}

// SyncDir implements fsys.FS.
func (f *FS) SyncDir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.check(OpSyncDir, name); err != nil {
		return err
	}
	d := f.dirs[filepath.Clean(name)]
	if d == nil {
		return &fs.PathError{Op: "syncdir", Path: name, Err: fs.ErrNotExist}
	}
	d.durable = maps(d.cur)
	return nil
}

func maps(m map[string]*node) map[string]*node {
	c := make(map[string]*node, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Crash cuts the power: it returns a new file system holding what the
// disk would hold afterwards, and this one fails every later call with
// ErrPowerLost (its files still Close). With rng nil, every file holds
// exactly its synced bytes and every unsynced directory change is lost;
// with rng, each unsynced directory change happens or not, and each file
// may also keep a torn part of its unsynced bytes, at random.
func (f *FS) Crash(rng *rand.Rand) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crash(rng)
}

func (f *FS) crash(rng *rand.Rand) *FS {
	f.dead = true
	out := New()
	names := make([]string, 0, len(f.dirs))
	for p := range f.dirs {
		names = append(names, p)
	}
	slices.Sort(names) // a seeded rng gives the same crash every time
	for _, p := range names {
		d := f.dirs[p]
		nd := newDir(d.perm)
		out.dirs[p] = nd
		var bases []string
		for b := range d.cur {
			bases = append(bases, b)
		}
		for b := range d.durable {
			if _, ok := d.cur[b]; !ok {
				bases = append(bases, b)
			}
		}
		slices.Sort(bases)
		for _, b := range bases {
			n := d.durable[b]
			if c := d.cur[b]; c != n && rng != nil && rng.IntN(2) == 0 {
				n = c
			}
			if n == nil {
				continue
			}
			data := slices.Clone(n.durableData())
			if rng != nil && rng.IntN(2) == 0 {
				data = tear(rng, n.durableData(), n.data)
			}
			nn := &node{data: data, durableLen: len(data), perm: n.perm, mtime: n.mtime}
			nd.cur[b], nd.durable[b] = nn, nn
		}
	}
	return out
}

// tear is what a file may hold after a power cut when some of its
// unsynced changes reached the disk: the bytes it shares with its durable
// state, a prefix of the rest of its current bytes, and maybe garbage.
// When the file was cut below its synced size (an unsynced truncation),
// that cut is among what may have reached the disk.
func tear(rng *rand.Rand, durable, cur []byte) []byte {
	l := 0
	for l < len(durable) && l < len(cur) && durable[l] == cur[l] {
		l++
	}
	k := rng.IntN(len(cur) - l + 1)
	out := slices.Clone(cur[:l+k])
	if rng.IntN(2) == 0 {
		g := make([]byte, 1+rng.IntN(16))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		out = append(out, g...)
	}
	return out
}

// ReadFile returns a file's current bytes.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _, n, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(n.data), nil
}

// WriteFile sets a file's bytes, durably (directory entry included),
// creating its directory: for setting up a test.
func (f *FS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	d, b := split(name)
	if err := f.MkdirAll(d, 0o700); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dd := f.dirs[d]
	n := &node{data: slices.Clone(data), durableLen: len(data), perm: perm & fs.ModePerm, mtime: time.Now()}
	dd.cur[b], dd.durable[b] = n, n
	return nil
}

// Files lists the paths of every file, sorted.
func (f *FS) Files() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p, d := range f.dirs {
		for b := range d.cur {
			out = append(out, filepath.Join(p, b))
		}
	}
	slices.Sort(out)
	return out
}

type info struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return i.mtime }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }

// File is an open file of an FS.
type File struct {
	fs          *FS
	name        string
	n           *node
	read, write bool
	lock        string
	closed      bool
}

var _ fsys.File = (*File)(nil)

// ReadAt implements fsys.File.
func (h *File) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("read", h.read); err != nil {
		return 0, err
	}
	if _, err := h.fs.check(OpRead, h.name); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: h.name, Err: syscall.EINVAL}
	}
	if off >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements fsys.File.
func (h *File) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("write", h.write); err != nil {
		return 0, err
	}
	flt, err := h.fs.check(OpWrite, h.name)
	if err != nil {
		k := 0
		if flt != nil {
			k = min(max(flt.Short, 0), len(p))
		}
		h.put(p[:k], off)
		return k, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.EINVAL}
	}
	if h.fs.full && off+int64(len(p)) > int64(len(h.n.data)) {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: syscall.ENOSPC}
	}
	h.put(p, off)
	return len(p), nil
}

// WriteDirectAt implements fsys.DirectWriter as WriteAt (an OpWrite):
// bytes written past the page cache are no more durable before Sync than
// others (the disk's cache holds them), so the model is the same, and the
// store takes the same path over this file system as over the real one.
func (h *File) WriteDirectAt(p []byte, off int64) (int, error) { return h.WriteAt(p, off) }

// DirectOff implements fsys.DirectWriter: a faultfs file never refuses.
func (h *File) DirectOff() error { return nil }

var _ fsys.DirectWriter = (*File)(nil)

func (h *File) put(p []byte, off int64) {
	if len(p) == 0 {
		return
	}
	h.n.touch(off)
	if end := off + int64(len(p)); end > int64(len(h.n.data)) {
		h.n.data = append(h.n.data, make([]byte, end-int64(len(h.n.data)))...)
	}
	copy(h.n.data[off:], p)
	h.n.mtime = time.Now()
}

// Truncate implements fsys.File.
func (h *File) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("truncate", h.write); err != nil {
		return err
	}
	if _, err := h.fs.check(OpTruncate, h.name); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: h.name, Err: syscall.EINVAL}
	}
	h.n.touch(size)
	if size <= int64(len(h.n.data)) {
		h.n.data = h.n.data[:size]
	} else {
		h.n.data = append(h.n.data, make([]byte, size-int64(len(h.n.data)))...)
	}
	return nil
}

// Sync implements fsys.File.
func (h *File) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("sync", true); err != nil {
		return err
	}
	if _, err := h.fs.check(OpSync, h.name); err != nil {
		return err
	}
	h.n.snap = nil
	h.n.durableLen = len(h.n.data)
	return nil
}

// Size implements fsys.File.
func (h *File) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usable("stat", true); err != nil {
		return 0, err
	}
	return int64(len(h.n.data)), nil
}

// Close implements fsys.File; it releases the file's lock, if any, and
// works even after a Crash.
func (h *File) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return &fs.PathError{Op: "close", Path: h.name, Err: fs.ErrClosed}
	}
	h.closed = true
	if h.lock != "" {
		delete(h.fs.locks, h.lock)
	}
	return nil
}

func (h *File) usable(op string, allowed bool) error {
	switch {
	case h.closed:
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	case h.fs.dead:
		return &fs.PathError{Op: op, Path: h.name, Err: ErrPowerLost}
	case !allowed:
		return &fs.PathError{Op: op, Path: h.name, Err: syscall.EBADF}
	}
	return nil
}
