package central

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// rounds is the barrier grown into a durable state machine: a round is
// open (taking bets), then closed (by its barrier, its cut-off or the
// barrier timeout), then drawn; the next round opens when one closes,
// until the configured number of rounds is done. Every transition is a
// ledger record, so a restarted central resumes where it stood. See
// docs/ROUNDS.md.
type rounds struct {
	s        *Server
	led      ledger.Ledger
	expected int
	max      int // rounds to hold; < 0: until stopped
	fixed    bool

	// gate orders admissions (batches, ENDs: shared) against closing a
	// round (exclusive), so every entry queued before a close is in the
	// round closed and none after it.
	gate sync.RWMutex

	mu    sync.Mutex
	cur   *round // the open round; nil once every round is done
	byNum map[int]*round
	last  int // the newest round
	// totals are the stream lengths agencies announced, for the status.
	totals map[int]int64

	draws   sync.WaitGroup
	redraws []*round // closed but not drawn when the central started
}

// round states.
const (
	stateOpen = iota
	stateClosed
	stateDrawn
	stateFailed
)

type round struct {
	rs     *rounds
	num    int
	opened time.Time
	bets   atomic.Int64 // stored in it so far (for the status and gauge)
	book   winnerBook
	// booked: book holds every winning bet of the round (the one-shot
	// mode's open round). A round recovered closed has no book: its draw
	// reads the stored bets.
	booked bool

	mu       sync.Mutex
	state    int
	reason   ledger.CloseReason
	ended    map[int]bool // durable ENDs
	endedIn  int          // of those, the agencies 1..rs.expected (so missing is expected-endedIn)
	pending  map[int]bool // ENDs queued, not durable yet
	anon     int
	firstEnd time.Time
	timers   []*time.Timer
	waiters  map[*conn]struct{}
	done     chan struct{} // closed once drawn (or failed)

	draw    *ledger.Draw
	winners map[int][]string // nil until drawn or loaded
	err     error
	load    sync.Mutex // one load of a recovered round's winners at a time
}

// roundError refuses an operation because of the rounds' state.
type roundError struct {
	result, code, msg string
}

func (e *roundError) Error() string { return e.msg }

func newRounds(s *Server) (*rounds, error) {
	cfg := s.cfg
	rs := &rounds{
		s:        s,
		led:      s.led,
		expected: cfg.Agencies,
		max:      cfg.Rounds,
		fixed:    cfg.Rounds == 1 && cfg.RoundCutoff == 0,
		byNum:    make(map[int]*round),
		totals:   make(map[int]int64),
	}
	rec := s.led.Recovered()
	for _, cr := range rec.Rounds {
		r := rs.newRound(cr.Round)
		r.reason = cr.Reason
		r.bets.Store(cr.Bets)
		for _, e := range cr.Ends {
			r.addEnd(e.Agency)
		}
		if cr.Draw != nil {
			d := *cr.Draw
			r.draw, r.state = &d, stateDrawn
			close(r.done)
		} else {
			r.state = stateClosed
			rs.redraws = append(rs.redraws, r)
		}
		rs.byNum[r.num] = r
		rs.last = r.num
	}
	if rs.max > 0 && rec.Round > rs.max {
		// Every round is done: winners stay answerable, bets are refused.
		s.log.Warn("the store holds a finished run: agencies get their winners, new bets are refused; use a new store (--store) for a new run",
			"rounds", rs.max, "bets", rec.Bets, "store_bytes", rec.Bytes)
	} else {
		r := rs.newRound(rec.Round)
		r.bets.Store(rec.RoundBets)
		for _, e := range rec.Ends {
			r.addEnd(e.Agency)
		}
		if rs.fixed {
			if err := r.book.load(s.led, r.num); err != nil {
				return nil, fmt.Errorf("read round %d's stored bets: %w", r.num, err)
			}
			r.booked = true
		}
		rs.byNum[r.num] = r
		rs.cur, rs.last = r, r.num
		if rec.Bets > 0 || r.num > 1 {
			s.log.Info("resuming", "round", r.num, "round_bets", rec.RoundBets, "bets", rec.Bets,
				"finished", r.finishedLocked(), "expected", rs.expected)
		}
		if past := len(r.ended) - r.endedIn; past > 0 {
			s.log.Warn("the open round holds ENDs of agencies past CLIENT_COUNT (a store of a run with more agencies): they do not count toward the barrier",
				"round", r.num, "ignored", past, "expected", rs.expected)
		}
	}
	if rec.Quarantined != "" {
		s.log.Warn("store recovery moved unacknowledged bytes aside", "file", rec.Quarantined, "bytes", rec.QuarantinedBytes)
	}
	s.m.round.Set(float64(rs.last))
	return rs, nil
}

func (rs *rounds) newRound(num int) *round {
	return &round{
		rs: rs, num: num, opened: rs.s.cfg.Now(),
		ended: make(map[int]bool), pending: make(map[int]bool),
		waiters: make(map[*conn]struct{}), done: make(chan struct{}),
	}
}

func (rs *rounds) fixedNumber() bool { return rs.fixed }

// start arms the open round's timers, redraws rounds that closed before a
// restart, and starts the periodic "who is missing" log.
func (rs *rounds) start() {
	rs.mu.Lock()
	cur := rs.cur
	redraws := rs.redraws
	rs.redraws = nil
	rs.mu.Unlock()
	for _, r := range redraws {
		rec := ledger.NewReceipt()
		rec.Round, rec.Stored = r.num, int(r.bets.Load())
		rec.Complete(nil)
		rs.s.log.Info("round closed before the restart: holding its draw now", "round", r.num)
		rs.draws.Add(1)
		go func() {
			defer rs.draws.Done()
			rs.holdDraw(r, rec)
		}()
	}
	if cur != nil {
		rs.arm(cur)
		// The barrier timeout of a round that holds ENDs from before the
		// restart starts now: no END after the restart is the round's
		// first, and the timeout used never to fire then, so one crash
		// undid the operator's guard against a dead agency (helper-35).
		// Before the listeners accept, so no END races it.
		// The same goes for loteria_barrier_first_end_to_draw_seconds:
		// its first END is before this process, so the restart stands in.
		if cur.finished() > 0 {
			cur.mu.Lock()
			cur.firstEnd = time.Now()
			cur.mu.Unlock()
			rs.armBarrierTimeout(cur)
		}
		if n := cur.finished(); n >= rs.expected {
			rs.close(cur, ledger.CloseBarrier)
		}
	}
	rs.draws.Add(1)
	go func() {
		defer rs.draws.Done()
		rs.statusLog()
	}()
}

// arm starts a round's cut-off timer (counted from when it opened in this
// process: after a restart, from the restart).
func (rs *rounds) arm(r *round) {
	if d := rs.s.cfg.RoundCutoff; d > 0 {
		r.mu.Lock()
		r.timers = append(r.timers, time.AfterFunc(d, func() { rs.close(r, ledger.CloseCutoff) }))
		r.mu.Unlock()
	}
	rs.s.m.round.Set(float64(r.num))
	rs.s.m.roundBets.Set(float64(r.bets.Load()))
	rs.s.m.finished.Set(float64(r.finished()))
}

// armBarrierTimeout closes r BarrierTimeout from now, if one is set.
func (rs *rounds) armBarrierTimeout(r *round) {
	if d := rs.s.cfg.BarrierTimeout; d > 0 {
		r.mu.Lock()
		r.timers = append(r.timers, time.AfterFunc(d, func() { rs.close(r, ledger.CloseTimeout) }))
		r.mu.Unlock()
	}
}

// stopAll stops the timers and waits for draws in progress.
func (rs *rounds) stopAll() {
	rs.mu.Lock()
	for _, r := range rs.byNum {
		r.mu.Lock()
		for _, t := range r.timers {
			t.Stop()
		}
		r.timers = nil
		r.mu.Unlock()
	}
	rs.mu.Unlock()
	rs.draws.Wait()
}

func (rs *rounds) open() *round {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.cur
}

func (rs *rounds) get(num int) *round {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.byNum[num]
}

// admit runs fn (which queues a batch or a refusal in the ledger) in the
// open round, unless no round is open or the agency already sent END in
// it.
func (rs *rounds) admit(agency int, fn func(*round) (*ledger.Receipt, error)) (*round, *ledger.Receipt, error) {
	rs.gate.RLock()
	defer rs.gate.RUnlock()
	r := rs.open()
	if r == nil {
		return nil, nil, &roundError{resultAfterDraw, wire.CodeClosed, "the draw has already been held: no more bets are taken"}
	}
	if r.hasEnded(agency) {
		return nil, nil, &roundError{resultAfterEnd, wire.CodeEnded,
			fmt.Sprintf("agency %d already sent END in round %d: no more bets from it until that round's draw", agency, r.num)}
	}
	rec, err := fn(r)
	return r, rec, err
}

// end records an agency's END and returns the round whose draw it waits
// for. want > 0 names a round (a v1 agency collecting winners); a closed
// round is then only waited for, nothing is recorded.
func (rs *rounds) end(agency, want int) (*round, error) {
	if want > 0 {
		r := rs.get(want)
		if r == nil {
			return nil, &roundError{resultAfterDraw, wire.CodeRound, fmt.Sprintf("round %d has not opened", want)}
		}
		if r != rs.open() {
			return r, nil
		}
	}
	rs.gate.RLock()
	r := rs.open()
	if want > 0 && (r == nil || r.num != want) {
		// The round named was open a moment ago and has closed since
		// (its close holds the gate): the END only waits for its draw.
		// Recorded in the round open now, it would count an END the
		// agency never sent there (helper-33).
		rs.gate.RUnlock()
		return rs.get(want), nil
	}
	if r == nil {
		rs.gate.RUnlock()
		// After the last round, END collects the last round's winners.
		return rs.get(rs.lastRound()), nil
	}
	r.mu.Lock()
	dup := agency != 0 && (r.ended[agency] || r.pending[agency])
	if !dup {
		r.pending[agency] = true
	}
	r.mu.Unlock()
	if dup {
		rs.gate.RUnlock()
		return r, nil
	}
	rec, err := rs.led.End(agency)
	rs.gate.RUnlock()
	if err == nil {
		err = rec.Wait()
	}
	if err != nil {
		r.mu.Lock()
		delete(r.pending, agency)
		r.mu.Unlock()
		return nil, err
	}
	first, all := r.endRecorded(agency, rs.expected)
	rs.s.m.finished.Set(float64(r.finished()))
	rs.s.log.Info("agency finished", "agency", agency, "round", r.num, "finished", r.finished(), "expected", rs.expected)
	if first {
		rs.armBarrierTimeout(r)
	}
	if all {
		rs.close(r, ledger.CloseBarrier)
	}
	return r, nil
}

func (rs *rounds) lastRound() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.last
}

// close ends r's sales (if it is still the open round), opens the next
// round unless every round is done, and holds r's draw.
func (rs *rounds) close(r *round, reason ledger.CloseReason) {
	rs.gate.Lock()
	rs.mu.Lock()
	if rs.cur != r {
		rs.mu.Unlock()
		rs.gate.Unlock()
		return
	}
	rec, err := rs.led.CloseRound(reason)
	if err != nil {
		rs.mu.Unlock()
		rs.gate.Unlock()
		rs.s.log.Error("round could not be closed", "round", r.num, "reason", reason.String(), "err", err)
		return
	}
	r.mu.Lock()
	r.state, r.reason = stateClosed, reason
	for _, t := range r.timers {
		t.Stop()
	}
	r.timers = nil
	r.mu.Unlock()
	var next *round
	if rs.max < 0 || r.num < rs.max {
		next = rs.newRound(r.num + 1)
		rs.byNum[next.num] = next
		rs.last = next.num
	}
	rs.cur = next
	rs.mu.Unlock()
	rs.gate.Unlock()
	rs.s.log.Info("round closed", "round", r.num, "reason", reason.String(), "finished", r.finished(), "expected", rs.expected)
	if next != nil {
		rs.arm(next)
		rs.s.log.Info("round open", "round", next.num)
	}
	rs.draws.Add(1)
	go func() {
		defer rs.draws.Done()
		rs.holdDraw(r, rec)
	}()
}

// holdDraw draws a closed round once every bet queued before its close is
// durable: the winning number (7574 in the one-shot mode, else a fresh
// one from crypto/rand), the winners in stored order, and the DRAW record,
// written before any winner is sent.
func (rs *rounds) holdDraw(r *round, closed *ledger.Receipt) {
	s := rs.s
	ctx, span := s.tracer.Start(context.Background(), "central.draw", trace.WithAttributes(attribute.Int("loteria.round", r.num)))
	defer span.End()
	start := time.Now()
	d, winners, err := rs.computeDraw(ctx, r, closed)
	if err == nil {
		var rec *ledger.Receipt
		if rec, err = s.led.RecordDraw(d); err == nil {
			err = rec.Wait()
		}
	}
	if err != nil {
		span.SetStatus(codes.Error, "draw failed")
		s.log.Error("sorteo", "result", "fail", "round", r.num, "err", err)
		r.finish(nil, nil, fmt.Errorf("draw of round %d: %w", r.num, err))
		return
	}
	byAgency := make(map[int][]string)
	for _, w := range winners {
		byAgency[w.Agency] = append(byAgency[w.Agency], w.Document)
	}
	r.finish(&d, byAgency, nil)
	rs.compact(r.num - 2)
	took := time.Since(start)
	s.m.draws.Inc()
	s.m.drawTook.Set(took.Seconds())
	s.m.roundDuration.Observe(time.Since(r.opened).Seconds())
	r.mu.Lock()
	firstEnd := r.firstEnd
	r.mu.Unlock()
	if !firstEnd.IsZero() {
		s.m.endToDraw.Set(time.Since(firstEnd).Seconds())
	}
	if s.cfg.Agencies <= maxAgencySeries {
		for a := 1; a <= s.cfg.Agencies; a++ {
			s.m.winners.WithLabelValues(agencyLabel(a)).Set(float64(len(byAgency[a])))
		}
	}
	span.SetAttributes(attribute.Int64("loteria.draw.bets", d.Bets), attribute.Int("loteria.draw.winners", d.Winners))
	s.log.InfoContext(ctx, "sorteo", "result", "success", "round", r.num, "number", d.Number, "bets", d.Bets, "winners", d.Winners, "took", took)
}

func (rs *rounds) computeDraw(ctx context.Context, r *round, closed *ledger.Receipt) (ledger.Draw, []ledger.Winner, error) {
	d := ledger.Draw{Round: r.num}
	if err := closed.Wait(); err != nil {
		return d, nil, err
	}
	var winners []ledger.Winner
	switch {
	case rs.fixed && r.booked:
		d.Number = lottery.WinningNumber
		winners = r.book.result()
		d.Bets = int64(closed.Stored)
	default:
		d.Number = lottery.WinningNumber
		if !rs.fixed {
			n, err := rand.Int(rand.Reader, big.NewInt(lottery.MaxNumber+1))
			if err != nil {
				return d, nil, fmt.Errorf("draw a number: %w", err)
			}
			d.Number = int(n.Int64())
		}
		var bets int64
		var err error
		winners, bets, err = scanWinners(rs.led, r.num, d.Number)
		if err != nil {
			return d, nil, err
		}
		d.Bets = bets
	}
	d.Winners = len(winners)
	d.Digest = ledger.WinnersDigest(winners)
	return d, winners, nil
}

// scanWinners reads a round's stored bets for those playing number.
func scanWinners(led ledger.Ledger, round, number int) ([]ledger.Winner, int64, error) {
	var winners []ledger.Winner
	var bets int64
	err := led.Scan(round, func(agency int, doc []byte, n int) error {
		bets++
		if n == number {
			winners = append(winners, ledger.Winner{Agency: agency, Document: string(doc)})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read round %d's stored bets: %w", round, err)
	}
	return winners, bets, nil
}

// winnersOf is an agency's winners of a drawn round. A round drawn before
// a restart has its winners recomputed from the stored bets and checked
// against the digest its DRAW record kept.
func (rs *rounds) winnersOf(r *round, agency int) (wire.Winners, error) {
	w := wire.Winners{Round: r.num}
	r.mu.Lock()
	err, d, byAgency := r.err, r.draw, r.winners
	r.mu.Unlock()
	if err != nil {
		return w, err
	}
	if d == nil {
		return w, errors.New("the draw has not been held")
	}
	w.Number = d.Number
	if byAgency == nil {
		var err error
		if byAgency, err = r.loadWinners(rs.led); err != nil {
			return w, err
		}
	}
	w.DNIs = byAgency[agency]
	return w, nil
}

func (r *round) loadWinners(led ledger.Ledger) (map[int][]string, error) {
	r.load.Lock()
	defer r.load.Unlock()
	r.mu.Lock()
	byAgency, d := r.winners, r.draw
	r.mu.Unlock()
	if byAgency != nil {
		return byAgency, nil
	}
	winners, _, err := scanWinners(led, r.num, d.Number)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(ledger.WinnersDigest(winners), d.Digest) {
		return nil, fmt.Errorf("round %d's stored bets no longer give the winners its draw record holds: the bets file was changed outside loteria", r.num)
	}
	byAgency = make(map[int][]string)
	for _, w := range winners {
		byAgency[w.Agency] = append(byAgency[w.Agency], w.Document)
	}
	r.mu.Lock()
	r.winners = byAgency
	r.mu.Unlock()
	return byAgency, nil
}

// compact lets a drawn round keep only what is still asked of it (its
// draw, its winners, how many finished), so a central holding rounds for
// days does not keep every round's END set and winner book.
func (rs *rounds) compact(num int) {
	r := rs.get(num)
	if r == nil || !r.isDone() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended == nil {
		return
	}
	r.ended, r.pending = nil, nil // finished() stays right: endedIn and anon are kept
	r.book = winnerBook{}
}

// welcome is the WELCOME for an agency asking for round want (0: the open
// one, or the last after every round is done).
func (rs *rounds) welcome(agency, want int, total int64) (wire.Welcome, error) {
	var r *round
	if want > 0 {
		if r = rs.get(want); r == nil {
			return wire.Welcome{}, &roundError{resultAfterDraw, wire.CodeRound, fmt.Sprintf("round %d has not opened (the open round is %d)", want, rs.lastRound())}
		}
	} else if r = rs.open(); r == nil {
		r = rs.get(rs.lastRound())
	}
	if total >= 0 {
		rs.mu.Lock()
		rs.totals[agency] = total
		rs.mu.Unlock()
	}
	st := rs.led.Agency(agency)
	return wire.Welcome{
		Agency:   agency,
		Round:    r.num,
		State:    r.stateName(),
		Mark:     st.Mark,
		Rejected: st.Rejected,
		Ended:    r.hasEnded(agency),
		LastEnd:  st.LastEnd.Round,
		LastMark: st.LastEnd.Mark,
	}, nil
}

func (r *round) addEnd(agency int) {
	if agency == 0 {
		r.anon++
		return
	}
	if !r.ended[agency] && agency >= 1 && agency <= r.rs.expected {
		r.endedIn++ // a store from a run with a larger CLIENT_COUNT may hold ENDs past it
	}
	r.ended[agency] = true
}

// endRecorded takes a durable END; it says whether it was the round's
// first and whether every agency has now sent one.
func (r *round) endRecorded(agency, expected int) (first, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, agency)
	// Only the agencies 1..expected count: a store from a run with a
	// larger CLIENT_COUNT may hold ENDs of agencies past it, and those
	// once held the draw before an agency of this run had finished.
	first = r.finishedLocked() == 0
	if first {
		r.firstEnd = time.Now()
	}
	r.addEnd(agency)
	return first, r.finishedLocked() >= expected
}

func (r *round) hasEnded(agency int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended[agency] || r.pending[agency] // nil maps (a compacted round) hold nothing
}

// finished is how many of the agencies 1..expected (and anonymous ENDs)
// have sent END in the round.
func (r *round) finished() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finishedLocked()
}

// finishedLocked is finished with r.mu held (or r not yet shared).
func (r *round) finishedLocked() int { return r.endedIn + r.anon }

func (r *round) stateName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateOpen:
		return wire.RoundOpen
	case stateDrawn:
		return wire.RoundDrawn
	}
	return wire.RoundClosed
}

func (r *round) addBets(n int) {
	if n == 0 || r == nil {
		return
	}
	v := r.bets.Add(int64(n))
	if r.rs.open() == r {
		r.rs.s.m.roundBets.Set(float64(v))
	}
}

// finish records the draw's outcome and wakes every waiting connection.
func (r *round) finish(d *ledger.Draw, byAgency map[int][]string, err error) {
	r.mu.Lock()
	r.draw, r.winners, r.err = d, byAgency, err
	if err != nil {
		r.state = stateFailed
	} else {
		r.state = stateDrawn
	}
	close(r.done)
	waiters := make([]*conn, 0, len(r.waiters))
	for c := range r.waiters {
		waiters = append(waiters, c)
	}
	r.mu.Unlock()
	now := time.Now()
	for _, c := range waiters {
		c.nc.SetReadDeadline(now)
	}
}

// wait registers c to be woken by the draw; it reports true when the round
// is already done (c is then not registered).
func (r *round) wait(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		return true
	default:
	}
	r.waiters[c] = struct{}{}
	return false
}

func (r *round) unwait(c *conn) {
	r.mu.Lock()
	delete(r.waiters, c)
	r.mu.Unlock()
}

func (r *round) isDone() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitingAgencies lists the agencies with a connection waiting for r's draw.
func (r *round) waitingAgencies() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]int, 0, len(r.waiters))
	for c := range r.waiters {
		if c.agency != 0 {
			ids = append(ids, c.agency)
		}
	}
	slices.Sort(ids)
	return ids
}

// statusIDs is how many ids of the agencies that have and have not sent
// END /status lists; its counts are always whole. With CLIENT_COUNT at
// 20,000,000 the whole list of the missing was 268 MB of JSON built in 3 s
// under the round's lock, for any unauthenticated GET.
const statusIDs = 100

// statusScan bounds the agency ids endLists looks at, and so the time it
// holds the round's lock: about 3 ms over a map of 20,000,000 ENDs
// (BenchmarkEndListsWalk).
const statusScan = 1 << 16

// endLists is who has sent END in a round among the agencies 1..expected:
// how many have and have not, and the lowest ids of each, at most limit.
type endLists struct {
	finished, missing           []int
	finishedCount, missingCount int
}

// endLists counts from endedIn, without looking at any id. The missing
// ids come from a walk up from agency 1 that stops once it has limit of
// them: every id it passes has either sent END or is listed, so it looks
// at no more than endedIn+limit ids. ENDs on the plaintext port are not
// authenticated, though, so endedIn can reach N; the walk also stops after
// statusScan ids, and past that the list holds the missing ids among the
// first 65,536 (it may be short, or empty, while missingCount is not 0:
// a display aid loses its tail rather than every reader waiting on the
// lock). The finished ids come from the map of ENDs when it is small
// enough (exact even when the ids are sparse and high), else from the
// same bounded walk, which finds them dense.
func (r *round) endLists(limit int) endLists {
	expected := r.rs.expected
	r.mu.Lock()
	defer r.mu.Unlock()
	l := endLists{finishedCount: r.endedIn, missingCount: expected - r.endedIn}
	if r.ended == nil { // compacted: who sent END is no longer known
		return l
	}
	walk := min(expected, statusScan)
	for a := 1; a <= walk && len(l.missing) < min(limit, l.missingCount); a++ {
		if !r.ended[a] {
			l.missing = append(l.missing, a)
		}
	}
	if len(r.ended) <= statusScan {
		for a := range r.ended {
			if a < 1 || a > expected || len(l.finished) == limit && a > l.finished[limit-1] {
				continue
			}
			i, _ := slices.BinarySearch(l.finished, a)
			l.finished = slices.Insert(l.finished, i, a)
			if len(l.finished) > limit {
				l.finished = l.finished[:limit]
			}
		}
	} else {
		for a := 1; a <= walk && len(l.finished) < limit; a++ {
			if r.ended[a] {
				l.finished = append(l.finished, a)
			}
		}
	}
	return l
}

// statusLog names, every StatusLogInterval, the agencies a round that
// has started finishing is still waiting for.
func (rs *rounds) statusLog() {
	t := time.NewTicker(rs.s.cfg.StatusLogInterval)
	defer t.Stop()
	for {
		select {
		case <-rs.s.stop:
			return
		case <-t.C:
		}
		r := rs.open()
		if r == nil || r.finished() == 0 {
			continue
		}
		l := r.endLists(20)
		if l.missingCount == 0 {
			continue
		}
		rs.s.log.Info("barrier waiting", "round", r.num, "finished", r.finished(), "expected", rs.expected,
			"missing_count", l.missingCount, "missing", l.missing, "waiting", len(r.waitingAgencies()))
	}
}

// winnerBook keeps a fixed-number round's winning bets as batches are
// admitted, so its draw sorts the few winners rather than reading every
// stored bet. Entries whose batch failed are dropped at the draw.
type winnerBook struct {
	mu      sync.Mutex
	entries []bookEntry
}

type bookEntry struct {
	rec    *ledger.Receipt // nil for bets found in the store at start
	pos    int64           // for those: their order, before any new one
	agency int
	dni    string
}

func (b *winnerBook) add(rec *ledger.Receipt, agency int, dnis []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range dnis {
		b.entries = append(b.entries, bookEntry{rec: rec, agency: agency, dni: d})
	}
}

// load takes the winners already stored in the round (recovery).
func (b *winnerBook) load(led ledger.Ledger, round int) error {
	rank := int64(-1 << 62)
	return led.Scan(round, func(agency int, doc []byte, number int) error {
		if lottery.Wins(number) {
			b.entries = append(b.entries, bookEntry{pos: rank, agency: agency, dni: string(doc)})
			rank++
		}
		return nil
	})
}

// result lays the book out in stored order. Every entry's batch has its
// outcome: the round's close completes after everything queued before it.
func (b *winnerBook) result() []ledger.Winner {
	b.mu.Lock()
	defer b.mu.Unlock()
	type ranked struct {
		pos int64
		w   ledger.Winner
	}
	rs := make([]ranked, 0, len(b.entries))
	for _, e := range b.entries {
		pos := e.pos
		if e.rec != nil {
			if e.rec.Err() != nil {
				continue
			}
			pos = e.rec.Pos
		}
		rs = append(rs, ranked{pos, ledger.Winner{Agency: e.agency, Document: e.dni}})
	}
	// A stable sort keeps the order of a batch's own winners.
	slices.SortStableFunc(rs, func(a, b ranked) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		return 0
	})
	out := make([]ledger.Winner, len(rs))
	for i, r := range rs {
		out[i] = r.w
	}
	return out
}
