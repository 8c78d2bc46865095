package base10

import (
	"math"
	"strconv"
	"testing"
)

// TestAppendAgainstStrconv: every value from -1,000 to 100,000 and the
// extremes of int, after a prefix, as strconv writes them.
func TestAppendAgainstStrconv(t *testing.T) {
	check := func(n int) {
		t.Helper()
		if got, want := string(Append([]byte("x"), n)), "x"+strconv.Itoa(n); got != want {
			t.Fatalf("Append(%d) = %q, want %q", n, got, want)
		}
	}
	for n := -1000; n <= 100000; n++ {
		check(n)
	}
	for _, n := range []int{math.MinInt, math.MinInt + 1, math.MaxInt, math.MaxInt32, 1 << 40} {
		check(n)
	}
}

func TestAppendAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 64)
	if allocs := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], 7574) }); allocs != 0 {
		t.Fatalf("Append into a buffer with room: %v allocs, want 0", allocs)
	}
}
