package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/loteria/loteria/services/internal/store/faultfs"
)

// FuzzRecovery opens stores whose journal and bets file are anything:
// recovery must refuse (a RecoveryError, every file as it was) or open a
// store whose state matches its files, and a second open must find
// nothing more to repair. It never panics.
func FuzzRecovery(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3} {
		mem := faultfs.New()
		s, err := Open(memPath, Options{FS: mem, MaxGroupBytes: 1024})
		if err != nil {
			f.Fatal(err)
		}
		w := newWorkload(f, s, seed, 2, true)
		for range 12 {
			w.step()
		}
		if err := s.Close(); err != nil {
			f.Fatal(err)
		}
		j, _ := mem.ReadFile(journalPath(memPath))
		d, _ := mem.ReadFile(memPath)
		f.Add(j, d)
		f.Add(j[:len(j)-3], d[:len(d)/2])
	}
	f.Fuzz(func(t *testing.T, journal, data []byte) {
		mem := faultfs.New()
		mem.WriteFile(journalPath(memPath), journal, 0o600)
		mem.WriteFile(memPath, data, 0o600)
		s, err := Open(memPath, Options{FS: mem, MaxGroupBytes: 1024})
		if err != nil {
			var re *RecoveryError
			if !errors.As(err, &re) {
				t.Fatalf("not a refusal: %v", err)
			}
			j, _ := mem.ReadFile(journalPath(memPath))
			d, _ := mem.ReadFile(memPath)
			if !bytes.Equal(j, journal) || !bytes.Equal(d, data) || len(mem.Files()) != 3 {
				t.Fatalf("a refusal changed the store's files: %v", mem.Files())
			}
			return
		}
		rec := s.Recovered()
		from, to := s.rewroteFrom, s.rewroteTo
		if s.rewrittenCommits == 0 {
			from, to = rec.Bytes, rec.Bytes
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		d, _ := mem.ReadFile(memPath)
		if rec.Bytes != int64(len(d)) {
			t.Fatalf("recovered %d bytes, the bets file holds %d", rec.Bytes, len(d))
		}
		// What recovery keeps and quarantines is what the file held, in
		// order, but for the rows of inline commits it rewrote from the
		// journal (docs/STORE.md, "One sync a commit"): the journal's rows
		// are what the bets file lost; only zeros after its last non-zero
		// byte (the writer's zeros ahead of the end) go without a copy.
		var q []byte
		if rec.Quarantined != "" {
			q, _ = mem.ReadFile(rec.Quarantined)
		}
		held := bytes.Clone(data)
		if int64(len(held)) < to {
			held = append(held, make([]byte, to-int64(len(held)))...)
		}
		copy(held[from:to], d[from:to])
		kept := append(bytes.Clone(d), q...)
		if from > to || to > int64(len(d)) || !bytes.HasPrefix(held, kept) || bytes.ContainsFunc(held[len(kept):], func(r rune) bool { return r != 0 }) {
			t.Fatalf("the bets file (%d bytes, rows %d..%d rewritten from the journal) and its quarantine (%d bytes) are not the %d bytes it held, less zeros at its end", len(d), from, to, len(q), len(data))
		}
		s, err = Open(memPath, Options{FS: mem, MaxGroupBytes: 1024})
		if err != nil {
			t.Fatalf("reopening a recovered store: %v", err)
		}
		again := s.Recovered()
		s.Close()
		rec.Quarantined, rec.QuarantinedBytes = "", 0
		if !reflect.DeepEqual(again, rec) {
			t.Fatalf("a second open recovered\n%+v\nafter\n%+v", again, rec)
		}
	})
}
