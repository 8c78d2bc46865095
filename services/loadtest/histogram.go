package loadtest

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations with a relative error under 1/2^subBits
// (about 1.6%), lock-free, in fixed memory: log-linear buckets as in
// HdrHistogram. The zero value is not ready; use NewHistogram.
type Histogram struct {
	counts [numBuckets]atomic.Int64
	total  atomic.Int64
	sum    atomic.Int64
	min    atomic.Int64
	max    atomic.Int64
}

const (
	subBits    = 6 // 64 linear sub-buckets per power of two
	subCount   = 1 << subBits
	numBuckets = (64 - subBits + 1) * subCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v int64) int {
	u := uint64(v)
	if u < subCount {
		return int(u)
	}
	exp := bits.Len64(u) - subBits // >= 1
	return exp*subCount + int(u>>uint(exp-1)) - subCount
}

// bucketRange is the [lo, hi] range of values a bucket holds.
func bucketRange(b int) (lo, hi int64) {
	if b < subCount {
		return int64(b), int64(b)
	}
	exp := b / subCount
	sub := b%subCount + subCount
	lo = int64(sub) << uint(exp-1)
	hi = lo + int64(1)<<uint(exp-1) - 1
	return lo, hi
}

// Record adds one duration (negative ones count as zero).
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is how many values were recorded.
func (h *Histogram) Count() int64 { return h.total.Load() }

// Snapshot is a histogram's summary at one moment.
type Snapshot struct {
	Count int64         `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P95   time.Duration `json:"p95_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Snapshot summarises what was recorded so far.
func (h *Histogram) Snapshot() Snapshot {
	var counts [numBuckets]int64
	var n int64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	s := Snapshot{Count: n}
	if n == 0 {
		return s
	}
	s.Min = time.Duration(h.min.Load())
	s.Max = time.Duration(h.max.Load())
	s.Mean = time.Duration(h.sum.Load() / max(h.total.Load(), 1))
	q := func(p float64) time.Duration {
		return time.Duration(min(max(quantile(counts[:], n, p), int64(s.Min)), int64(s.Max)))
	}
	s.P50, s.P90, s.P95, s.P99, s.P999 = q(0.50), q(0.90), q(0.95), q(0.99), q(0.999)
	return s
}

// quantile returns the value at quantile p (0..1): the upper end of the
// bucket holding the ceil(p*n)-th smallest value, so a reported
// percentile never understates.
func quantile(counts []int64, n int64, p float64) int64 {
	rank := int64(math.Ceil(p * float64(n)))
	rank = min(max(rank, 1), n)
	var seen int64
	for b, c := range counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(b)
			return hi
		}
	}
	return 0
}
