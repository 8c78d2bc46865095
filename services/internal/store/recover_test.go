package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/loteria/loteria/services/internal/ledger"
)

// The test reads the journal by docs/STORE.md, not by the store's code:
// 8 bytes of magic, then records of length u32le, crc u32le, body.
type span struct{ off, len int }

func specRecords(t *testing.T, j []byte) []span {
	t.Helper()
	if string(j[:8]) != "LOTJRNL1" {
		t.Fatalf("journal starts with %q", j[:8])
	}
	var out []span
	for off := 8; off < len(j); {
		n := int(binary.LittleEndian.Uint32(j[off:]))
		out = append(out, span{off, 8 + n})
		off += 8 + n
	}
	return out
}

// specCommit encodes a COMMIT with no entries, by the spec.
func specCommit(round uint32, seq, start, end uint64, data []byte) []byte {
	body := []byte{2}
	body = binary.LittleEndian.AppendUint32(body, round)
	body = binary.LittleEndian.AppendUint64(body, seq)
	body = binary.LittleEndian.AppendUint64(body, start)
	body = binary.LittleEndian.AppendUint64(body, end)
	body = binary.LittleEndian.AppendUint32(body, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	body = append(body, 0)
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(rec, body...)
}

// specHeader encodes a HEADER (as every open appends), by the spec.
func specHeader(round uint32, maxGroup uint32) []byte {
	body := []byte{1}
	body = binary.LittleEndian.AppendUint32(body, round)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint32(body, maxGroup)
	body = binary.LittleEndian.AppendUint32(body, 1<<20)
	body = binary.LittleEndian.AppendUint64(body, 1764633600e9)
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(rec, body...)
}

const (
	recBatches   = 40 // one commit each
	recBatchBets = 5
	recBound     = 1024 // MaxGroupBytes: with 4096 of slack, what recovery may quarantine
)

// base writes a store of recBatches commits of agency 1 and returns its
// files' bytes, the journal's records and each commit's data end (by
// counting rows).
type base struct {
	data, journal []byte
	recs          []span // HEADER, then one COMMIT per batch
	ends          []int  // data offset after batch i
}

// makeBase's commits sync both files (InlineBytes -1), or are inline
// (inline > 0: their rows in their records, docs/STORE.md "One sync a
// commit").
func makeBase(t *testing.T, inline int) base {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bets.csv")
	s := openT(t, path, Options{MaxGroupBytes: recBound, InlineBytes: inline})
	for i := range recBatches {
		from := int64(i * recBatchBets)
		must(t)(submit(s, 1, from, from, recBatchBets))
	}
	closeT(t, s)
	var b base
	b.data, _ = os.ReadFile(path)
	b.journal, _ = os.ReadFile(journalPath(path))
	b.recs = specRecords(t, b.journal)
	if len(b.recs) != 1+recBatches {
		t.Fatalf("journal holds %d records, want a HEADER and %d COMMITs", len(b.recs), recBatches)
	}
	rows := 0
	for i, c := range b.data {
		if c == '\n' {
			rows++
			if rows%recBatchBets == 0 {
				b.ends = append(b.ends, i+1)
			}
		}
	}
	return b
}

// lastRec is the last COMMIT's record.
func (b base) lastRec() span { return b.recs[len(b.recs)-1] }

func writeStore(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "bets.csv")
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x5a
	return c
}

func TestRecoveryRefuses(t *testing.T) {
	b := makeBase(t, -1)
	last, prev := b.lastRec(), b.recs[len(b.recs)-2]
	cut := b.ends[len(b.ends)-2] // where the second-to-last commit ends
	partial := []byte("1,José 99,Núñ")
	tests := []struct {
		name  string
		files map[string][]byte
		found string // a word the message must hold
	}{
		{"damage in a middle record (body)", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": flip(b.journal, prev.off+12)}, "middle"},
		{"damage in a middle record (length)", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": flip(b.journal, prev.off+1)}, "middle"},
		{"damage in the first commit", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": flip(b.journal, b.recs[1].off+20)}, "middle"},
		{"stale journal (valid record far behind the data)", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": b.journal[:b.recs[2].off+b.recs[2].len]}, "older"},
		{"data shorter than the second-to-last commit", map[string][]byte{"bets.csv": b.data[:cut-1], "bets.csv.journal": b.journal}, "last two commits"},
		{"data missing", map[string][]byte{"bets.csv.journal": b.journal}, "last two commits"},
		{"record pointing mid-row", map[string][]byte{
			"bets.csv":         append(bytes.Clone(b.data), partial...),
			"bets.csv.journal": append(bytes.Clone(b.journal), specCommit(1, recBatches+1, uint64(len(b.data)), uint64(len(b.data)+len(partial)), partial)...),
		}, "middle of a row"},
		{"data changed under a commit an open had checked", map[string][]byte{
			"bets.csv":         flip(b.data, len(b.data)-3),
			"bets.csv.journal": append(bytes.Clone(b.journal), specHeader(1, recBound)...),
		}, "changed outside loteria"},
		{"tail one byte past the bound", map[string][]byte{"bets.csv": append(bytes.Clone(b.data), bytes.Repeat([]byte("x"), recBound+4096+1)...), "bets.csv.journal": b.journal}, "older"},
		{"tail one byte past the bound, among zeros", map[string][]byte{"bets.csv": append(bytes.Clone(b.data), append(append(bytes.Repeat([]byte("x"), recBound), zeros(5000)...), bytes.Repeat([]byte("y"), 4097)...)...), "bets.csv.journal": b.journal}, "older"},
		{"more zeros past the journal's end than the writer keeps ahead", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": append(bytes.Clone(b.journal), zeros(journalSlack+1)...)}, "damaged in the middle"},
		{"a record past the journal's zeros ahead", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": append(append(bytes.Clone(b.journal), append([]byte{9}, zeros(5000)...)...), specHeader(1, recBound)...)}, "damaged in the middle"},
		{"legacy store", map[string][]byte{"bets.csv": b.data, "bets.csv.commits": make([]byte, 12)}, "mv "},
		{"seed-written file", map[string][]byte{"bets.csv": b.data}, "no journal"},
		{"journal of another kind", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": []byte("LOTJRNL0" + string(b.journal[8:]))}, "not a loteria journal"},
		{"empty journal", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": nil}, "not a loteria journal"},
		{"journal without its HEADER", map[string][]byte{"bets.csv": b.data, "bets.csv.journal": append([]byte("LOTJRNL1"), b.journal[b.recs[1].off:]...)}, "HEADER"},
		{"journal and data of different stores", map[string][]byte{"bets.csv": bytes.Repeat([]byte("2,Ana,B,1,2000-01-01,1\n"), len(b.data)/23+1)[:len(b.data)], "bets.csv.journal": b.journal}, "last two commits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeStore(t, tt.files)
			before := sums(t, filepath.Dir(path))
			s, err := Open(path, Options{MaxGroupBytes: recBound})
			if err == nil {
				s.Close()
				t.Fatalf("opened; want a refusal")
			}
			var re *RecoveryError
			if !errors.As(err, &re) || re.Found == "" || re.Action == "" {
				t.Fatalf("error %v; want a RecoveryError saying what was found and what to do", err)
			}
			if !strings.Contains(err.Error(), tt.found) {
				t.Fatalf("message %q does not say %q", err, tt.found)
			}
			sameSums(t, before, sums(t, filepath.Dir(path)))
			_ = last
		})
	}
}

// TestLaterRecordCost: the search for a whole record after a bad one
// finds one wherever it starts, and checksums little where none is: it
// checksummed every candidate whose length field fit, 887 MiB for a torn
// COMMIT of 1,000 agencies and some 275 GB for a tail of every fourth byte
// 16 (14.8 s of Open).
func TestLaterRecordCost(t *testing.T) {
	marks := &commit{round: 1, seq: 7, start: 0, end: 10000}
	for a := uint32(1); a <= 1000; a++ {
		marks.entries = append(marks.entries, jentry{kind: kindMark, agency: a, mark: uint64(a) * 1000, stored: 10})
	}
	torn := appendCommit(nil, marks)
	torn = torn[:len(torn)-100]
	header := specHeader(1, recBound)
	tests := []struct {
		name     string
		tail     []byte
		found    bool
		maxBytes int // checksummed at most
	}{
		{"a torn COMMIT of 1,000 agencies, then 1 MiB of zeros", append(bytes.Clone(torn), zeros(1<<20)...), false, 1 << 20},
		{"every fourth byte 16", bytes.Repeat([]byte{16, 0, 0, 0}, (2<<20)/4), false, 1 << 20},
		{"zeros", zeros(2 << 20), false, 0},
		{"a HEADER after a torn COMMIT", append(bytes.Clone(torn), header...), true, 1 << 20},
		{"a COMMIT after garbage", append([]byte{9, 1, 2, 3, 4, 5, 6, 7, 8}, specCommit(1, 3, 0, 4, []byte("abc\n"))...), true, 1 << 20},
		{"a HEADER one byte in", append([]byte{0}, header...), true, len(header)},
		{"a HEADER at the start does not count", header, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, n := laterRecordCost(tt.tail)
			if found != tt.found {
				t.Errorf("found %v, want %v", found, tt.found)
			}
			if n > tt.maxBytes {
				t.Errorf("checksummed %d bytes, want at most %d", n, tt.maxBytes)
			}
		})
	}
}

// TestRecoveryRepairs: the damage a crash can leave is repaired: a torn
// or damaged last record is cut, a commit whose data did not reach the
// disk is dropped, a tail past the last commit is quarantined (never
// deleted).
func TestRecoveryRepairs(t *testing.T) {
	b := makeBase(t, -1)
	last := b.lastRec()
	cut := b.ends[len(b.ends)-2]
	type tc struct {
		name      string
		data, jrn []byte
		// what recovery keeps
		batches int    // commits kept
		quar    []byte // bytes quarantined (nil: none)
	}
	var tests []tc
	for k := range last.len {
		tests = append(tests, tc{"torn last record at byte " + itoa(k), b.data, b.journal[:last.off+k], recBatches - 1, b.data[cut:]})
	}
	for k := range last.len {
		tests = append(tests, tc{"flipped byte " + itoa(k) + " of the last record", b.data, flip(b.journal, last.off+k), recBatches - 1, b.data[cut:]})
	}
	partial := []byte("1,José 99,Núñ")
	tests = append(tests,
		tc{"last commit's data never reached the disk", b.data[:cut], b.journal, recBatches - 1, nil},
		tc{"last commit's data torn", b.data[:cut+7], b.journal, recBatches - 1, b.data[cut : cut+7]},
		tc{"last commit's data damaged", flip(b.data, cut+3), b.journal, recBatches - 1, flip(b.data, cut+3)[cut:]},
		tc{"both files torn", b.data[:cut+9], b.journal[:last.off+5], recBatches - 1, b.data[cut : cut+9]},
		tc{"garbage after the last record", b.data, append(bytes.Clone(b.journal), 0, 0, 0, 0, 0, 0), recBatches, nil},
		tc{"quarantine within the bound", append(bytes.Clone(b.data), partial...), b.journal, recBatches, partial},
		tc{"quarantine of a tail at the bound", append(bytes.Clone(b.data), bytes.Repeat([]byte("x"), recBound+4096)...), b.journal, recBatches, bytes.Repeat([]byte("x"), recBound+4096)},
		tc{"intact", b.data, b.journal, recBatches, nil},
		tc{"intact, reopened before", b.data, append(bytes.Clone(b.journal), specHeader(1, recBound)...), recBatches, nil},
		tc{"torn HEADER of an open", b.data, append(bytes.Clone(b.journal), specHeader(1, recBound)[:9]...), recBatches, nil},
		// The zeros the writer keeps ahead of both files' ends (SIGKILL
		// leaves them, and a power cut, possibly torn).
		tc{"zeros ahead of both files", append(bytes.Clone(b.data), zeros(preallocBytes)...), append(bytes.Clone(b.journal), zeros(preallocBytes)...), recBatches, nil},
		tc{"last commit's data lost over the zeros ahead", append(bytes.Clone(b.data[:cut]), zeros(len(b.data)-cut+900)...), b.journal, recBatches - 1, nil},
		tc{"last commit's data torn over the zeros ahead", append(bytes.Clone(b.data[:cut+7]), zeros(900)...), b.journal, recBatches - 1, b.data[cut : cut+7]},
		tc{"torn last record over the zeros ahead", append(bytes.Clone(b.data), zeros(900)...), append(bytes.Clone(b.journal[:last.off+5]), zeros(4096)...), recBatches - 1, b.data[cut:]},
		tc{"zeros ahead, then a torn block", append(bytes.Clone(b.data), append(zeros(preallocBytes-100), "xyz"...)...), b.journal, recBatches, append(zeros(preallocBytes-100), "xyz"...)},
		tc{"journal's zeros ahead, then a torn block", b.data, append(bytes.Clone(b.journal), append(zeros(preallocBytes), 1, 2, 3)...), recBatches, nil},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeStore(t, map[string][]byte{"bets.csv": tt.data, "bets.csv.journal": tt.jrn})
			s := openT(t, path, Options{MaxGroupBytes: recBound})
			rec := s.Recovered()
			wantMark := int64(tt.batches * recBatchBets)
			if rec.Agencies[1].Mark != wantMark || rec.Bets != wantMark || rec.Bytes != int64(b.ends[tt.batches-1]) {
				t.Fatalf("recovered mark %d, %d bets, %d bytes; want %d, %d, %d", rec.Agencies[1].Mark, rec.Bets, rec.Bytes, wantMark, wantMark, b.ends[tt.batches-1])
			}
			// The store goes on where it recovered to.
			must(t)(submit(s, 1, wantMark, wantMark, 1))
			closeT(t, s)
			data, _ := os.ReadFile(path)
			got := storedBets(t, data)
			if int64(len(got)) != wantMark+1 || got[len(got)-1] != (betID{1, wantMark}) {
				t.Fatalf("after recovery and one more batch the file holds %d bets, ending with %v", len(got), got[len(got)-1])
			}
			if tt.quar == nil {
				if rec.Quarantined != "" {
					t.Fatalf("quarantined %s (%d bytes), want nothing", rec.Quarantined, rec.QuarantinedBytes)
				}
				return
			}
			if !strings.HasPrefix(rec.Quarantined, path+".quarantine-") || rec.QuarantinedBytes != int64(len(tt.quar)) {
				t.Fatalf("quarantine %q of %d bytes, want %d bytes", rec.Quarantined, rec.QuarantinedBytes, len(tt.quar))
			}
			q, err := os.ReadFile(rec.Quarantined)
			if err != nil || !bytes.Equal(q, tt.quar) {
				t.Fatalf("quarantine file holds %q (%v), want %q", q, err, tt.quar)
			}
			// Reopened again: nothing more to repair.
			s = openT(t, path, Options{MaxGroupBytes: recBound})
			closeT(t, s)
			if s.Recovered().Quarantined != "" {
				t.Fatal("a second open quarantined again")
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func zeros(n int) []byte { return make([]byte, n) }

// TestRecoveryOfANewStoreCrashedEarly: a store whose journal is there but
// whose bets file never was (a crash while it was created) opens empty.
func TestRecoveryWithoutDataFile(t *testing.T) {
	b := makeBase(t, -1)
	path := writeStore(t, map[string][]byte{"bets.csv.journal": b.journal[:b.recs[0].off+b.recs[0].len]})
	s := openT(t, path, Options{})
	defer closeT(t, s)
	if r := s.Recovered(); r.Bets != 0 || r.Round != 1 {
		t.Fatalf("recovered %+v", r)
	}
	must(t)(submit(s, 1, 0, 0, 1))
	_ = ledger.AtMark
}
