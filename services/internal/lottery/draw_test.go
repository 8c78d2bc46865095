package lottery

import (
	"reflect"
	"sort"
	"testing"
)

func TestResult(t *testing.T) {
	type add struct {
		agency int
		doc    string
		number int
	}
	tests := []struct {
		name    string
		adds    []add
		winners map[int][]string // agencies absent here have none
	}{
		{name: "no bets", winners: map[int][]string{}},
		{
			name:    "no winners",
			adds:    []add{{1, "1", 7573}, {2, "2", 7575}, {1, "3", 0}, {3, "4", 9999}},
			winners: map[int][]string{},
		},
		{
			name: "winners keep their order per agency",
			adds: []add{
				{1, "30904465", 7574}, {2, "111", 7574}, {1, "29521189", 1}, {1, "22", 7574},
				{3, "33", 4757}, {2, "222", 7574}, {5, "5", 7574},
			},
			winners: map[int][]string{1: {"30904465", "22"}, 2: {"111", "222"}, 5: {"5"}},
		},
		{
			name:    "the same DNI twice counts twice",
			adds:    []add{{4, "7", 7574}, {4, "7", 7574}},
			winners: map[int][]string{4: {"7", "7"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewResult()
			buf := make([]byte, 0, 32)
			for _, a := range tt.adds {
				// document points into a reused buffer, as in Store.Scan.
				buf = append(buf[:0], a.doc...)
				r.Add(a.agency, buf, a.number)
				for i := range buf {
					buf[i] = 'X'
				}
			}
			if r.Bets() != len(tt.adds) {
				t.Fatalf("Bets() = %d, want %d", r.Bets(), len(tt.adds))
			}
			for a := 0; a <= 6; a++ {
				got, want := r.Winners(a), tt.winners[a]
				if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
					t.Fatalf("Winners(%d) = %q, want %q", a, got, want)
				}
			}
			seen := map[int][]string{}
			var order []int
			r.Agencies(func(a int, w []string) {
				if _, dup := seen[a]; dup {
					t.Fatalf("Agencies visited %d twice", a)
				}
				seen[a] = w
				order = append(order, a)
			})
			sort.Ints(order)
			if len(seen) != len(tt.winners) {
				t.Fatalf("Agencies visited %v, want the agencies of %v", order, tt.winners)
			}
			for a, w := range tt.winners {
				if !reflect.DeepEqual(seen[a], w) {
					t.Fatalf("Agencies gave %d → %q, want %q", a, seen[a], w)
				}
			}
		})
	}
}
