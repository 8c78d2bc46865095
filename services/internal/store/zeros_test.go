package store

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/loteria/loteria/services/internal/store/faultfs"
	"github.com/loteria/loteria/services/internal/store/fsys"
)

// mixedRun drives agencies with sequential batches of mixed sizes (some
// straddling preallocMaxWrite), returns the highest acknowledged end per agency.
func mixedRun(t *testing.T, s *Store, rng *rand.Rand, steps int, next map[int]int64) map[int]int64 {
	acked := map[int]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range steps {
		a := 1 + rng.IntN(3)
		var n int
		switch p := rng.IntN(10); {
		case p < 6:
			n = 1 + rng.IntN(8)
		case p < 8:
			n = 1200 + rng.IntN(300) // ~64 KiB of rows
		default:
			n = 100 + rng.IntN(400)
		}
		from := next[a]
		b, err := s.Begin(a, from, n)
		if err != nil {
			break
		}
		for i := range n {
			b.Add(testBet(a, from+int64(i)))
		}
		r, err := b.Submit()
		if err != nil {
			break
		}
		next[a] = from + int64(n)
		wg.Add(1)
		go func(a int, end int64) {
			defer wg.Done()
			if r.Wait() == nil {
				mu.Lock()
				acked[a] = max(acked[a], end)
				mu.Unlock()
			}
		}(a, from+int64(n))
		if rng.IntN(4) == 0 {
			wg.Wait()
		}
		if s.Failed() != nil {
			break
		}
	}
	wg.Wait()
	return acked
}

func verifyRuns(t *testing.T, seed uint64, data []byte, acked map[int]int64, s *Store) {
	t.Helper()
	nx := map[int]int64{}
	for _, id := range storedBets(t, data) {
		if id.index != nx[id.agency] {
			t.Fatalf("seed %d: agency %d: bet %d after %d (gap or repeat)", seed, id.agency, id.index, nx[id.agency])
		}
		nx[id.agency]++
	}
	for a, e := range acked {
		if nx[a] < e {
			t.Fatalf("seed %d: agency %d acknowledged to %d, stored %d", seed, a, e, nx[a])
		}
		if m := s.Agency(a).Mark; m != nx[a] {
			t.Fatalf("seed %d: agency %d mark %d, stored %d", seed, a, m, nx[a])
		}
	}
}

// TestPowerLossMixedCommits: power cuts at random instants with commits on
// both sides of preallocMaxWrite, sometimes after an injected failure
// (rollback), sometimes during the recovery that follows.
func TestPowerLossMixedCommits(t *testing.T) {
	const runs = 50
	groups := []int{4 << 10, 64 << 10, 80 << 10, 256 << 10, 4 << 20}
	for it := range runs {
		seed := uint64(it)
		rng := rand.New(rand.NewPCG(seed, 11))
		mem := faultfs.New()
		mg := groups[rng.IntN(len(groups))]
		s, err := Open(memPath, Options{FS: mem, MaxGroupBytes: mg, SerialSync: rng.IntN(2) == 0})
		if err != nil {
			t.Fatal(err)
		}
		next := map[int]int64{}
		acked := mixedRun(t, s, rng, 20+rng.IntN(60), next)
		if rng.IntN(2) == 0 {
			ops := []faultfs.Op{faultfs.OpSync, faultfs.OpWrite, faultfs.OpTruncate}
			names := []string{memPath, journalPath(memPath)}
			mem.Inject(faultfs.Fault{Op: ops[rng.IntN(len(ops))], Name: names[rng.IntN(2)], Nth: 1 + rng.IntN(6), Err: syscall.EIO, Short: rng.IntN(100)})
		}
		crashed := mem.CrashAt(1+rng.IntN(200), rand.New(rand.NewPCG(seed, 12)))
		a2 := mixedRun(t, s, rng, 20+rng.IntN(40), next)
		for a, e := range a2 {
			acked[a] = max(acked[a], e)
		}
		closeNow := rng.IntN(3) == 0
		var after *faultfs.FS
		if closeNow {
			s.Close()
		}
		select {
		case after = <-crashed:
		default:
			after = mem.Crash(rand.New(rand.NewPCG(seed, 13)))
		}
		if !closeNow {
			s.Close()
		}
		if rng.IntN(3) == 0 {
			again := after.CrashAt(1+rng.IntN(12), rand.New(rand.NewPCG(seed, 14)))
			if s2, err := Open(memPath, Options{FS: after, MaxGroupBytes: groups[rng.IntN(len(groups))]}); err == nil {
				s2.Close()
			}
			select {
			case after = <-again:
			default:
				after.CrashAt(0, nil)
			}
		}
		s3, err := Open(memPath, Options{FS: after})
		if err != nil {
			t.Fatalf("seed %d (group %d): reopen after a power cut: %v", seed, mg, err)
		}
		verifyRuns(t, seed, memRead(t, after, memPath), acked, s3)
		if err := s3.Close(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// TestNearlyFullDisk: a store on a real 2 MiB tmpfs, closed cleanly at
// ~1.5 MiB, with 128 KiB left free. A 3-bet commit (150 bytes) fits; the
// zeros the writer would keep ahead (an eighth of the file, ~190 KiB) do
// not, and must not fail it (helper-23 found they did, 2026-12-07).
func TestNearlyFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	path := filepath.Join(dir, "bets.csv")
	// Commits that sync both files: inline ones would keep a second copy
	// of the rows in the journal, and 1.5 MiB would not fit.
	s := openT(t, path, Options{InlineBytes: -1})
	for i := int64(0); s.Size() < 1500<<10; i += 1000 {
		must(t)(submit(s, 1, i, i, 1000))
	}
	closeT(t, s)
	// Leave 128 KiB free.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize) // Bsize is uint32 on darwin
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, free-128<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Statfs(dir, &st)
	t.Logf("free now: %d bytes", int64(st.Bavail)*int64(st.Bsize))
	s = openT(t, path, Options{})
	defer s.Close()
	m := s.Agency(1).Mark
	r, err := submit(s, 1, m, m, 3)
	if err == nil {
		err = r.Wait()
	}
	if err != nil {
		t.Fatalf("3 bets (~150 B) with %d bytes free: %v", int64(st.Bavail)*int64(st.Bsize), err)
	}
}

// TestCleanCloseAfterRecoveryCut: recovery cuts the zeros a kill left in
// bets.csv and syncs the cut: a run that then commits no data and closes
// cleanly leaves a plain CSV through a power cut (helper-23 found the cut
// was not synced, 2026-12-07).
func TestCleanCloseAfterRecoveryCut(t *testing.T) {
	mem := faultfs.New()
	// Commits that sync both files, so the bets file's rows and zeros
	// ahead are what is synced.
	s := openT(t, memPath, Options{FS: mem, InlineBytes: -1})
	for i := range 20 {
		must(t)(submit(s, 1, int64(i*3), int64(i*3), 3))
	}
	killed := mem.Crash(nil) // what is synced: rows, then the zeros ahead
	s.Close()
	if b := memRead(t, killed, memPath); b[len(b)-1] != 0 {
		t.Fatal("setup: no zeros ahead")
	}
	s2 := openT(t, memPath, Options{FS: killed})
	must(t)(s2.End(1)) // a journal-only commit: syncs the journal only
	closeT(t, s2)      // clean
	if b := memRead(t, killed, memPath); b[len(b)-1] == 0 {
		t.Fatal("the closed bets file ends in a zero")
	}
	after := killed.Crash(nil)
	if b := memRead(t, after, memPath); len(b) > 0 && b[len(b)-1] == 0 {
		t.Fatalf("bets.csv closed cleanly ends in %d NUL bytes after a power cut", len(b)-bytes.LastIndexByte(b, '\n')-1)
	}
}

// TestZerosAheadAreNotTorn: recovery reports a torn journal record by its
// bytes, never the zeros kept ahead after it (a SIGKILL leaves them every
// time: a warning after each would cry wolf).
func TestZerosAheadAreNotTorn(t *testing.T) {
	b := makeBase(t, -1)
	last := b.lastRec()
	for _, tt := range []struct {
		name    string
		journal []byte
		torn    int64
	}{
		{"zeros only", append(bytes.Clone(b.journal), zeros(preallocBytes)...), 0},
		{"a torn record, then zeros", append(bytes.Clone(b.journal[:last.off+5]), zeros(4096)...), 5},
		{"a torn record, zeros, a torn block", append(append(bytes.Clone(b.journal[:last.off+5]), zeros(4096)...), 7, 7), 5 + 4096 + 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeStore(t, map[string][]byte{"bets.csv": b.data, "bets.csv.journal": tt.journal})
			p, err := analyse(fsys.OS{}, path)
			if err != nil {
				t.Fatal(err)
			}
			if p.torn != tt.torn {
				t.Fatalf("torn = %d bytes, want %d", p.torn, tt.torn)
			}
		})
	}
}
