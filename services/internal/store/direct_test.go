package store

import (
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/store/faultfs"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// refusingFS's files are DirectWriters whose file system has refused
// direct writes: WriteDirectAt is WriteAt, and DirectOff says why.
type refusingFS struct{ fsys.FS }

func (f refusingFS) OpenFile(name string, flag int, perm fs.FileMode) (fsys.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return refusingFile{file}, nil
}

type refusingFile struct{ fsys.File }

func (f refusingFile) WriteDirectAt(p []byte, off int64) (int, error) { return f.WriteAt(p, off) }

func (refusingFile) DirectOff() error { return errors.New("the test's file system refuses O_DIRECT") }

// TestDirectWritesRefusedAreLoggedOnce: when the bets file's file system
// refuses direct writes, the store says once, at WARN, with the file and
// the cause, that its large groups go through the page cache, and stores
// them all the same.
func TestDirectWritesRefusedAreLoggedOnce(t *testing.T) {
	mem := faultfs.New()
	var logs testenv.Buffer
	s := openT(t, memPath, Options{FS: refusingFS{mem}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const n = 2000 // about 90 KiB of rows: a group past preallocMaxWrite
	for i := range 3 {
		must(t)(submit(s, 1, int64(i*n), int64(i*n), n))
	}
	closeT(t, s)
	if got := strings.Count(logs.String(), "direct writes are off"); got != 1 {
		t.Fatalf("the refusal is said %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "refuses O_DIRECT") ||
		!strings.Contains(logs.String(), "path="+memPath) {
		t.Fatalf("the refusal is not a warning with its cause:\n%s", logs.String())
	}
	if got := len(storedBets(t, memRead(t, mem, memPath))); got != 3*n {
		t.Fatalf("%d bets stored, want %d", got, 3*n)
	}
}
