package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loteria/loteria/services/internal/ledger"
)

func TestStoreLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "bets.csv")
	reg := prometheus.NewPedanticRegistry()
	s := openT(t, path, Options{Registerer: reg})
	rec := s.Recovered()
	if rec.Round != 1 || rec.Bets != 0 || rec.Bytes != 0 || len(rec.Agencies) != 0 || rec.Quarantined != "" {
		t.Fatalf("new store recovered %+v", rec)
	}
	r1 := must(t)(submit(s, 1, 0, 0, 3))
	r2 := must(t)(submit(s, 2, ledger.AtMark, 0, 2))
	if r1.Stored != 3 || r2.Stored != 2 || r1.Pos != 0 || r2.Pos <= r1.Pos || r1.Round != 1 {
		t.Fatalf("receipts %+v %+v", r1, r2)
	}
	if got := s.Agency(1); got.Mark != 3 {
		t.Fatalf("agency 1 after 3 bets: %+v", got)
	}
	open, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// While the store is open its files end in the zeros the writer keeps
	// ahead; Close cuts them, leaving the rows alone.
	if int64(len(open)) < s.Size() || !allZero(open[s.Size():]) || len(open) == int(s.Size()) {
		t.Fatalf("open bets file of %d bytes for a store of %d: want the rows, then zeros", len(open), s.Size())
	}
	data := open[:s.Size()]
	want := []betID{{1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}}
	if got := storedBets(t, data); !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	if int64(len(data)) != s.Size() || r2.Pos != int64(len(data))-(int64(len(data))-r2.Pos) {
		t.Fatalf("size %d, file %d", s.Size(), len(data))
	}
	if v := testutil.ToFloat64(s.m.size); v != float64(len(data)) {
		t.Fatalf("loteria_store_size_bytes = %v, want %d", v, len(data))
	}
	if v := testutil.ToFloat64(s.m.failed); v != 0 {
		t.Fatalf("loteria_store_failed = %v", v)
	}
	closeT(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, name := range []string{path, journalPath(path)} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || b[len(b)-1] == 0 && name == path {
			t.Fatalf("%s ends in a zero once closed (%d bytes)", name, len(b))
		}
	}
	if closed, _ := os.ReadFile(path); !bytes.Equal(closed, data) {
		t.Fatalf("the closed bets file is not the open one's rows: %d bytes, want %d", len(closed), len(data))
	}
	if _, err := s.Begin(1, 3, 1); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("Begin after Close: %v, want ErrClosed", err)
	}

	s = openT(t, path, Options{})
	defer closeT(t, s)
	rec = s.Recovered()
	if rec.Bets != 5 || rec.RoundBets != 5 || rec.Bytes != int64(len(data)) || rec.Agencies[1].Mark != 3 || rec.Agencies[2].Mark != 2 {
		t.Fatalf("reopened: %+v", rec)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	path := filepath.Join(dir, "bets.csv")
	s := openT(t, path, Options{})
	must(t)(submit(s, 1, 0, 0, 1))
	closeT(t, s)
	// A tail past the last commit makes recovery write a quarantine file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("1,torn")
	f.Close()
	s = openT(t, path, Options{})
	closeT(t, s)
	if s.Recovered().Quarantined == "" {
		t.Fatal("no quarantine file written")
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 { // bets, journal, lock, quarantine
		t.Fatalf("store directory holds %d files", len(entries))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}

// TestDedupe: resends wholly below the mark, overlapping, gaps, AtMark,
// rejects moving the mark, and a conflict, each checked against the
// stored rows and the durable marks.
func TestDedupe(t *testing.T) {
	type step struct {
		op       string // submit, reject, conflict
		agency   int
		at, from int64
		n        int
		wantErr  error // errors.Is, or a *GapError by type
		gap      bool
		stored   int
	}
	tests := []struct {
		name     string
		steps    []step
		want     []betID
		mark     int64
		rejected int64
	}{
		{"in order", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 3, stored: 3}, {op: "submit", agency: 1, at: 3, from: 3, n: 2, stored: 2}},
			[]betID{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}}, 5, 0},
		{"resend wholly below", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 3, stored: 3}, {op: "submit", agency: 1, at: 0, from: 0, n: 3, stored: 0}, {op: "submit", agency: 1, at: 1, from: 1, n: 2, stored: 0}},
			[]betID{{1, 0}, {1, 1}, {1, 2}}, 3, 0},
		{"overlapping", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 3, stored: 3}, {op: "submit", agency: 1, at: 1, from: 1, n: 4, stored: 2}},
			[]betID{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}}, 5, 0},
		{"gap", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 2, stored: 2}, {op: "submit", agency: 1, at: 3, from: 3, n: 1, gap: true}},
			[]betID{{1, 0}, {1, 1}}, 2, 0},
		{"at mark", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 2, stored: 2}, {op: "submit", agency: 1, at: ledger.AtMark, from: 2, n: 2, stored: 2}},
			[]betID{{1, 0}, {1, 1}, {1, 2}, {1, 3}}, 4, 0},
		{"reject moves the mark", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 2, stored: 2}, {op: "reject", agency: 1, at: 2, from: 2, n: 3}, {op: "submit", agency: 1, at: 5, from: 5, n: 1, stored: 1}},
			[]betID{{1, 0}, {1, 1}, {1, 5}}, 6, 3},
		{"reject overlapping the mark", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 2, stored: 2}, {op: "reject", agency: 1, at: 1, from: 1, n: 3}},
			[]betID{{1, 0}, {1, 1}}, 4, 2},
		{"reject wholly below", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 2, stored: 2}, {op: "reject", agency: 1, at: 0, from: 0, n: 2}},
			[]betID{{1, 0}, {1, 1}}, 2, 0},
		{"conflict", []step{{op: "conflict", agency: 1, at: 0, from: 0, n: 2, wantErr: ledger.ErrConflict}},
			[]betID{{1, 0}, {1, 1}}, 2, 0},
		{"agencies apart", []step{{op: "submit", agency: 1, at: 0, from: 0, n: 1, stored: 1}, {op: "submit", agency: 2, at: 0, from: 0, n: 1, stored: 1}, {op: "submit", agency: 2, at: 0, from: 0, n: 1, stored: 0}},
			[]betID{{1, 0}, {2, 0}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			s := openT(t, path, Options{})
			for i, st := range tt.steps {
				switch st.op {
				case "submit":
					r, err := submit(s, st.agency, st.at, st.from, st.n)
					var gap *ledger.GapError
					if st.gap {
						if !errors.As(err, &gap) || gap.Expected != 2 || gap.Got != st.at {
							t.Fatalf("step %d: %v, want a gap error expecting bet 2", i, err)
						}
						continue
					}
					must(t)(r, err)
					if r.Stored != st.stored {
						t.Fatalf("step %d stored %d, want %d", i, r.Stored, st.stored)
					}
				case "reject":
					b, err := s.Begin(st.agency, st.at, st.n)
					if err != nil {
						t.Fatal(err)
					}
					b.Add(testBet(st.agency, st.from))
					must(t)(b.Reject())
				case "conflict":
					// Two connections of one agency build batches at once:
					// the second to submit finds the mark moved.
					b1, err1 := s.Begin(st.agency, st.at, st.n)
					b2, err2 := s.Begin(st.agency, st.at, st.n)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					for j := range st.n {
						b1.Add(testBet(st.agency, st.from+int64(j)))
						b2.Add(testBet(st.agency, st.from+int64(j)))
					}
					must(t)(b1.Submit())
					if _, err := b2.Submit(); !errors.Is(err, st.wantErr) {
						t.Fatalf("second submit: %v, want %v", err, st.wantErr)
					}
					b2.Discard()
				}
			}
			a := s.Agency(tt.want[0].agency)
			closeT(t, s)
			data, _ := os.ReadFile(path)
			if got := storedBets(t, data); !slices.Equal(got, tt.want) {
				t.Fatalf("stored %v, want %v", got, tt.want)
			}
			if a.Mark != tt.mark || a.Rejected != tt.rejected {
				t.Fatalf("agency state %+v, want mark %d rejected %d", a, tt.mark, tt.rejected)
			}
			s = openT(t, path, Options{})
			defer closeT(t, s)
			if got := s.Recovered().Agencies[tt.want[0].agency]; got.Mark != tt.mark || got.Rejected != tt.rejected {
				t.Fatalf("after reopen %+v, want mark %d rejected %d", got, tt.mark, tt.rejected)
			}
		})
	}
}

// TestResendWaitsForFirstCopy: a batch wholly below the mark completes
// only once the copy queued before it is durable.
func TestResendWaitsForFirstCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	defer closeT(t, s)
	first, err := submit(s, 1, 0, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := submit(s, 1, 0, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	<-dup.Done()
	select {
	case <-first.Done():
	default:
		t.Fatal("the resend completed before the first copy")
	}
	if dup.Err() != nil || dup.Stored != 0 || first.Err() != nil || first.Stored != 5 {
		t.Fatalf("first %v/%d, resend %v/%d", first.Err(), first.Stored, dup.Err(), dup.Stored)
	}
}

func TestBatchMisuse(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "bets.csv"), Options{MaxGroupBytes: 200})
	defer closeT(t, s)
	tests := []struct {
		name string
		run  func() error
	}{
		{"agency 0", func() error { _, err := s.Begin(0, 0, 1); return err }},
		{"negative start", func() error { _, err := s.Begin(1, -5, 1); return err }},
		{"negative count", func() error { _, err := s.Begin(1, 0, -1); return err }},
		{"fewer bets added than announced", func() error {
			b, _ := s.Begin(1, 0, 2)
			b.Add(testBet(1, 0))
			_, err := b.Submit()
			return err
		}},
		{"batch larger than a group", func() error { _, err := submit(s, 1, 0, 0, 10); return err }},
		{"submitted twice", func() error {
			b, _ := s.Begin(1, 0, 0)
			if _, err := b.Submit(); err != nil {
				return nil
			}
			_, err := b.Submit()
			return err
		}},
		{"empty fingerprint", func() error { _, err := s.Claim(1, ""); return err }},
		{"draw of the open round", func() error { _, err := s.RecordDraw(ledger.Draw{Round: 1, Digest: digest("x")}); return err }},
		{"draw without digest", func() error { _, err := s.RecordDraw(ledger.Draw{Round: 1}); return err }},
		{"close for no reason", func() error { _, err := s.CloseRound(0); return err }},
		{"scan of a round to come", func() error { return s.Scan(2, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if a := s.Agency(1); a.Mark != 0 {
		t.Fatalf("refused batches moved the mark: %+v", a)
	}
}

// TestRoundsEndsDraws: ENDs, closes, draws and claims are durable and
// replayed; Scan reads each round's bets.
func TestRoundsEndsDraws(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	must(t)(s.Claim(1, "aa11"))
	must(t)(s.Claim(1, "aa11"))
	if _, err := s.Claim(1, "bb22"); !errors.Is(err, ledger.ErrFingerprint) {
		t.Fatalf("another fingerprint: %v", err)
	}
	must(t)(submit(s, 1, 0, 0, 3))
	must(t)(submit(s, 2, 0, 0, 2))
	e1 := must(t)(s.End(1))
	if e1.Round != 1 {
		t.Fatalf("END receipt %+v", e1)
	}
	must(t)(s.End(0))
	// A batch queued before the close is in round 1, the one after in 2.
	b1, err := submit(s, 2, 2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := s.CloseRound(ledger.CloseBarrier)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := submit(s, 2, 3, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(b1, nil)
	must(t)(c1, nil)
	must(t)(b2, nil)
	if b1.Round != 1 || b2.Round != 2 || c1.Round != 1 || c1.Stored != 6 || c1.Pos != b2.Pos {
		t.Fatalf("batch before close %+v, close %+v, batch after %+v", b1, c1, b2)
	}
	if b2.Group.Seq == c1.Group.Seq {
		t.Fatal("the batch after the close shared the close's commit")
	}
	d := ledger.Draw{Round: 1, Number: 7574, Bets: 6, Winners: 0, Digest: digest("round 1")}
	must(t)(s.RecordDraw(d))
	if _, err := s.RecordDraw(d); err == nil {
		t.Fatal("a second draw of round 1 was taken")
	}
	e2 := must(t)(s.End(2))
	if e2.Round != 2 {
		t.Fatalf("END in round 2: %+v", e2)
	}
	count := func(round int) (n int) {
		t.Helper()
		if err := s.Scan(round, func(int, []byte, int) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(1) != 6 || count(2) != 2 {
		t.Fatalf("scan: round 1 %d bets, round 2 %d", count(1), count(2))
	}
	closeT(t, s)

	s = openT(t, path, Options{})
	defer closeT(t, s)
	rec := s.Recovered()
	want := ledger.Recovery{
		Round: 2,
		Rounds: []ledger.ClosedRound{{Round: 1, Reason: ledger.CloseBarrier, Start: 0, Cut: c1.Pos, Bets: 6,
			Ends: []ledger.End{{Round: 1, Agency: 1, Mark: 3}, {Round: 1, Agency: 0}}, Draw: &d}},
		Ends: []ledger.End{{Round: 2, Agency: 2, Mark: 5}},
		Agencies: map[int]ledger.AgencyState{
			1: {Mark: 3, Fingerprint: "aa11", LastEnd: ledger.End{Round: 1, Agency: 1, Mark: 3}},
			2: {Mark: 5, LastEnd: ledger.End{Round: 2, Agency: 2, Mark: 5}},
		},
		Bets: 8, RoundBets: 2, Bytes: rec.Bytes,
	}
	if !reflect.DeepEqual(*rec, want) {
		t.Fatalf("recovered\n%+v\nwant\n%+v", *rec, want)
	}
	if count(1) != 6 || count(2) != 2 {
		t.Fatalf("after reopen, scan: round 1 %d bets, round 2 %d", count(1), count(2))
	}
	if _, err := s.Claim(1, "bb22"); !errors.Is(err, ledger.ErrFingerprint) {
		t.Fatalf("another fingerprint after reopen: %v", err)
	}
}

// TestGroupCommit: batches queued while the writer is busy share a commit,
// completed in order.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{})
	const agencies, batches = 8, 40
	var wg sync.WaitGroup
	recs := make([][]*ledger.Receipt, agencies)
	for a := range agencies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				r, err := submit(s, a+1, int64(i*5), int64(i*5), 5)
				if err != nil {
					t.Error(err)
					return
				}
				recs[a] = append(recs[a], r)
			}
		}()
	}
	wg.Wait()
	grouped := false
	for a := range agencies {
		for i, r := range recs[a] {
			if err := r.Wait(); err != nil {
				t.Fatal(err)
			}
			if r.Group.Batches > 1 {
				grouped = true
			}
			if i > 0 && r.Pos <= recs[a][i-1].Pos {
				t.Fatalf("agency %d: batch %d stored before batch %d", a+1, i, i-1)
			}
		}
	}
	closeT(t, s)
	if !grouped {
		t.Log("no two batches shared a commit (a very fast disk?)")
	}
	data, _ := os.ReadFile(path)
	got := storedBets(t, data)
	if len(got) != agencies*batches*5 {
		t.Fatalf("%d bets stored, want %d", len(got), agencies*batches*5)
	}
	next := map[int]int64{}
	for _, id := range got {
		if id.index != next[id.agency] {
			t.Fatalf("agency %d: bet %d stored where bet %d was due", id.agency, id.index, next[id.agency])
		}
		next[id.agency]++
	}
}

// TestAllocsPerBatch holds Begin + Add + Submit to a few allocations per
// batch whatever its size: none per bet.
func TestAllocsPerBatch(t *testing.T) {
	for _, n := range []int{10, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := openT(t, filepath.Join(t.TempDir(), "bets.csv"), Options{Discard: true})
			defer closeT(t, s)
			bets := make([]ledger.Bet, n)
			for i := range bets {
				bets[i] = testBet(1, int64(i))
			}
			from := int64(0)
			allocs := testing.AllocsPerRun(200, func() {
				b, err := s.Begin(1, from, n)
				if err != nil {
					t.Fatal(err)
				}
				for _, bet := range bets {
					b.Add(bet)
				}
				r, err := b.Submit()
				if err != nil || r.Wait() != nil {
					t.Fatal(err)
				}
				from += int64(n)
			})
			t.Logf("%d bets a batch: %.1f allocations a batch", n, allocs)
			if allocs > 4 {
				t.Fatalf("%.1f allocations for a batch of %d bets, want at most 4", allocs, n)
			}
		})
	}
}

func TestDiscard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{Discard: true})
	r := must(t)(submit(s, 1, 0, 0, 4))
	if r.Stored != 4 || s.Agency(1).Mark != 4 {
		t.Fatalf("discarding store: %+v, %+v", r, s.Agency(1))
	}
	closeT(t, s)
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("discarding store wrote its bets file: %v %v", st.Size(), err)
	}
}

// TestBatchBuffersBySize: a small batch gets a small buffer even after
// large batches went through the store.
func TestBatchBuffersBySize(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "bets.csv"), Options{Discard: true})
	defer closeT(t, s)
	from := int64(0)
	for range 20 {
		must(t)(submit(s, 1, from, from, 5000))
		from += 5000
	}
	b, err := s.Begin(1, from, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	if c := cap(*b.(*batch).rows); c > 1024 {
		t.Fatalf("a batch of 10 bets holds a buffer of %d bytes after batches of 5,000", c)
	}
}

// TestOpenRefusesADirectory: a STORE_PATH that names a directory is
// refused, saying what to give instead, and nothing is created (the lock
// and the journal went inside the directory, and recovery took its size
// for 4096 bytes of bets without a journal).
func TestOpenRefusesADirectory(t *testing.T) {
	tests := []struct {
		name string
		path func(root string) string
	}{
		{"an existing directory", func(root string) string { return filepath.Join(root, "data") }},
		{"an existing directory with a slash", func(root string) string { return filepath.Join(root, "data") + string(filepath.Separator) }},
		{"a directory that holds a store", func(root string) string { return filepath.Join(root, "held") }},
		{"a new directory (a slash at the end)", func(root string) string { return filepath.Join(root, "new") + string(filepath.Separator) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			closeT(t, openT(t, filepath.Join(root, "held", "bets.csv"), Options{}))
			before := tree(t, root)
			path := tt.path(root)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened a directory as the bets file")
			}
			want := filepath.Join(path, "bets.csv")
			if msg := err.Error(); !strings.Contains(msg, "is a directory") || !strings.Contains(msg, want) {
				t.Errorf("error %q: want it to say the path is a directory and to suggest %s", msg, want)
			}
			if after := tree(t, root); !slices.Equal(before, after) {
				t.Errorf("Open changed the tree: %v, was %v", after, before)
			}
		})
	}
}

// tree lists every path under root.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
