package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/store/faultfs"
)

const memPath = "/srv/loteria/bets.csv"

// TestFaultInjection fails the data write, the data fsync, the journal
// write and the journal fsync, each at every step k of a multi-commit run,
// and checks: the store fails for good, Close reports it without syncing,
// and after a power cut and a reopen every acknowledged entry is there,
// every bet at most once, and nothing answered "not stored" is visible.
func TestFaultInjection(t *testing.T) {
	const seed, agencies, steps = 11, 3, 40
	targets := []struct {
		name  string
		op    faultfs.Op
		file  string
		err   error
		short int
	}{
		{"data write", faultfs.OpWrite, memPath, syscall.EIO, 0},
		{"data short write", faultfs.OpWrite, memPath, syscall.EIO, 7},
		{"data write no space", faultfs.OpWrite, memPath, syscall.ENOSPC, 0},
		{"data fsync", faultfs.OpSync, memPath, syscall.EIO, 0},
		{"journal write", faultfs.OpWrite, journalPath(memPath), syscall.EIO, 0},
		{"journal short write", faultfs.OpWrite, journalPath(memPath), syscall.EIO, 9},
		{"journal fsync", faultfs.OpSync, journalPath(memPath), syscall.EIO, 0},
	}
	// The three kinds of commit: inline ones (their rows in the journal,
	// the bets file synced every 256 bytes), ones that sync both files,
	// and groups too large for zeros ahead, whose rows are written beside
	// the journal's write and sync (fsys.DirectWriter).
	for _, mode := range []struct {
		inl int
		big bool
	}{{256, false}, {-1, false}, {-1, true}} {
		inl := mode.inl
		for _, tg := range targets {
			tg.name = fmt.Sprintf("inline %d/%s", inl, tg.name)
			if mode.big {
				tg.name = "large groups/" + tg.name
			}
			// K: how many such calls a run without faults makes after Open.
			mem := faultfs.New()
			s := openT(t, memPath, Options{FS: mem, InlineBytes: inl})
			before := mem.Calls(tg.op, tg.file)
			w := newWorkload(t, s, seed, agencies, true)
			w.big = mode.big
			for i := 0; i < steps && w.step(); i++ {
			}
			// Close's own calls (it cuts the zeros kept ahead and syncs the
			// cut) are not the run's: a failing Close is TestCloseCutsAhead's.
			k := mem.Calls(tg.op, tg.file) - before
			closeT(t, s)
			// Inline commits sync the bets file only every 256 bytes.
			if k < 10 && (inl < 0 || tg.op != faultfs.OpSync || tg.file != memPath || k < 4) {
				t.Fatalf("%s: only %d calls in the run", tg.name, k)
			}
			// Without room for the zeros kept ahead of a file's end, the store
			// goes on without them: a no-space fault that hits a write of
			// zeros fails nothing.
			noRoomAhead := 0
			for k := range k {
				t.Run(fmt.Sprintf("%s/%d", tg.name, k+1), func(t *testing.T) {
					mem := faultfs.New()
					reg := prometheus.NewPedanticRegistry()
					s := openT(t, memPath, Options{FS: mem, Registerer: reg, InlineBytes: inl})
					mem.Inject(faultfs.Fault{Op: tg.op, Name: tg.file, Nth: k + 1, Err: tg.err, Short: tg.short})
					w := newWorkload(t, s, seed, agencies, true)
					w.big = mode.big
					for i := 0; i < steps && w.step(); i++ {
					}
					_, notStored, unknown := w.waitAll()
					failed := s.Failed()
					if failed == nil && errors.Is(tg.err, syscall.ENOSPC) && notStored+unknown == 0 {
						noRoomAhead++
						closeT(t, s)
						after := mem.Crash(rand.New(rand.NewPCG(uint64(k), 3)))
						s2 := openT(t, memPath, Options{FS: after})
						defer closeT(t, s2)
						w.verify(s2.Recovered(), memRead(t, after, memPath))
						return
					}
					if failed == nil || !errors.Is(failed, ledger.ErrFailed) || !errors.Is(failed, tg.err) {
						t.Fatalf("Failed() = %v, want the injected error wrapped with ErrFailed", failed)
					}
					if notStored+unknown == 0 {
						t.Fatal("no receipt reported the failure")
					}
					if _, err := s.End(1); !errors.Is(err, ledger.ErrFailed) {
						t.Fatalf("End after the failure: %v, want ErrFailed", err)
					}
					if _, err := s.Begin(1, ledger.AtMark, 1); !errors.Is(err, ledger.ErrFailed) {
						t.Fatalf("Begin after the failure: %v, want ErrFailed", err)
					}
					if v := testutil.ToFloat64(s.m.failed); v != 1 {
						t.Fatalf("loteria_store_failed = %v", v)
					}
					syncs := mem.Calls(faultfs.OpSync, "")
					if err := s.Close(); !errors.Is(err, ledger.ErrFailed) {
						t.Fatalf("Close after the failure: %v, want the failure", err)
					}
					if mem.Calls(faultfs.OpSync, "") != syncs {
						t.Fatal("Close synced after the failure")
					}
					after := mem.Crash(rand.New(rand.NewPCG(uint64(k), 3)))
					s2 := openT(t, memPath, Options{FS: after})
					defer closeT(t, s2)
					w.verify(s2.Recovered(), memRead(t, after, memPath))
				})
			}
			if noRoomAhead == k {
				t.Fatalf("%s: no fault failed the store", tg.name)
			}
			// Large groups keep no zeros ahead of the bets file's end.
			if errors.Is(tg.err, syscall.ENOSPC) && noRoomAhead == 0 && !(mode.big && tg.file == memPath) {
				t.Fatalf("%s: no fault hit a write of zeros ahead", tg.name)
			}
		}
	}
}

// TestDiskFull: a full disk fails the store for good; with space back, a
// reopen recovers every acknowledged bet and none answered "not stored".
func TestDiskFull(t *testing.T) {
	mem := faultfs.New()
	s := openT(t, memPath, Options{FS: mem})
	w := newWorkload(t, s, 5, 3, true)
	for range 30 {
		w.step()
	}
	mem.SetFull(true)
	// Commits go on into the zeros kept ahead of the files' ends (writes
	// over bytes the disk already holds need no room), then fail.
	steps := 0
	for ; steps < 1_000_000 && s.Failed() == nil && w.step(); steps++ {
	}
	if steps < 2 {
		t.Fatalf("the store failed after %d steps on a full disk: the zeros kept ahead went unused", steps)
	}
	_, notStored, unknown := w.waitAll()
	if err := s.Failed(); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ledger.ErrFailed) {
		t.Fatalf("Failed() = %v, want ENOSPC", err)
	}
	if notStored == 0 || unknown != 0 {
		t.Fatalf("%d receipts not stored, %d unknown; want the full disk's failure rolled back", notStored, unknown)
	}
	if err := s.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v", err)
	}
	mem.SetFull(false)
	s = openT(t, memPath, Options{FS: mem})
	defer closeT(t, s)
	w.verify(s.Recovered(), memRead(t, mem, memPath))
	m := s.Agency(1).Mark
	must(t)(submit(s, 1, m, m, 2))
}

// TestPowerLoss runs random workloads and cuts the power at a random
// instant (synced bytes kept, unsynced ones torn at random), sometimes
// again during the recovery that follows, then checks the reopened store
// against the workload. Seeded: a failure names its seed.
func TestPowerLoss(t *testing.T) {
	iterations := 600
	if testing.Short() {
		iterations = 20
	}
	if v := os.Getenv("LOTERIA_POWERLOSS_RUNS"); v != "" { // a longer soak
		var err error
		if iterations, err = strconv.Atoi(v); err != nil {
			t.Fatalf("LOTERIA_POWERLOSS_RUNS=%q: %v", v, err)
		}
	}
	var midRun, recrashed, quarantined, acked, lost int
	defer func() {
		t.Logf("%d runs: %d cut mid-run, %d cut again in recovery, %d recoveries quarantined a tail; %d entries acknowledged, %d not (failed or unknown)",
			iterations, midRun, recrashed, quarantined, acked, lost)
	}()
	for it := range iterations {
		seed := uint64(it)
		rng := rand.New(rand.NewPCG(seed, 1))
		mem := faultfs.New()
		s, err := Open(memPath, Options{FS: mem, MaxGroupBytes: 1024 + rng.IntN(4096)})
		if err != nil {
			t.Fatal(err)
		}
		crashed := mem.CrashAt(1+rng.IntN(250), rand.New(rand.NewPCG(seed, 2)))
		w := newWorkload(t, s, seed, 1+rng.IntN(4), false)
		for i := 0; i < 200 && w.step(); i++ {
		}
		var after *faultfs.FS
		select {
		case after = <-crashed:
			midRun++
		default:
			after = mem.Crash(rand.New(rand.NewPCG(seed, 3)))
		}
		s.Close()
		ok, notStored, unknown := w.waitAll()
		acked, lost = acked+ok, lost+notStored+unknown
		if rng.IntN(3) == 0 { // a second cut, during recovery
			again := after.CrashAt(1+rng.IntN(8), rand.New(rand.NewPCG(seed, 4)))
			if s2, err := Open(memPath, Options{FS: after}); err == nil {
				s2.Close()
			}
			select {
			case after = <-again:
				recrashed++
			default:
				after.CrashAt(0, nil)
			}
		}
		s3, err := Open(memPath, Options{FS: after})
		if err != nil {
			t.Fatalf("seed %d: reopen after a power cut: %v", seed, err)
		}
		w.verify(s3.Recovered(), memRead(t, after, memPath))
		if s3.Recovered().Quarantined != "" {
			quarantined++
		}
		if err := s3.Close(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}

// TestPowerLossCatchesMissingFsync: built with -tags loteria_nofsync (the
// store never syncs), TestPowerLoss must fail: proof that it would catch a
// missing fsync. CI runs it as part of go test ./...
func TestPowerLossCatchesMissingFsync(t *testing.T) {
	if noFsync {
		t.Skip("this binary is the nofsync build under test")
	}
	if testing.Short() {
		t.Skip("builds and runs the store's tests again")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Unavailable(t, "no go command to build the nofsync variant: %v", err)
	}
	dir, _ := filepath.Abs(".")
	cmd := exec.Command(gobin, "test", "-tags", "loteria_nofsync", "-count=1", "-v", "-run", "^(TestPowerLoss|TestNoFsyncWarns)$", ".")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go test -tags loteria_nofsync -run ^(TestPowerLoss|TestNoFsyncWarns)$: %v after %s", err, time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "--- FAIL: TestPowerLoss") {
		t.Fatalf("without fsync the power-loss test must fail, and it did not (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestNoFsyncWarns") {
		t.Fatalf("the nofsync build does not warn at open:\n%s", out)
	}
	if i := strings.Index(string(out), "--- FAIL: TestPowerLoss"); i >= 0 {
		t.Logf("it failed as it must:\n%s", firstLines(string(out[i:]), 4))
	}
}

// TestNoFsyncWarns: a store built without fsync says so, loudly, at open.
func TestNoFsyncWarns(t *testing.T) {
	if !noFsync {
		t.Skip("only for the nofsync build")
	}
	var logs testenv.Buffer
	s := openT(t, memPath, Options{FS: faultfs.New(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closeT(t, s)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "NEVER SYNCS") {
		t.Fatalf("no warning at open:\n%s", logs.String())
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestCloseCutsAhead: Close cuts the zeros the writer keeps ahead of both
// files' ends and syncs the cut; when that fails, Close says so, and what
// was acknowledged is all there after a power cut and a reopen.
func TestCloseCutsAhead(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   faultfs.Op
		file string
	}{
		{"clean", 0, ""},
		{"bets file cut", faultfs.OpTruncate, memPath},
		{"bets file sync", faultfs.OpSync, memPath},
		{"journal cut", faultfs.OpTruncate, journalPath(memPath)},
		{"journal sync", faultfs.OpSync, journalPath(memPath)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mem := faultfs.New()
			s := openT(t, memPath, Options{FS: mem})
			for i := range 20 {
				must(t)(submit(s, 1, int64(i*3), int64(i*3), 3))
			}
			open := memRead(t, mem, memPath)
			if len(open) <= int(s.Size()) {
				t.Fatalf("open bets file of %d bytes for %d stored: no zeros kept ahead", len(open), s.Size())
			}
			if tt.op != 0 {
				mem.Inject(faultfs.Fault{Op: tt.op, Name: tt.file, Nth: 1, Err: syscall.EIO})
			}
			err := s.Close()
			if tt.op == 0 {
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{memPath, journalPath(memPath)} {
					if b := memRead(t, mem, name); len(b) == 0 || b[len(b)-1] == 0 && name == memPath {
						t.Fatalf("%s holds %d bytes ending in a zero once closed", name, len(b))
					}
				}
				if got := memRead(t, mem, memPath); !bytes.Equal(got, open[:s.Size()]) {
					t.Fatalf("the closed bets file is not the open one's rows")
				}
			} else if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "zeros") {
				t.Fatalf("Close with a failing %s: %v, want the failure", tt.name, err)
			}
			after := mem.Crash(rand.New(rand.NewPCG(7, 7)))
			s2 := openT(t, memPath, Options{FS: after})
			defer closeT(t, s2)
			if r := s2.Recovered(); r.Bets != 60 || r.Agencies[1].Mark != 60 || r.QuarantinedBytes != 0 {
				t.Fatalf("reopened after a power cut: %d bets, mark %d, %d bytes quarantined; want 60, 60, 0", r.Bets, r.Agencies[1].Mark, r.QuarantinedBytes)
			}
		})
	}
}
