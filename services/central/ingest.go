package central

import (
	"sync/atomic"
	"time"
)

// ingestLogInterval is how often the central sums up, at INFO, what it
// took: an operator of 1,000 agencies reads one line every few seconds,
// not one per batch (LOG_FORMAT=seed keeps the seed's line per batch).
const ingestLogInterval = 10 * time.Second

// ingest counts what the summary line reports; one atomic add per batch.
type ingest struct {
	batches atomic.Int64
	bets    atomic.Int64
	refused atomic.Int64
}

func (in *ingest) took(bets int, ok bool) {
	in.batches.Add(1)
	if ok {
		in.bets.Add(int64(bets))
	} else {
		in.refused.Add(1)
	}
}

// ingestLog writes the summary while batches arrive; it is quiet when
// nothing happens.
func (s *Server) ingestLog() {
	t := time.NewTicker(ingestLogInterval)
	defer t.Stop()
	var lastBatches, lastBets, lastRefused int64
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			b, n, r := s.in.batches.Load(), s.in.bets.Load(), s.in.refused.Load()
			if b == lastBatches {
				last = now
				continue
			}
			secs := now.Sub(last).Seconds()
			s.mu.Lock()
			conns := len(s.conns)
			s.mu.Unlock()
			s.log.Info("ingest", "batches", b-lastBatches, "bets", n-lastBets, "refused", r-lastRefused,
				"bets_per_second", int64(float64(n-lastBets)/secs), "connections", conns, "round", s.rounds.lastRound())
			lastBatches, lastBets, lastRefused, last = b, n, r, now
		}
	}
}
