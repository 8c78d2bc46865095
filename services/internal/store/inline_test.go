package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loteria/loteria/services/internal/store/faultfs"
)

// TestInlineCommitsSyncOneFile: a small commit syncs the journal alone
// (its rows are in its record); the bets file is synced once its unsynced
// bytes pass InlineBytes, and at Close (docs/STORE.md, "One sync a
// commit"). With InlineBytes -1 every commit with rows syncs both files.
func TestInlineCommitsSyncOneFile(t *testing.T) {
	for _, tt := range []struct {
		name      string
		inline    int
		dataSyncs func(n int) bool // the bets file's syncs over 20 commits
	}{
		{"default", 0, func(n int) bool { return n == 0 }},
		{"every 1 KiB", 1024, func(n int) bool { return n >= 2 && n <= 6 }},
		{"never inline", -1, func(n int) bool { return n == 20 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mem := faultfs.New()
			s := openT(t, memPath, Options{FS: mem, InlineBytes: tt.inline})
			d0, j0 := mem.Calls(faultfs.OpSync, memPath), mem.Calls(faultfs.OpSync, journalPath(memPath))
			for i := range 20 {
				must(t)(submit(s, 1, int64(i*5), int64(i*5), 5)) // ~230 bytes each
			}
			d, j := mem.Calls(faultfs.OpSync, memPath)-d0, mem.Calls(faultfs.OpSync, journalPath(memPath))-j0
			if j != 20 || !tt.dataSyncs(d) {
				t.Fatalf("20 commits synced the journal %d times and the bets file %d times", j, d)
			}
			closeT(t, s)
			if tt.inline >= 0 && mem.Calls(faultfs.OpSync, memPath)-d0 == d {
				t.Fatal("Close did not sync the bets file's inline commits")
			}
			// What a power cut leaves after a clean Close: every row.
			after := mem.Crash(nil)
			if got := storedBets(t, memRead(t, after, memPath)); len(got) != 100 {
				t.Fatalf("after Close and a power cut the bets file holds %d bets, want 100", len(got))
			}
		})
	}
}

// TestPowerLossRewritesInlineRows: a power cut that loses every unsynced
// write of the bets file loses the rows of the inline commits; their
// records, synced, hold them, and recovery writes them back: every
// acknowledged bet once, in order, read back with encoding/csv. A second
// open has nothing to rewrite.
func TestPowerLossRewritesInlineRows(t *testing.T) {
	for _, tt := range []struct {
		name    string
		inline  int
		batches int
	}{
		{"no sync of the bets file yet", 0, 30},
		{"after syncs of the bets file", 2048, 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mem := faultfs.New()
			s := openT(t, memPath, Options{FS: mem, InlineBytes: tt.inline})
			for i := range tt.batches {
				must(t)(submit(s, 1, int64(i*5), int64(i*5), 5))
			}
			lost := mem.Crash(nil) // only what was synced
			s.Close()
			synced := bytes.LastIndexByte(memRead(t, lost, memPath), '\n') + 1 // rows, then maybe zeros ahead
			if synced >= int(s.Size()) {
				t.Fatalf("setup: the power cut kept %d of %d bytes of the bets file: nothing to rewrite", synced, s.Size())
			}
			s2 := openT(t, memPath, Options{FS: lost, InlineBytes: tt.inline})
			rec := s2.Recovered()
			if rec.Bets != int64(5*tt.batches) || rec.Agencies[1].Mark != int64(5*tt.batches) {
				t.Fatalf("recovered %d bets, mark %d; want %d", rec.Bets, rec.Agencies[1].Mark, 5*tt.batches)
			}
			if s2.rewrittenCommits == 0 || s2.rewritten < s.Size()-int64(synced) {
				t.Fatalf("rewrote %d bytes of %d commits; the power cut lost %d bytes", s2.rewritten, s2.rewrittenCommits, s.Size()-int64(synced))
			}
			// A second power cut right after the open: what the open
			// rewrote was synced before its HEADER said so.
			again := lost.Crash(nil)
			if got := storedBets(t, memRead(t, again, memPath)); len(got) != 5*tt.batches {
				t.Fatalf("a power cut right after the open left %d bets in the bets file, want %d", len(got), 5*tt.batches)
			}
			s2.Close() // its file system lost power
			s2 = openT(t, memPath, Options{FS: again, InlineBytes: tt.inline})
			must(t)(submit(s2, 1, int64(5*tt.batches), int64(5*tt.batches), 1))
			closeT(t, s2)
			got := storedBets(t, memRead(t, again, memPath))
			if len(got) != 5*tt.batches+1 {
				t.Fatalf("the bets file holds %d bets, want %d", len(got), 5*tt.batches+1)
			}
			for i, id := range got {
				if id != (betID{1, int64(i)}) {
					t.Fatalf("row %d is bet %v, want bet %d of agency 1", i, id, i)
				}
			}
			s3 := openT(t, memPath, Options{FS: again})
			defer closeT(t, s3)
			if s3.rewrittenCommits != 0 {
				t.Fatalf("a second open rewrote %d commits", s3.rewrittenCommits)
			}
		})
	}
}

// TestRecoveryRefusesRowsThatAreNotTheData: a ROWS entry whose record's
// checksum holds but whose rows are not the commit's data (another
// checksum) is refused, not written into the bets file.
func TestRecoveryRefusesRowsThatAreNotTheData(t *testing.T) {
	b := makeBase(t, 1<<20)
	last := b.lastRec()
	j := bytes.Clone(b.journal)
	body := j[last.off+8 : last.off+last.len]
	// The rows are the record's last bytes before the entry list's end;
	// change a letter of a name, then make the record's checksum hold.
	i := bytes.LastIndex(body, []byte("José"))
	if i < 0 {
		t.Fatal("setup: no row in the last record: its commit is not inline")
	}
	body[i+1] = 'X'
	binary.LittleEndian.PutUint32(j[last.off+4:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	path := writeStore(t, map[string][]byte{"bets.csv": b.data, "bets.csv.journal": j})
	before := sums(t, filepath.Dir(path))
	s, err := Open(path, Options{MaxGroupBytes: recBound})
	if err == nil {
		s.Close()
		t.Fatal("opened; want a refusal")
	}
	var re *RecoveryError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "ROWS") {
		t.Fatalf("error %v; want a RecoveryError about the ROWS", err)
	}
	sameSums(t, before, sums(t, filepath.Dir(path)))
}
