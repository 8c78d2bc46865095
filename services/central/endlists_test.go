package central

import (
	"slices"
	"testing"
)

// TestEndLists: the counts are whole and the lists hold at most the
// bound, for any CLIENT_COUNT, with the walk for ids bounded too.
func TestEndLists(t *testing.T) {
	seq := func(from, to int) []int { // from..to
		var s []int
		for a := from; a <= to; a++ {
			s = append(s, a)
		}
		return s
	}
	const big = 20_000_000
	tests := []struct {
		name         string
		expected     int
		ends         []int
		finished     []int
		finishedN    int
		missing      []int
		missingCount int
	}{
		{"no END yet", big, nil, nil, 0, seq(1, statusIDs), big},
		{"a few agencies", 3, []int{2}, []int{2}, 1, []int{1, 3}, 2},
		{"every agency", 3, []int{3, 1, 2}, []int{1, 2, 3}, 3, nil, 0},
		{"the first 150 ended", big, seq(1, 150), seq(1, statusIDs), 150, seq(151, 150+statusIDs), big - 150},
		{"sparse and high ids, one past N", big, []int{big - 1, 5, big + 5},
			[]int{5, big - 1}, 2, append(seq(1, 4), seq(6, statusIDs+1)...), big - 2},
		{"an END recovered twice counts once", 4, []int{2, 2}, []int{2}, 1, []int{1, 3, 4}, 3},
		// The walk stops after statusScan ids: the list is short, the count whole.
		{"the first statusScan+10 ended", big, seq(1, statusScan+10), seq(1, statusIDs), statusScan + 10, nil, big - statusScan - 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &round{rs: &rounds{expected: tt.expected}, ended: make(map[int]bool)}
			for _, a := range tt.ends {
				r.addEnd(a)
			}
			l := r.endLists(statusIDs)
			if !slices.Equal(l.finished, tt.finished) || l.finishedCount != tt.finishedN {
				t.Errorf("finished %v (%d), want %v (%d)", l.finished, l.finishedCount, tt.finished, tt.finishedN)
			}
			if !slices.Equal(l.missing, tt.missing) || l.missingCount != tt.missingCount {
				t.Errorf("missing %v (%d), want %v (%d)", l.missing, l.missingCount, tt.missing, tt.missingCount)
			}
		})
	}
}

// BenchmarkEndListsWalk is the longest the lists hold the lock: a map of
// 20,000,000 ENDs and the first statusScan ids all ended.
func BenchmarkEndListsWalk(b *testing.B) {
	const n = 20_000_000
	r := &round{rs: &rounds{expected: n + 1}, ended: make(map[int]bool, n)}
	for a := 1; a <= n; a++ {
		r.addEnd(a)
	}
	for b.Loop() {
		r.endLists(statusIDs)
	}
}
