package loadtest

import (
	"context"
	"math"
	"time"
)

// pacedFlush bounds the time a paced batch's bets span (Config.defaults).
const pacedFlush = time.Second

// pacer schedules one agency's bets at a fixed rate (open model): the
// batch that starts with the agency's bet number `sent` is due at
// start + phase + sent/rate, whatever happened to earlier ones, and its
// latency counts from then.
type pacer struct {
	phase  time.Duration
	start  time.Time // set at the first batch, once connected
	perBet float64   // nanoseconds between two bets of this agency
}

func newPacer(cfg Config, agencyID int) *pacer {
	perBet := 1e9 * float64(cfg.Agencies) / cfg.Rate
	// Spread the agencies evenly over one batch's time so they do not fire
	// in bursts. A full 8 KiB frame holds about 180 realistic bets
	// whatever --batch allows, so one batch is at most 200 bets' time. A
	// timed run spreads them over at most a quarter of its duration, so
	// that at a low rate per agency every agency still sends during most of
	// the run.
	spread := time.Duration(perBet * float64(min(cfg.Batch, 200)))
	if cfg.Duration > 0 {
		spread = min(spread, cfg.Duration/4)
	}
	phase := time.Duration(float64(spread) * float64(agencyID-1) / float64(cfg.Agencies))
	return &pacer{phase: phase, perBet: perBet}
}

// pacedBets is how many bets a paced, timed run offers one agency: those
// due before --duration ends (at least one). Without it a batch packed
// just before the deadline would wait for its time long after it: at 2
// bets/s an agency's full batch is due 90 s after the one before. 0: the
// run is not both paced and timed.
func pacedBets(cfg Config, agencyID int) int {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return 0
	}
	p := newPacer(cfg, agencyID)
	return max(1, int(math.Ceil(float64(cfg.Duration-p.phase)/p.perBet)))
}

func (p *pacer) wait(ctx context.Context, sent int) (time.Time, error) {
	if p.start.IsZero() {
		p.start = time.Now().Add(p.phase)
	}
	due := p.start.Add(time.Duration(p.perBet * float64(sent)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return due, ctx.Err()
		case <-t.C:
		}
	}
	return due, nil
}
