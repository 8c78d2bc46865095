package agency

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBackoffFullJitter: every wait is uniform over [0, min(max,
// base·2^attempt)]: within the bound, spread over all of it (near 0 and
// near the bound both drawn), with the mean of a uniform draw; agencies
// seeded differently do not wait alike.
func TestBackoffFullJitter(t *testing.T) {
	const draws = 4000
	tests := []struct {
		base, max time.Duration
		bounds    []time.Duration // expected bound per attempt, computed by hand
	}{
		{100 * time.Millisecond, 10 * time.Second, []time.Duration{
			100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
			1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second,
		}},
		{time.Second, 3 * time.Second, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{5 * time.Millisecond, 5 * time.Millisecond, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		b := backoff{base: tt.base, max: tt.max, rand: rand.New(rand.NewPCG(1, 2))}
		for attempt, bound := range tt.bounds {
			if got := b.bound(attempt); got != bound {
				t.Fatalf("base %v max %v attempt %d: bound %v, want %v", tt.base, tt.max, attempt, got, bound)
			}
			var sum float64
			lo, hi := bound, time.Duration(0)
			for range draws {
				d := b.delay(attempt)
				if d < 0 || d > bound {
					t.Fatalf("attempt %d: wait %v outside [0, %v]", attempt, d, bound)
				}
				sum += float64(d)
				lo, hi = min(lo, d), max(hi, d)
			}
			// A uniform draw's mean is bound/2 with a standard error of
			// bound/sqrt(12·draws) ≈ 0.0046·bound: 5% is over 10 errors.
			mean := sum / draws
			if mean < 0.45*float64(bound) || mean > 0.55*float64(bound) {
				t.Errorf("attempt %d: mean wait %v, want about %v", attempt, time.Duration(mean), bound/2)
			}
			if lo > bound/20 || hi < bound-bound/20 {
				t.Errorf("attempt %d: waits spread over [%v, %v], want most of [0, %v]", attempt, lo, hi, bound)
			}
		}
	}
	// Many attempts never overflow the doubling.
	b := backoff{base: time.Hour, max: 1000 * time.Hour, rand: rand.New(rand.NewPCG(3, 4))}
	if got := b.bound(200); got != 1000*time.Hour {
		t.Errorf("bound after 200 attempts = %v, want the cap", got)
	}
	// Two agencies failing together do not retry together.
	x := backoff{base: 100 * time.Millisecond, max: 10 * time.Second, rand: rand.New(rand.NewPCG(10, 1))}
	y := backoff{base: 100 * time.Millisecond, max: 10 * time.Second, rand: rand.New(rand.NewPCG(11, 1))}
	same := 0
	for attempt := range 1000 {
		if x.delay(attempt%10) == y.delay(attempt%10) {
			same++
		}
	}
	if same > 5 {
		t.Errorf("%d of 1000 waits equal between two agencies", same)
	}
}

// TestBackoffDefaultRandSpreads: without an injected source, clients get
// the process's random source, so 10,000 agencies built at once do not
// draw the same waits.
func TestBackoffDefaultRandSpreads(t *testing.T) {
	seen := map[time.Duration]int{}
	for range 1000 {
		c, err := NewClient(Options{Agency: 1, MaxBets: 1}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		b := backoff{base: 10 * time.Second, max: 10 * time.Second, rand: c.rand}
		seen[b.delay(0)]++
	}
	for d, n := range seen {
		if n > 3 {
			t.Errorf("%d of 1000 clients drew the same first wait %v", n, d)
		}
	}
}
