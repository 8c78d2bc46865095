package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jsonLines parses the JSON log records in buf.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func newJSONLimiter(t *testing.T, level string, every time.Duration, clock *fakeClock) (*Limiter, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := NewLogger(&buf, LogOptions{Format: FormatJSON, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	return NewLimiter(l, every, clock.now), &buf
}

// TestLimiterSequence walks one kind through a fixed timeline: what is
// written, and the counts carried, follow from the arithmetic of the
// interval alone.
func TestLimiterSequence(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before logging
		n     int           // records logged at that instant
	}
	tests := []struct {
		name string
		// every is the interval; steps is the timeline.
		every time.Duration
		steps []step
		// want is, per written record, its suppressed count (0: none) and
		// suppressed_over.
		want []struct {
			suppressed int
			over       time.Duration
		}
	}{
		{
			name: "first passes, the rest of the interval is counted", every: 10 * time.Second,
			steps: []step{{0, 1}, {time.Second, 5}, {8 * time.Second, 3}, {time.Second, 1}},
			want: []struct {
				suppressed int
				over       time.Duration
			}{{0, 0}, {8, 10 * time.Second}},
		},
		{
			name: "a quiet kind writes every record", every: time.Second,
			steps: []step{{0, 1}, {time.Second, 1}, {5 * time.Second, 1}},
			want: []struct {
				suppressed int
				over       time.Duration
			}{{0, 0}, {0, 0}, {0, 0}},
		},
		{
			name: "one line per interval under a flood", every: time.Second,
			steps: []step{{0, 100}, {time.Second, 100}, {time.Second, 100}, {1500 * time.Millisecond, 1}},
			want: []struct {
				suppressed int
				over       time.Duration
			}{{0, 0}, {99, time.Second}, {99, time.Second}, {99, 1500 * time.Millisecond}},
		},
		{
			name: "the default interval is 10s", every: 0,
			steps: []step{{0, 1}, {9 * time.Second, 1}, {time.Second, 1}},
			want: []struct {
				suppressed int
				over       time.Duration
			}{{0, 0}, {1, 10 * time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			lim, buf := newJSONLimiter(t, "info", tt.every, clock)
			for _, s := range tt.steps {
				clock.advance(s.after)
				for range s.n {
					lim.Warn("bad_header", "protocol error", "reason", "bad_header")
				}
			}
			recs := jsonLines(t, buf)
			if len(recs) != len(tt.want) {
				t.Fatalf("%d records written, want %d: %v", len(recs), len(tt.want), recs)
			}
			for i, w := range tt.want {
				r := recs[i]
				if r["msg"] != "protocol error" || r["reason"] != "bad_header" || r["level"] != "WARN" {
					t.Errorf("record %d = %v, want the caller's record", i, r)
				}
				got, has := r[SuppressedKey]
				if w.suppressed == 0 {
					if has {
						t.Errorf("record %d carries %s = %v, want none", i, SuppressedKey, got)
					}
					continue
				}
				if got != float64(w.suppressed) || r[SuppressedOverKey] != float64(w.over) {
					t.Errorf("record %d: %s = %v, %s = %v; want %d, %v", i, SuppressedKey, got, SuppressedOverKey, r[SuppressedOverKey], w.suppressed, w.over)
				}
			}
		})
	}
}

func TestLimiterKindsIndependent(t *testing.T) {
	clock := newFakeClock()
	lim, buf := newJSONLimiter(t, "info", time.Minute, clock)
	for range 3 {
		lim.Warn("a", "first kind")
		lim.Warn("b", "second kind")
		lim.Log(context.Background(), slog.LevelError, "c", "third kind")
	}
	recs := jsonLines(t, buf)
	if len(recs) != 3 || recs[0]["msg"] != "first kind" || recs[1]["msg"] != "second kind" || recs[2]["msg"] != "third kind" || recs[2]["level"] != "ERROR" {
		t.Fatalf("records %v, want one of each kind", recs)
	}
}

// TestLimiterDisabledLevelNotCounted: records the logger would drop are
// neither written nor counted.
func TestLimiterDisabledLevelNotCounted(t *testing.T) {
	clock := newFakeClock()
	lim, buf := newJSONLimiter(t, "warn", time.Second, clock)
	for range 10 {
		lim.Log(context.Background(), slog.LevelInfo, "k", "quiet")
	}
	lim.Flush(context.Background())
	if buf.Len() != 0 {
		t.Fatalf("wrote %q for records below the level", buf.String())
	}
}

// TestLimiterFlush: counts pending when the records stop come out, once.
func TestLimiterFlush(t *testing.T) {
	clock := newFakeClock()
	lim, buf := newJSONLimiter(t, "info", 10*time.Second, clock)
	for range 4 {
		lim.Warn("a", "slow fsync", "took", "2s")
	}
	for range 2 {
		lim.Log(context.Background(), slog.LevelError, "b", "accept failed")
	}
	lim.Warn("c", "alone")
	clock.advance(3 * time.Second)
	lim.Flush(context.Background())
	lim.Flush(context.Background()) // nothing left the second time
	recs := jsonLines(t, buf)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %v %v", r["level"], r["msg"], r[SuppressedKey], r[SuppressedOverKey]))
	}
	want := []string{
		"WARN slow fsync <nil> <nil>",
		"ERROR accept failed <nil> <nil>",
		"WARN alone <nil> <nil>",
		fmt.Sprintf("ERROR accept failed 1 %v", float64(3*time.Second)),
		fmt.Sprintf("WARN slow fsync 3 %v", float64(3*time.Second)),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := recs[4]["took"]; ok {
		t.Errorf("flushed record carries a suppressed record's attributes: %v", recs[4])
	}
}

// TestLimiterBoundedKinds: past maxKinds suppressing kinds, new kinds share
// one allowance, so lines stay bounded; kinds whose interval is over are
// forgotten to make room, without losing a count.
func TestLimiterBoundedKinds(t *testing.T) {
	clock := newFakeClock()
	lim, buf := newJSONLimiter(t, "info", time.Minute, clock)
	// maxKinds kinds, each suppressing one record.
	for i := range maxKinds {
		kind := fmt.Sprintf("kind-%d", i)
		lim.Warn(kind, "m")
		lim.Warn(kind, "m")
	}
	// 500 kinds more: the first passes, the others are counted together.
	for i := range 500 {
		lim.Warn(fmt.Sprintf("extra-%d", i), "extra")
	}
	recs := jsonLines(t, buf)
	if len(recs) != maxKinds+1 {
		t.Fatalf("%d records, want %d (one per remembered kind, one for the rest)", len(recs), maxKinds+1)
	}
	buf.Reset()
	lim.Flush(context.Background())
	recs = jsonLines(t, buf)
	total := 0
	for _, r := range recs {
		total += int(r[SuppressedKey].(float64))
	}
	if len(recs) != maxKinds+1 || total != maxKinds+499 {
		t.Fatalf("flush wrote %d records counting %d, want %d counting %d", len(recs), total, maxKinds+1, maxKinds+499)
	}

	// An interval later, nothing counts any more: the kinds are forgotten
	// as new ones arrive, and a new kind passes on its own.
	clock.advance(time.Minute)
	buf.Reset()
	lim.Warn("fresh", "fresh kind")
	lim.Warn("fresh", "fresh kind")
	clock.advance(time.Minute)
	lim.Warn("fresh", "fresh kind")
	recs = jsonLines(t, buf)
	if len(recs) != 2 || recs[0][SuppressedKey] != nil || recs[1][SuppressedKey] != float64(1) {
		t.Fatalf("records %v: want the fresh kind limited on its own", recs)
	}
}

// TestLimiterDoesNotWriteIntoCallerArgs: the attributes it adds never land
// in the caller's slice.
func TestLimiterDoesNotWriteIntoCallerArgs(t *testing.T) {
	clock := newFakeClock()
	lim, _ := newJSONLimiter(t, "info", time.Second, clock)
	args := make([]any, 2, 8)
	args[0], args[1] = "reason", "x"
	lim.Warn("k", "m", args...)
	lim.Warn("k", "m", args...)
	clock.advance(time.Second)
	lim.Warn("k", "m", args...)
	if spare := args[:4]; spare[2] != nil || spare[3] != nil {
		t.Fatalf("the limiter wrote %v into the caller's spare capacity", spare[2:])
	}
}

// TestLimiterSeedEvents: with LOG_FORMAT=seed, the seed's events are
// written every time (one apuesta_recibida line per batch); our own
// warnings are still limited. In JSON the same events are limited.
func TestLimiterSeedEvents(t *testing.T) {
	for _, tt := range []struct {
		format           string
		wantEvents, want int
	}{
		{FormatSeed, 20, 1},
		{FormatJSON, 1, 1},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogOptions{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			lim := NewLimiter(l.With("component", "conn"), time.Minute, newFakeClock().now)
			for range 20 {
				lim.Log(context.Background(), slog.LevelError, "refused", EventBetsReceived, KeyResult, "fail", KeyCount, 0)
				lim.Warn("bad_header", "protocol error")
			}
			if got := strings.Count(buf.String(), EventBetsReceived); got != tt.wantEvents {
				t.Errorf("%d %s lines, want %d:\n%s", got, EventBetsReceived, tt.wantEvents, buf.String())
			}
			if got := strings.Count(buf.String(), "protocol error"); got != tt.want {
				t.Errorf("%d warning lines, want %d", got, tt.want)
			}
		})
	}
}

// TestLimiterConcurrent: from many goroutines, every record is either
// written or counted in a later record or the flush.
func TestLimiterConcurrent(t *testing.T) {
	clock := newFakeClock()
	var buf syncBuffer
	l, err := NewLogger(&buf, LogOptions{Format: FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	lim := NewLimiter(l, time.Second, clock.now)
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if g == 0 && i%100 == 0 {
					clock.advance(time.Second)
				}
				lim.Warn(fmt.Sprintf("kind-%d", i%3), "m")
			}
		})
	}
	wg.Wait()
	during := jsonLines(t, &buf.Buffer)
	buf.Reset()
	lim.Flush(context.Background())
	flushed := jsonLines(t, &buf.Buffer)
	// A record written during the run stands for itself and the ones it
	// counts; a flushed one for its count only.
	total := 0
	for _, r := range during {
		total++
		if n, ok := r[SuppressedKey].(float64); ok {
			total += int(n)
		}
	}
	for _, r := range flushed {
		total += int(r[SuppressedKey].(float64))
	}
	if total != goroutines*each {
		t.Fatalf("records written or counted: %d, want %d", total, goroutines*each)
	}
	if len(during) >= goroutines*each/2 {
		t.Fatalf("%d of %d records written: the limiter did not limit", len(during), goroutines*each)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}
