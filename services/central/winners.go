package central

import (
	"context"
	"slices"
	"sync"

	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
)

// winnerBook keeps the winning bets as batches become durable, so the
// draw is a sort of the few winners rather than a pass over every stored
// bet. On start it is filled from the store (recovery), so a restarted
// central draws the same.
type winnerBook struct {
	mu      sync.Mutex
	entries []winnerEntry
	bets    int
	// pending counts batches admitted to the store whose outcome is not
	// recorded yet; the draw waits for them.
	pending sync.WaitGroup
}

type winnerEntry struct {
	pos    int64 // where the bet's batch is in the store: orders entries
	agency int
	dni    string
}

// load takes the winners already in the store. Rows that were there at
// start precede everything stored later, so their rank orders them.
func (w *winnerBook) load(st *store.Store) error {
	var rank int64 = -1 << 62
	return st.Scan(func(agency int, doc []byte, number int) error {
		w.bets++
		if lottery.Wins(number) {
			w.entries = append(w.entries, winnerEntry{pos: rank, agency: agency, dni: string(doc)})
			rank++
		}
		return nil
	})
}

// record takes a durable batch's winners (in batch order) and bet count.
func (w *winnerBook) record(pos int64, agency int, dnis []string, bets int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bets += bets
	for _, d := range dnis {
		w.entries = append(w.entries, winnerEntry{pos: pos, agency: agency, dni: d})
	}
}

// result waits for every admitted batch's outcome, then lays the winners
// out per agency in stored order.
func (w *winnerBook) result(ctx context.Context) (*lottery.Result, error) {
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// A stable sort keeps the order of a batch's own winners.
	slices.SortStableFunc(w.entries, func(a, b winnerEntry) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		return 0
	})
	res := lottery.NewResult()
	for _, e := range w.entries {
		res.AddWinner(e.agency, e.dni)
	}
	res.AddBets(w.bets - len(w.entries))
	return res, nil
}
