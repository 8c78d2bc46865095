//go:build linux

package fsys

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

const (
	// directFlag opens a descriptor whose writes bypass the page cache.
	directFlag = syscall.O_DIRECT
	// directAlign is what O_DIRECT asks of a write's offset, length and
	// memory: 4 KiB, a file-system block, which every device's logical
	// block divides.
	directAlign = 4096
	// directChunk bounds the aligned memory a file keeps to stage its
	// direct writes: a larger write goes out in chunks of it.
	directChunk = 1 << 20
)

// direct is a file's second descriptor, opened with O_DIRECT on the first
// WriteDirectAt, and the aligned memory its writes go out from.
//
// Why: a buffered write copies every byte into the page cache, and on the
// virtual machines measured, the page cache's fresh pages cost more than
// the copy (the throughput central spent 24% of its CPU in pwrite, about
// 2 ms a MiB; O_DIRECT 0.14-0.26 ms, docs/BENCHMARKS.md section 2). The store's rows are written once and read back
// only after a restart or at the draw, so the page cache gains little
// from holding them.
type direct struct {
	mu    sync.Mutex
	d     *os.File // nil: not opened yet, or unsupported (off)
	off   bool     // direct writes do not work on this file: plain writes
	why   error    // what turned them off
	stage []byte   // directAlign-aligned, at most directChunk bytes
}

// WriteDirectAt implements DirectWriter. The partial blocks at p's two
// ends are written through the page cache (the one at the start is, in
// an appending file, the block the previous write ended in, still
// cached), and the whole blocks between them with O_DIRECT. A file system
// that refuses O_DIRECT at open or at the first write (EINVAL,
// EOPNOTSUPP: some FUSE and network ones, tmpfs before Linux 6.6) gets
// plain writes from the first refusal on.
func (o *osFile) WriteDirectAt(p []byte, off int64) (int, error) {
	o.dio.mu.Lock()
	defer o.dio.mu.Unlock()
	end := off + int64(len(p))
	lo := (off + directAlign - 1) &^ (directAlign - 1)
	hi := end &^ (directAlign - 1)
	if off < 0 || hi <= lo || !o.dio.open(o.f) {
		return o.f.WriteAt(p, off)
	}
	n := 0
	if lo > off {
		k, err := o.f.WriteAt(p[:lo-off], off)
		n += k
		if err != nil {
			return n, err
		}
	}
	for at := lo; at < hi; {
		m := min(hi-at, directChunk)
		buf := o.dio.buf(int(m))
		copy(buf, p[at-off:])
		k, err := o.dio.d.WriteAt(buf, at)
		if err != nil {
			if k == 0 && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)) {
				// Refused for its alignment or by the file system, so
				// nothing was written: plain writes from here on.
				o.dio.disable(fmt.Errorf("a direct write was refused: %w", err))
				k, err := o.f.WriteAt(p[at-off:], at)
				return n + k, err
			}
			return n + k, err
		}
		n += k
		at += m
	}
	if end > hi {
		k, err := o.f.WriteAt(p[hi-off:], hi)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// open opens the O_DIRECT descriptor if it is not open yet, and reports
// whether direct writes are on. Any failure turns them off: they are a
// way to write, never a reason not to.
func (d *direct) open(f *os.File) bool {
	if d.off {
		return false
	}
	if d.d != nil {
		return true
	}
	g, err := os.OpenFile(f.Name(), os.O_WRONLY|directFlag, 0)
	if err != nil {
		d.off, d.why = true, fmt.Errorf("open for direct writes: %w", err)
		return false
	}
	a, aerr := f.Stat()
	b, berr := g.Stat()
	if aerr != nil || berr != nil {
		g.Close()
		d.off, d.why = true, fmt.Errorf("stat %s for direct writes: %w", f.Name(), errors.Join(aerr, berr))
		return false
	}
	if !os.SameFile(a, b) {
		g.Close() // the name now names another file: stay with f alone
		d.off, d.why = true, fmt.Errorf("open %s for direct writes: the name no longer names the open file", f.Name())
		return false
	}
	d.d = g
	return true
}

// buf is n bytes of the aligned stage, grown as needed (n <= directChunk).
func (d *direct) buf(n int) []byte {
	if len(d.stage) < n {
		size := min(directChunk, max(n, 2*len(d.stage)))
		b := make([]byte, size+directAlign)
		skew := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
		from := 0
		if skew != 0 {
			from = directAlign - skew
		}
		d.stage = b[from : from+size : from+size]
	}
	return d.stage[:n]
}

func (d *direct) disable(why error) {
	d.off, d.why = true, why
	if d.d != nil {
		d.d.Close()
		d.d = nil
	}
	d.stage = nil
}

func (d *direct) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.d == nil {
		return nil
	}
	err := d.d.Close()
	d.d = nil
	return err
}

// DirectOff implements DirectWriter.
func (o *osFile) DirectOff() error {
	o.dio.mu.Lock()
	defer o.dio.mu.Unlock()
	return o.dio.why
}

// directOn reports whether f's direct writes go out with O_DIRECT (for
// tests).
func (d *direct) on() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.d != nil && !d.off
}
