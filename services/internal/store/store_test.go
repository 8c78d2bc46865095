package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/loteria/loteria/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rowsOf builds the rows of a batch with fmt (not AppendRow): n bets of
// agency whose documents start at doc0.
func rowsOf(agency, doc0, n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,José %d,Núñez,%d,1999-03-17,%d\n", agency, i, doc0+i, (doc0+i)%10000)
	}
	return b.Bytes()
}

// commitRecord is a commit log record built from its description: the
// offset as 8 bytes little-endian, then the CRC-32C of those 8 bytes.
func commitRecord(off int64) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint64(b, uint64(off))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// commitOffsets decodes every whole record of a commit log, failing on a
// bad checksum.
func commitOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(CommitsPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%12 != 0 {
		t.Fatalf("commit log of %d bytes, not whole records", len(b))
	}
	var offs []int64
	for ; len(b) > 0; b = b[12:] {
		if !bytes.Equal(b[:12], commitRecord(int64(binary.LittleEndian.Uint64(b)))) {
			t.Fatalf("commit log record %x has a bad checksum", b[:12])
		}
		offs = append(offs, int64(binary.LittleEndian.Uint64(b)))
	}
	return offs
}

func openStore(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "bets.csv")
	s := openStore(t, path, Options{})
	if s.Path() != path || s.Size() != 0 {
		t.Fatalf("new store: path %q size %d", s.Path(), s.Size())
	}
	if got := commitOffsets(t, path); fmt.Sprint(got) != "[0]" {
		t.Fatalf("commit log of a new store = %v, want [0]", got)
	}
	a, b := rowsOf(1, 100, 3), rowsOf(2, 200, 1)
	if err := s.Append(ctx, a, 3); err != nil {
		t.Fatal(err)
	}
	if s.Size() != int64(len(a)) {
		t.Fatalf("Size = %d after %d bytes", s.Size(), len(a))
	}
	p, err := s.Submit(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
	g := p.Group()
	if g.Seq != 2 || g.Batches != 1 || g.Bytes != len(b) {
		t.Fatalf("Group = %+v, want the second group with 1 batch of %d bytes", g, len(b))
	}
	// An empty batch and a flush with nothing pending are fine.
	if err := s.Append(ctx, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Submit(b, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if err := s.Append(ctx, b, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	want := string(a) + string(b)
	if got := readFile(t, path); string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if got, want := commitOffsets(t, path), []int64{0, int64(len(a)), int64(len(a) + len(b))}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commit log = %v, want %v", got, want)
	}

	// Reopen: everything is there, the log is compacted, appends follow.
	s = openStore(t, path, Options{})
	if s.Size() != int64(len(want)) {
		t.Fatalf("reopened Size = %d, want %d", s.Size(), len(want))
	}
	if got := commitOffsets(t, path); fmt.Sprint(got) != fmt.Sprint([]int64{int64(len(want))}) {
		t.Fatalf("commit log after reopen = %v, want [%d]", got, len(want))
	}
	c := rowsOf(3, 300, 2)
	if err := s.Append(ctx, c, 2); err != nil {
		t.Fatal(err)
	}
	var got []scanned
	if err := s.Scan(func(a int, d []byte, n int) error {
		got = append(got, scanned{a, string(d), n})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantScan := []scanned{{1, "100", 100}, {1, "101", 101}, {1, "102", 102}, {2, "200", 200}, {3, "300", 300}, {3, "301", 301}}
	if fmt.Sprint(got) != fmt.Sprint(wantScan) {
		t.Fatalf("Scan = %v, want %v", got, wantScan)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bets := testenv.ReadStore(t, path)
	if len(bets) != 6 || bets[0].First != "José 0" || bets[5].Document != "301" {
		t.Fatalf("encoding/csv reads %+v", bets)
	}
}

func TestFlushWaitsForEarlierBatches(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "bets.csv"), Options{})
	defer s.Close()
	var ps []*Pending
	want := 0
	for i := 0; i < 20; i++ {
		want += len(rowsOf(1, i*10, 2))
		p, err := s.Submit(rowsOf(1, i*10, 2), 2)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		select {
		case <-p.Done():
			if p.Err() != nil {
				t.Fatalf("batch %d: %v", i, p.Err())
			}
		default:
			t.Fatalf("batch %d submitted before Flush is not done when Flush returns", i)
		}
	}
	if s.Size() != int64(want) {
		t.Fatalf("Size = %d, want %d", s.Size(), want)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	p := &Pending{done: make(chan struct{})} // never completed
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
}

// TestGroupCommitConcurrent: many goroutines append at once; every row is
// stored exactly once, each batch's rows stay together and in order, each
// goroutine's batches keep their order, and the group infos, the commit log
// and the metrics all agree with what was written.
func TestGroupCommitConcurrent(t *testing.T) {
	const (
		writers = 24
		batches = 30
	)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bets.csv")
	reg := prometheus.NewRegistry()
	s := openStore(t, path, Options{Registerer: reg})

	type result struct {
		g, b  int
		bytes int
		group GroupInfo
	}
	results := make([][]result, writers)
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Go(func() {
			for b := 0; b < batches; b++ {
				n := 1 + (g+b)%7
				rows := rowsOf(1+g%5, g*100000+b*100, n)
				p, err := s.Submit(rows, n)
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				results[g] = append(results[g], result{g, b, len(rows), p.Group()})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Read the file back with encoding/csv and locate every row.
	bets := testenv.ReadStore(t, path)
	type key struct{ g, b, i int }
	pos := map[key]int{}
	for idx, bet := range bets {
		doc, err := strconv.Atoi(bet.Document)
		if err != nil {
			t.Fatalf("row %d: document %q", idx, bet.Document)
		}
		k := key{doc / 100000, doc % 100000 / 100, doc % 100}
		if _, dup := pos[k]; dup {
			t.Fatalf("row %+v stored twice", k)
		}
		pos[k] = idx
		if bet.Agency != 1+k.g%5 || bet.First != "José "+strconv.Itoa(k.i) {
			t.Fatalf("row %d = %+v, not what writer %d wrote", idx, bet, k.g)
		}
	}
	total := 0
	for g := 0; g < writers; g++ {
		prevEnd := -1
		for b := 0; b < batches; b++ {
			n := 1 + (g+b)%7
			total += n
			start, ok := pos[key{g, b, 0}]
			if !ok {
				t.Fatalf("batch %d of writer %d is missing", b, g)
			}
			for i := 1; i < n; i++ {
				if p, ok := pos[key{g, b, i}]; !ok || p != start+i {
					t.Fatalf("batch %d of writer %d: row %d at %d (present %v), want %d: batch not contiguous", b, g, i, p, ok, start+i)
				}
			}
			if start < prevEnd {
				t.Fatalf("writer %d: batch %d stored before batch %d", g, b, b-1)
			}
			prevEnd = start + n
		}
	}
	if len(bets) != total {
		t.Fatalf("%d rows stored, %d appended", len(bets), total)
	}

	// Group infos: every batch of a group reports the same group, and a
	// group's Batches and Bytes are the count and sum of its batches.
	type groupSum struct{ batches, bytes int }
	groups := map[uint64]GroupInfo{}
	sums := map[uint64]groupSum{}
	for _, rs := range results {
		for _, r := range rs {
			if prev, ok := groups[r.group.Seq]; ok && prev != r.group {
				t.Fatalf("group %d reported as %+v and %+v", r.group.Seq, prev, r.group)
			}
			groups[r.group.Seq] = r.group
			gs := sums[r.group.Seq]
			gs.batches++
			gs.bytes += r.bytes
			sums[r.group.Seq] = gs
		}
	}
	maxBatches := 0
	for seq, gi := range groups {
		if seq < 1 || gi.Batches != sums[seq].batches || gi.Bytes != sums[seq].bytes {
			t.Fatalf("group %+v, but its batches add up to %+v", gi, sums[seq])
		}
		maxBatches = max(maxBatches, gi.Batches)
	}
	t.Logf("%d batches of %d writers in %d group commits (largest %d batches)", writers*batches, writers, len(groups), maxBatches)

	// The commit log has one increasing record per group, the last at the
	// file's size.
	offs := commitOffsets(t, path)
	size := int64(len(readFile(t, path)))
	if len(offs) != len(groups)+1 || offs[0] != 0 || offs[len(offs)-1] != size {
		t.Fatalf("commit log has %d records ending at %d; want %d ending at %d", len(offs), offs[len(offs)-1], len(groups)+1, size)
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] <= offs[i-1] {
			t.Fatalf("commit log not increasing: %v", offs)
		}
	}

	// Metrics.
	checkMetrics(t, reg, size, uint64(len(groups)), float64(writers*batches))
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func checkMetrics(t *testing.T, reg *prometheus.Registry, size int64, groups uint64, batches float64) {
	t.Helper()
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
	mfs := gather(t, reg)
	m := func(name string) *dto.Metric {
		mf, ok := mfs[name]
		if !ok || len(mf.GetMetric()) != 1 {
			t.Fatalf("metric %s missing", name)
		}
		return mf.GetMetric()[0]
	}
	if got := m("loteria_store_bytes_written_total").GetCounter().GetValue(); got != float64(size) {
		t.Errorf("loteria_store_bytes_written_total = %v, want %d", got, size)
	}
	if got := m("loteria_store_size_bytes").GetGauge().GetValue(); got != float64(size) {
		t.Errorf("loteria_store_size_bytes = %v, want %d", got, size)
	}
	gb := m("loteria_store_group_commit_batches").GetHistogram()
	if gb.GetSampleCount() != groups || gb.GetSampleSum() != batches {
		t.Errorf("loteria_store_group_commit_batches: %d groups, %v batches; want %d, %v", gb.GetSampleCount(), gb.GetSampleSum(), groups, batches)
	}
	if got := m("loteria_store_fsync_duration_seconds").GetHistogram().GetSampleCount(); got != groups {
		t.Errorf("loteria_store_fsync_duration_seconds count = %d, want %d", got, groups)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bets.csv")
	reg := prometheus.NewRegistry()
	s := openStore(t, path, Options{Registerer: reg})
	a, b := rowsOf(1, 1, 4), rowsOf(2, 2, 1)
	for _, r := range [][]byte{a, b} {
		if err := s.Append(ctx, r, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil { // a flush alone is no group of batches
		t.Fatal(err)
	}
	checkMetrics(t, reg, int64(len(a)+len(b)), 2, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A reopened store reports the size it recovered and has written nothing.
	reg = prometheus.NewRegistry()
	s = openStore(t, path, Options{Registerer: reg})
	defer s.Close()
	if got := testutil.ToFloat64(s.m.size); got != float64(len(a)+len(b)) {
		t.Fatalf("size gauge after reopen = %v, want %d", got, len(a)+len(b))
	}
	if got := testutil.ToFloat64(s.m.bytes); got != 0 {
		t.Fatalf("bytes written after reopen = %v, want 0", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 4 {
		t.Fatalf("%d series registered (%v), want 4", n, err)
	}
	// No registerer: no panic, nothing registered anywhere.
	s2 := openStore(t, filepath.Join(t.TempDir(), "b.csv"), Options{})
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecovery simulates crashes at every point of a group commit by
// damaging the files of a closed store, then checks that Open cuts the
// bets file back to the last commit and that the store works afterwards.
func TestRecovery(t *testing.T) {
	a, b := rowsOf(1, 100, 3), rowsOf(2, 200, 2)
	ab := string(a) + string(b)
	torn := []byte("3,Ana María,Pé") // half a row
	more := rowsOf(3, 300, 4)        // whole rows never committed
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string // the bets file after recovery
	}{
		{"untouched", func(*testing.T, string) {}, ab},
		{"half a row appended", func(t *testing.T, p string) { appendFile(t, p, torn) }, ab},
		{"half a UTF-8 character appended", func(t *testing.T, p string) { appendFile(t, p, []byte("3,\xc3")) }, ab},
		{"whole rows appended but never committed", func(t *testing.T, p string) { appendFile(t, p, more) }, ab},
		{"rows and a torn row appended", func(t *testing.T, p string) { appendFile(t, p, append(append([]byte{}, more...), torn...)) }, ab},
		{"torn commit record", func(t *testing.T, p string) {
			appendFile(t, p, more)
			appendFile(t, CommitsPath(p), commitRecord(int64(len(ab) + len(more)))[:7])
		}, ab},
		{"torn commit record, no data", func(t *testing.T, p string) {
			appendFile(t, CommitsPath(p), commitRecord(int64(len(ab)))[:11])
		}, ab},
		{"garbage commit record", func(t *testing.T, p string) {
			appendFile(t, p, more)
			appendFile(t, CommitsPath(p), []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"))
		}, ab},
		{"last commit record zeroed", func(t *testing.T, p string) {
			c := readFile(t, CommitsPath(p))
			clear(c[len(c)-12:])
			if err := os.WriteFile(CommitsPath(p), c, 0o644); err != nil {
				t.Fatal(err)
			}
		}, string(a)},
		{"last commit record lost, torn row", func(t *testing.T, p string) {
			c := readFile(t, CommitsPath(p))
			if err := os.WriteFile(CommitsPath(p), c[:len(c)-12+3], 0o644); err != nil {
				t.Fatal(err)
			}
			appendFile(t, p, torn)
		}, string(a)},
		{"crash before the first commit record", func(t *testing.T, p string) {
			if err := os.WriteFile(CommitsPath(p), commitRecord(0), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"no commit log: seed-written file keeps whole lines", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			appendFile(t, p, torn)
		}, ab},
		{"no commit log, whole lines only", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			appendFile(t, p, more)
		}, ab + string(more)},
		{"no commit log, CRLF lines", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			if err := os.WriteFile(p, []byte("1,A,B,1,2000-01-01,1\r\n2,C,D,2,2000-01-01,2\r\n3,E"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "1,A,B,1,2000-01-01,1\r\n2,C,D,2,2000-01-01,2\r\n"},
		{"no commit log, no newline at all", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			if err := os.WriteFile(p, torn, 0o644); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"no commit log, big file with a torn tail", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			big := rowsOf(4, 1000000, 5000) // > 64 KiB: the backwards scan crosses chunks
			if err := os.WriteFile(p, append(append([]byte{}, big...), bytes.Repeat([]byte("x"), 70<<10)...), 0o644); err != nil {
				t.Fatal(err)
			}
		}, string(rowsOf(4, 1000000, 5000))},
		{"no files at all", func(t *testing.T, p string) {
			os.Remove(CommitsPath(p))
			os.Remove(p)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "bets.csv")
			s := openStore(t, path, Options{})
			for _, r := range [][]byte{a, b} {
				if err := s.Append(ctx, r, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path)

			s = openStore(t, path, Options{})
			if got := readFile(t, path); string(got) != tt.want {
				t.Fatalf("after recovery the file holds %d bytes, want %d:\n%q", len(got), len(tt.want), clipTail(got))
			}
			if s.Size() != int64(len(tt.want)) {
				t.Fatalf("Size = %d, want %d", s.Size(), len(tt.want))
			}
			if got := commitOffsets(t, path); len(got) == 0 || got[len(got)-1] != int64(len(tt.want)) {
				t.Fatalf("commit log after recovery = %v, want it to end at %d", got, len(tt.want))
			}
			// The store goes on from there, and a second crash-free
			// reopen keeps everything.
			c := rowsOf(5, 500, 2)
			if err := s.Append(ctx, c, 2); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, path, Options{})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); string(got) != tt.want+string(c) {
				t.Fatalf("after an append and a reopen the file holds %q", clipTail(got))
			}
		})
	}
}

func clipTail(b []byte) []byte {
	if len(b) > 300 {
		return b[len(b)-300:]
	}
	return b
}

// TestRecoveryRefuses: when the files contradict each other, Open fails
// and leaves the bets file as it was.
func TestRecoveryRefuses(t *testing.T) {
	a := rowsOf(1, 100, 3)
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"bets file cut below the last commit", func(t *testing.T, p string) {
			if err := os.Truncate(p, int64(len(a))-10); err != nil {
				t.Fatal(err)
			}
		}},
		{"bets file removed, commit log kept", func(t *testing.T, p string) { os.Remove(p) }},
		{"commit record claiming more than the file", func(t *testing.T, p string) {
			appendFile(t, CommitsPath(p), commitRecord(int64(len(a))+100))
		}},
		{"commit log with no valid record", func(t *testing.T, p string) {
			if err := os.WriteFile(CommitsPath(p), bytes.Repeat([]byte{0xAB}, 24), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		// A commit log too short for one record cannot come from a crash
		// (it is only ever replaced whole, by rename): it is damage, and
		// treating it as "nothing committed" would empty the bets file.
		{"commit log shorter than one record", func(t *testing.T, p string) {
			if err := os.WriteFile(CommitsPath(p), []byte{1, 2, 3, 4, 5}, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty commit log", func(t *testing.T, p string) {
			if err := os.WriteFile(CommitsPath(p), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			s := openStore(t, path, Options{})
			if err := s.Append(context.Background(), a, 3); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path)
			before, _ := os.ReadFile(path)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				after, _ := os.ReadFile(path)
				t.Fatalf("Open succeeded; the bets file went from %d to %d bytes", len(before), len(after))
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatalf("failed Open changed the bets file from %d to %d bytes", len(before), len(after))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "bets.csv"), Options{}); err == nil {
		t.Fatal("Open below a regular file succeeded")
	}
}

// TestWriteFailure: once a group fails, its batches and every later one
// fail, and nothing of them is acknowledged.
func TestWriteFailure(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "bets.csv"), Options{})
	if err := s.Append(ctx, rowsOf(1, 1, 1), 1); err != nil {
		t.Fatal(err)
	}
	size := s.Size()
	s.data.Close() // the disk goes away
	if err := s.Append(ctx, rowsOf(1, 2, 1), 1); err == nil {
		t.Fatal("Append on a closed file succeeded")
	}
	if err := s.Append(ctx, rowsOf(1, 3, 1), 1); err == nil {
		t.Fatal("Append after a failed group succeeded")
	}
	if s.Size() != size {
		t.Fatalf("Size moved from %d to %d though nothing was committed", size, s.Size())
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close of a store whose file was closed reported no error")
	}
}

// TestSubmitWithFullQueue: with a tiny queue, submitters block on it while
// the writer commits. The writer must keep draining it; if a submitter
// blocked on the queue holds a lock the writer needs, everything stops.
func TestSubmitWithFullQueue(t *testing.T) {
	const (
		writers = 8
		batches = 60
	)
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "bets.csv"), Options{QueueLen: 1})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Go(func() {
			for b := 0; b < batches; b++ {
				if err := s.Append(ctx, rowsOf(1, g*1000+b, 1), 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var stuck []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "store.(*Store)") {
				stuck = append(stuck, g)
			}
		}
		// The goroutines cannot be stopped: the test binary's leak check
		// will also report them.
		t.Fatalf("deadlock: %d appends of %d writers did not finish in 20s; store goroutines:\n%s",
			writers*batches, writers, strings.Join(stuck, "\n\n"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := 0
	for g := 0; g < writers; g++ {
		for b := 0; b < batches; b++ {
			want += len(rowsOf(1, g*1000+b, 1))
		}
	}
	if s.Size() != int64(want) {
		t.Fatalf("Size = %d after appending %d bytes", s.Size(), want)
	}
}

// batchRows is a realistic ~8 KiB batch of rows (what one full agency frame
// becomes).
func batchRows() ([]byte, int) {
	var rows []byte
	n := 0
	for len(rows) < 8<<10-64 {
		rows = AppendRow(rows, 1+n%5, "María José", "Ibáñez Güemes", strconv.Itoa(20000000+n*7919), "1999-03-17", n%10000)
		n++
	}
	return rows, n
}

func BenchmarkStoreAppend(b *testing.B) {
	rows, n := batchRows()
	b.Run("sequential", func(b *testing.B) {
		s, err := Open(filepath.Join(b.TempDir(), "bets.csv"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		b.ReportAllocs()
		b.SetBytes(int64(len(rows)))
		for b.Loop() {
			if err := s.Append(ctx, rows, n); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "bets/s")
	})
	for _, par := range []int{4, 32} {
		b.Run(fmt.Sprintf("parallel-%dxGOMAXPROCS", par), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bets.csv"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var mu sync.Mutex
			groups := map[uint64]bool{}
			b.ReportAllocs()
			b.SetBytes(int64(len(rows)))
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				seen := map[uint64]bool{}
				for pb.Next() {
					p, err := s.Submit(rows, n)
					if err != nil {
						b.Error(err)
						return
					}
					if err := p.Wait(ctx); err != nil {
						b.Error(err)
						return
					}
					seen[p.Group().Seq] = true
				}
				mu.Lock()
				for k := range seen {
					groups[k] = true
				}
				mu.Unlock()
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "bets/s")
			if len(groups) > 0 {
				b.ReportMetric(float64(b.N)/float64(len(groups)), "batches/commit")
			}
		})
	}
}
