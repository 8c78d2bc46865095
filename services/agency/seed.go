package agency

import (
	"context"
	"time"

	"github.com/loteria/loteria/services/internal/wire"
)

// seed runs the seed protocol: no HELLO, no extensions, so nothing tells
// the agency what the central has. A refused dial is retried (nothing was
// sent yet), but once connected the first failure is final: resending
// could store bets twice.
func (r *run) seed(ctx context.Context) error {
	c := r.c
	for {
		var w wire.Winners
		r.curRound = int(r.chunk) + 1
		c.m.round.Set(float64(r.curRound))
		err := r.retry(ctx, "connecting", func(ctx context.Context) error {
			cn, err := c.dial(ctx, false)
			if err != nil {
				return err
			}
			defer cn.close()
			if err := r.seedConverse(ctx, cn, &w); err != nil {
				return &finalError{err}
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.Round = r.curRound // the seed's winners do not say which round
		r.emit(w)
		if r.lastChunk >= 0 && r.chunk >= r.lastChunk {
			return nil
		}
		r.nextChunk()
	}
}

func (r *run) seedConverse(ctx context.Context, cn *conn, w *wire.Winners) error {
	if err := r.sendRange(ctx, cn, 0, r.chunkStart()); err != nil {
		return err
	}
	r.c.log.Info("bets sent", "bets", r.res.Bets, "batches", r.res.Batches)
	r.endAt = time.Now()
	r.c.log.Info("waiting for the draw (up to "+r.c.opts.WinnersTimeout.String()+")", "round", r.curRound)
	if err := r.readWinners(ctx, cn, r.curRound, false, r.endAt.Add(r.c.opts.WinnersTimeout), w); err != nil {
		return err
	}
	r.res.BarrierWait = time.Since(r.endAt)
	return nil
}
