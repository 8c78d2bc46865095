package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/ledger"
)

// BenchmarkStoreCommit: batches of 10 bets through Begin/Add/Submit/Wait
// on the real file system, by 1, 8 and 64 appenders, with the two
// fdatasyncs of a commit in parallel (the default) or one after the other.
func BenchmarkStoreCommit(b *testing.B) {
	const bets = 10
	batch := make([]ledger.Bet, bets)
	for i := range batch {
		batch[i] = testBet(1, int64(i))
	}
	for _, mode := range []struct {
		name   string
		serial bool
	}{{"parallel", false}, {"serial", true}} {
		for _, appenders := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/appenders=%d", mode.name, appenders), func(b *testing.B) {
				s, err := Open(filepath.Join(b.TempDir(), "bets.csv"), Options{SerialSync: mode.serial})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					commits uint64
					next    = make(chan struct{}, appenders)
				)
				b.ReportAllocs()
				b.ResetTimer()
				go func() {
					for range b.N {
						next <- struct{}{}
					}
					close(next)
				}()
				for a := range appenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						agency, from := a+1, int64(0)
						for range next {
							bt, err := s.Begin(agency, from, bets)
							if err != nil {
								b.Error(err)
								return
							}
							for _, bet := range batch {
								bt.Add(bet)
							}
							r, err := bt.Submit()
							if err == nil {
								err = r.Wait()
							}
							if err != nil {
								b.Error(err)
								return
							}
							from += bets
							mu.Lock()
							commits = max(commits, r.Group.Seq)
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				el := b.Elapsed().Seconds()
				b.ReportMetric(el*1e6/float64(commits), "µs/commit")
				b.ReportMetric(float64(commits)/el, "commits/s")
				b.ReportMetric(2*float64(commits)/el, "fsyncs/s")
				b.ReportMetric(float64(b.N)/float64(commits), "batches/commit")
			})
		}
	}
}

// bigStoreBets is how many bets the recovery benchmarks' store holds:
// LOTERIA_STORE_BETS (the figure in docs/STORE.md used 20,000,000), 1 M
// by default so that `make bench` stays short.
func bigStoreBets(b *testing.B) int {
	n := 1_000_000
	if v := os.Getenv("LOTERIA_STORE_BETS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("LOTERIA_STORE_BETS=%q: %v", v, err)
		}
	}
	return n
}

// writeBigStore writes a store of n generated bets of 10 agencies in
// commits of batches batches of 100 bets, with the store's own encoder
// (rows and COMMIT records as the writer makes them), syncing once.
// inline commits hold their rows in their records too, as the writer's
// small commits do (docs/STORE.md, "One sync a commit").
func writeBigStore(b *testing.B, path string, n, batches int, inline bool) {
	b.Helper()
	t0 := time.Now()
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const agencies, batchBets = 10, 100
	gens := make([]*datagen.Generator, agencies)
	for i := range gens {
		gens[i] = datagen.New(datagen.Options{Seed: 1, Agency: i + 1})
	}
	marks := make([]int64, agencies)
	var data, rec []byte
	c := commit{round: 1}
	k := 0
	markAt := map[int]int{}
	synced := int64(0) // where the bets file was last synced, as the writer counts
	for done := 0; done < n; {
		data, c.entries = data[:0], c.entries[:0]
		clear(markAt)
		for j := 0; j < batches && done < n; j, k = j+1, k+1 {
			a := k % agencies
			m := min(batchBets, n-done)
			for range m {
				bet := gens[a].Next()
				data = AppendRow(data, bet.Agency, bet.FirstName, bet.LastName, bet.Document, bet.Birthdate, bet.Number)
			}
			marks[a] += int64(m)
			done += m
			i, ok := markAt[a]
			if !ok {
				i = len(c.entries)
				markAt[a] = i
				c.entries = append(c.entries, jentry{kind: kindMark, agency: uint32(a + 1)})
			}
			e := &c.entries[i]
			e.mark, e.stored = uint64(marks[a]), e.stored+uint32(m)
		}
		c.seq = s.dur.seq + 1
		c.start, c.end = uint64(s.disk), uint64(s.disk)+uint64(len(data))
		c.dataCRC = dataCRC(data)
		// As the writer does: inline while the bets file's unsynced
		// bytes stay within the default InlineBytes, then a commit that
		// syncs it.
		if inline && int64(c.end)-synced <= defaultInlineBytes {
			c.entries = slices.Insert(c.entries, 0, jentry{kind: kindRows, rows: data})
		} else {
			synced = int64(c.end)
		}
		rec = appendCommit(rec[:0], &c)
		if _, err := s.data.WriteAt(data, s.disk); err != nil {
			b.Fatal(err)
		}
		if _, err := s.journal.WriteAt(rec, s.jsize); err != nil {
			b.Fatal(err)
		}
		if err := s.dur.applyChecked(&c); err != nil {
			b.Fatal(err)
		}
		s.disk, s.jsize = int64(c.end), s.jsize+int64(len(rec))
	}
	if err := s.data.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := s.journal.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote a store of %d bets (%d bytes, journal %d bytes, %d commits) in %s", n, s.disk, s.jsize, s.dur.seq, time.Since(t0).Round(time.Millisecond))
}

// BenchmarkBigStore: Open (lock, journal replay, the last commit's data
// checked) of a big store, and a Scan of its whole round; warm page
// cache. Commits of 1 batch are a lightly loaded central's (the longest
// journal), of 50 a loaded one's.
func BenchmarkBigStore(b *testing.B) {
	n := bigStoreBets(b)
	for _, tt := range []struct {
		batches int
		inline  bool
	}{{1, false}, {1, true}, {50, false}} {
		name := fmt.Sprintf("batches-per-commit=%d", tt.batches)
		if tt.inline {
			name += ",inline"
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bets.csv")
			writeBigStore(b, path, n, tt.batches, tt.inline)
			b.Run("Open", func(b *testing.B) {
				for b.Loop() {
					s, err := Open(path, Options{})
					if err != nil {
						b.Fatal(err)
					}
					if s.Recovered().Bets != int64(n) {
						b.Fatalf("recovered %d bets of %d", s.Recovered().Bets, n)
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Scan", func(b *testing.B) {
				s, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				for b.Loop() {
					got := 0
					if err := s.Scan(1, func(int, []byte, int) error { got++; return nil }); err != nil || got != n {
						b.Fatalf("scanned %d bets of %d: %v", got, n, err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bets/s")
			})
		})
	}
}

// BenchmarkSubmitDiscard prices the path caller → queue → writer →
// receipt without I/O (Discard): what the hand-off costs a batch of 10
// bets, alone and with 64 appenders.
func BenchmarkSubmitDiscard(b *testing.B) {
	const bets = 10
	batch := make([]ledger.Bet, bets)
	for i := range batch {
		batch[i] = testBet(1, int64(i))
	}
	for _, appenders := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bets.csv"), Options{Discard: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			var wg sync.WaitGroup
			next := make(chan struct{}, appenders)
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			for a := range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					from := int64(0)
					for range next {
						bt, err := s.Begin(a+1, from, bets)
						if err != nil {
							b.Error(err)
							return
						}
						for _, bet := range batch {
							bt.Add(bet)
						}
						r, err := bt.Submit()
						if err == nil {
							err = r.Wait()
						}
						if err != nil {
							b.Error(err)
							return
						}
						from += bets
					}
				}()
			}
			wg.Wait()
		})
	}
}
