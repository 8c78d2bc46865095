package loadtest

import (
	"context"
	"time"
)

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
	// whatever --batch allows, so one batch is at most 200 bets' time.
	phase := time.Duration(perBet * float64(min(cfg.Batch, 200)) * float64(agencyID-1) / float64(cfg.Agencies))
	return &pacer{phase: phase, perBet: perBet}
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
