package agency

import (
	"testing"

	"github.com/loteria/loteria/services/internal/lottery"
)

func TestBetKey(t *testing.T) {
	distinct := []struct {
		doc    string
		number int
	}{{"123", 7574}, {"0123", 7574}, {"00123", 7574}, {"123", 7575}, {"999999999", 9999}, {"1", 0}, {"01", 0}}
	seen := map[uint64]int{}
	for i, d := range distinct {
		k, ok := betKey(d.doc, d.number)
		if !ok {
			t.Fatalf("betKey(%q, %d) refused", d.doc, d.number)
		}
		if j, dup := seen[k]; dup {
			t.Errorf("betKey(%q, %d) = betKey(%q, %d)", d.doc, d.number, distinct[j].doc, distinct[j].number)
		}
		seen[k] = i
		if int(k&keyNumberMask) != d.number {
			t.Errorf("betKey(%q, %d) holds number %d", d.doc, d.number, k&keyNumberMask)
		}
	}
	for _, bad := range []struct {
		doc    string
		number int
	}{{"", 1}, {"1234567890", 1}, {"12a", 1}, {"1", -1}, {"1", 10000}} {
		if _, ok := betKey(bad.doc, bad.number); ok {
			t.Errorf("betKey(%q, %d) accepted", bad.doc, bad.number)
		}
	}
}

func TestChunkKeysMatch(t *testing.T) {
	bets := []lottery.Bet{
		{Document: "11", Number: 7574}, {Document: "22", Number: 1}, {Document: "11", Number: 7574},
		{Document: "33", Number: 7574}, {Document: "022", Number: 7574},
	}
	var k chunkKeys
	k.reset(100, int64(len(bets)))
	for i := range bets {
		k.put(100+int64(i), &bets[i])
	}
	k.put(102, &bets[2]) // a resend
	if !k.whole() {
		t.Fatal("every bet put, but not whole")
	}
	tests := []struct {
		dnis     []string
		numbered bool
		number   int
		want     int
	}{
		{[]string{"11", "11", "33"}, true, 7574, 3},
		{[]string{"11", "11", "11"}, true, 7574, 2}, // two such bets
		{[]string{"22"}, true, 7574, 0},             // 22 plays 1; 022 is another document
		{[]string{"022"}, true, 7574, 1},
		{[]string{"22"}, false, 0, 1}, // any number
		{[]string{"44", "x"}, false, 0, 0},
		{[]string{"11"}, true, 1, 0},
	}
	for _, tt := range tests {
		if got := k.match(tt.dnis, tt.numbered, tt.number, map[int64]struct{}{}); got != tt.want {
			t.Errorf("match(%v, %v, %d) = %d, want %d", tt.dnis, tt.numbered, tt.number, got, tt.want)
		}
	}

	// Over calls sharing won, each bet matches once: the two bets of 11
	// playing 7574, then none left.
	won := map[int64]struct{}{}
	if a, b := k.match([]string{"11"}, true, 7574, won), k.match([]string{"11", "11"}, true, 7574, won); a != 1 || b != 1 {
		t.Errorf("11 then 11;11 over one won set matched %d and %d, want 1 and 1", a, b)
	}

	var part chunkKeys
	part.reset(0, 3)
	part.put(1, &bets[0])
	part.put(2, &bets[1])
	if part.whole() {
		t.Error("bet 0 never put, yet whole")
	}
	part.put(0, &bets[0])
	if part.whole() {
		t.Error("a bet put before the first recorded one (a gap in the order) still counted as whole")
	}
}
