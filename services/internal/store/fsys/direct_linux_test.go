//go:build linux

package fsys

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// TestWriteDirectAtWritesWhatWriteAtWrites drives a file through
// WriteDirectAt and a second one through plain os.File writes with the same
// random writes (appends and overwrites, aligned and not, past the end,
// across chunks) and truncations, and checks that the two files hold the
// same bytes after each step. The oracle is the kernel's own WriteAt.
func TestWriteDirectAtWritesWhatWriteAtWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		seed uint64
		max  int // the largest write
		// Whether some write certainly covers a whole block (so goes
		// out with O_DIRECT where the file system has it).
		covers bool
	}{
		{"small", 1, 3 * directAlign, true},
		{"around a block", 2, directAlign + 17, false},
		{"across chunks", 3, 2*directChunk + 3*directAlign + 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := OS{}.OpenFile(filepath.Join(dir, "direct"), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := os.OpenFile(filepath.Join(dir, "plain"), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			r := rand.New(rand.NewPCG(tc.seed, 99))
			var size int64
			for step := 0; step < 60; step++ {
				switch k := r.IntN(10); {
				case k == 0 && size > 0:
					n := r.Int64N(size + 1)
					if err := got.Truncate(n); err != nil {
						t.Fatal(err)
					}
					if err := want.Truncate(n); err != nil {
						t.Fatal(err)
					}
					size = n
				default:
					p := make([]byte, 1+r.IntN(tc.max))
					for i := range p {
						p[i] = byte(r.UintN(256))
					}
					var off int64
					switch {
					case k < 6: // append
						off = size
					case k < 8: // overwrite inside
						off = r.Int64N(size + 1)
					default: // past the end, leaving a hole
						off = size + r.Int64N(2*directAlign)
					}
					n, err := got.(DirectWriter).WriteDirectAt(p, off)
					if err != nil || n != len(p) {
						t.Fatalf("step %d: WriteDirectAt(%d bytes at %d) = %d, %v", step, len(p), off, n, err)
					}
					if _, err := want.WriteAt(p, off); err != nil {
						t.Fatal(err)
					}
					size = max(size, off+int64(len(p)))
				}
				gs, err := got.Size()
				if err != nil {
					t.Fatal(err)
				}
				if gs != size {
					t.Fatalf("step %d: the file is %d bytes, want %d", step, gs, size)
				}
				a, err := os.ReadFile(filepath.Join(dir, "direct"))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(dir, "plain"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, b) {
					i := 0
					for i < min(len(a), len(b)) && a[i] == b[i] {
						i++
					}
					t.Fatalf("step %d: the files differ from byte %d (%d and %d bytes)", step, i, len(a), len(b))
				}
			}
			if tc.covers && directSupported(t, dir) && !got.(*osFile).dio.on() {
				t.Fatal("O_DIRECT works here, but the writes did not use it")
			}
		})
	}
}

// TestWriteDirectAtBypassesThePageCache checks that a large write to a
// file on a file system with O_DIRECT goes out through the O_DIRECT
// descriptor, and that one where it is refused (tmpfs, /dev/shm) still
// writes, through the page cache.
func TestWriteDirectAtBypassesThePageCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string
	}{
		{"the test's temporary directory", t.TempDir()},
		{"/dev/shm", "/dev/shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, err := os.Stat(tc.dir); err != nil || !st.IsDir() {
				t.Skipf("%s is not here", tc.dir)
			}
			d, err := os.MkdirTemp(tc.dir, "fsys-direct-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(d) })
			name := filepath.Join(d, "f")
			f, err := OS{}.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
			if _, err := f.(DirectWriter).WriteDirectAt(p, 100); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[100:], p) || !bytes.Equal(b[:100], make([]byte, 100)) {
				t.Fatal("the file does not hold what was written")
			}
			supported := directSupported(t, d)
			if on := f.(*osFile).dio.on(); on != supported {
				t.Fatalf("direct writes on: %v; O_DIRECT opens here: %v", on, supported)
			}
			if off := f.(DirectWriter).DirectOff(); (off == nil) != supported {
				t.Fatalf("DirectOff() = %v; O_DIRECT opens here: %v", off, supported)
			}
		})
	}
}

// TestWriteDirectAtLeavesThePageCacheAlone asks the kernel (mincore on a
// mapping of the file) which of a file's pages are in the page cache after
// a 1 MiB write at an unaligned offset: through WriteDirectAt only the two
// partial blocks at its ends, through WriteAt all of them (which shows the
// check can see them).
func TestWriteDirectAtLeavesThePageCacheAlone(t *testing.T) {
	dir := t.TempDir()
	if !directSupported(t, dir) {
		t.Skipf("O_DIRECT does not work in %s", dir)
	}
	if os.Getpagesize() != directAlign {
		t.Skipf("pages of %d bytes", os.Getpagesize())
	}
	const off, n = 100, 1 << 20
	p := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	pages := (off + n + directAlign - 1) / directAlign
	for _, tc := range []struct {
		name   string
		direct bool
	}{{"WriteAt", false}, {"WriteDirectAt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(dir, tc.name)
			f, err := OS{}.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tc.direct {
				_, err = f.(DirectWriter).WriteDirectAt(p, off)
			} else {
				_, err = f.WriteAt(p, off)
			}
			if err != nil {
				t.Fatal(err)
			}
			in := resident(t, f.(*osFile).f, pages)
			for i, r := range in {
				want := !tc.direct || i == 0 || i == pages-1
				if r != want {
					t.Fatalf("page %d of %d in the page cache: %v, want %v", i, pages, r, want)
				}
			}
		})
	}
}

// resident reports, page by page, whether f's first pages are in the page
// cache (mincore(2) on a shared read-only mapping, which faults nothing in).
func resident(t *testing.T, f *os.File, pages int) []bool {
	t.Helper()
	m, err := syscall.Mmap(int(f.Fd()), 0, pages*directAlign, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	vec := make([]byte, pages)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	out := make([]bool, pages)
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// TestWriteDirectAtFallsBackWhenRefused makes the kernel refuse a direct
// write (EINVAL: its memory is not aligned) after the write's head block
// went through the page cache: the write completes through the page cache,
// the file holds what plain writes leave, and direct writes stay off.
func TestWriteDirectAtFallsBackWhenRefused(t *testing.T) {
	dir := t.TempDir()
	if !directSupported(t, dir) {
		t.Skipf("O_DIRECT does not work in %s", dir)
	}
	name := filepath.Join(dir, "f")
	f, err := OS{}.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := f.(*osFile)
	first := bytes.Repeat([]byte("a"), 3*directAlign)
	if _, err := o.WriteDirectAt(first, 0); err != nil || !o.dio.on() || o.DirectOff() != nil {
		t.Fatalf("first write: %v, direct on: %v, DirectOff: %v", err, o.dio.on(), o.DirectOff())
	}
	// The stage, shifted by one byte: the next direct write's memory is
	// not aligned, which O_DIRECT refuses with EINVAL before writing.
	b := make([]byte, directChunk+2*directAlign)
	o.dio.stage = b[1 : 1+directChunk]
	if uintptr(unsafe.Pointer(&o.dio.stage[0]))%directAlign == 0 {
		t.Fatal("the shifted stage is aligned")
	}
	second := bytes.Repeat([]byte("0123456789"), 2*directAlign)
	const at = 3*directAlign + 10
	if n, err := o.WriteDirectAt(second, at); err != nil || n != len(second) {
		t.Fatalf("refused write: %d, %v", n, err)
	}
	if o.dio.on() {
		t.Fatal("direct writes are still on after the kernel refused one")
	}
	if off := o.DirectOff(); !errors.Is(off, syscall.EINVAL) {
		t.Fatalf("DirectOff() = %v, want the kernel's EINVAL", off)
	}
	want := append(append(first, make([]byte, 10)...), second...)
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the file holds %d bytes, not the %d written", len(got), len(want))
	}
}

// directSupported is the oracle: whether the kernel lets a file in dir be
// opened with O_DIRECT and written from aligned memory.
func directSupported(t *testing.T, dir string) bool {
	t.Helper()
	name := filepath.Join(dir, "probe")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|directFlag, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	var d direct
	_, err = f.WriteAt(d.buf(directAlign), 0)
	return err == nil
}
