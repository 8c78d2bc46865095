package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/loteria/loteria/services/internal/store/fsys"
)

// BenchmarkDiskSync measures the disk under the store, not the store: one
// write and one fdatasync per op, through the store's own file layer, the
// way a commit of one 10-bet batch does it (about 600 B of rows, a 64 B
// journal record). It is the floor a stop-and-wait agency's batch pays,
// whatever the store's design (docs/BENCHMARKS.md, section 1):
//
//   - append/one-file: a write past the end, so the sync also writes the
//     file's new size;
//   - append/two-files: the same to two files synced in parallel, as a
//     commit of the bets file and the journal does today;
//   - prewritten/one-file and prewritten/two-files: writes over bytes
//     already on disk (written and synced before the timer starts), so
//     the sync writes data only: what a store with preallocated, zeroed
//     files would pay.
func BenchmarkDiskSync(b *testing.B) {
	const rows, record = 600, 64
	for _, c := range []struct {
		name                 string
		two                  bool
		prewritten, onlyJrnl bool
	}{
		{"append/one-file", false, false, false},
		{"append/two-files", true, false, false},
		{"prewritten/one-file", false, true, false},
		{"prewritten/two-files", true, true, false},
		{"prewritten-journal/two-files", true, true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			open := func(name string) fsys.File {
				f, err := fsys.OS{}.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { f.Close() })
				return f
			}
			data, journal := open("data"), open("journal")
			if c.prewritten {
				// b.N ops of each size, written and synced once before timing.
				zero := make([]byte, 1<<20)
				for _, f := range []struct {
					f    fsys.File
					size int
				}{{data, rows}, {journal, record}} {
					if c.onlyJrnl && f.f == data {
						continue
					}
					for off := 0; off < b.N*f.size; off += len(zero) {
						if _, err := f.f.WriteAt(zero, int64(off)); err != nil {
							b.Fatal(err)
						}
					}
					if err := f.f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			row, rec := make([]byte, rows), make([]byte, record)
			for i := range row {
				row[i] = 'x'
			}
			syncJournal := make(chan error)
			b.ResetTimer()
			for i := range b.N {
				if _, err := data.WriteAt(row, int64(i*rows)); err != nil {
					b.Fatal(err)
				}
				if !c.two {
					if err := data.Sync(); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := journal.WriteAt(rec, int64(i*record)); err != nil {
					b.Fatal(err)
				}
				go func() { syncJournal <- journal.Sync() }()
				errData := data.Sync()
				if err := <-syncJournal; err != nil {
					b.Fatal(err)
				}
				if errData != nil {
					b.Fatal(errData)
				}
			}
		})
	}
}
