package agency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loteria/loteria/services/internal/wire"
)

// run is one Run's state. The sending goroutine and the ack reader of a
// connection share it: the reader alone writes acked, progress and the
// Result's counters while a connection is open; the sender alone writes
// sentHigh; everything else is touched between connections.
type run struct {
	c       *Client
	s       Stream
	res     *Result
	backoff backoff

	chunkLen  int64 // Stream.Len: bets per round chunk, -1 unknown
	chunk     int64 // the chunk being worked on
	lastChunk int64 // the run ends after this chunk (-1: never)
	knownEnd  int64 // with chunkLen -1: where the chunk ended, once seen (-1 until then)

	first    bool   // no WELCOME seen yet
	acked    int64  // every bet below it the central confirmed (stored or refused) to this run
	sentHigh int64  // every bet below it was written at least once by this run
	out      []byte // the sender's coalesced frames, kept from connection to connection

	startRound    int                // the round open when the chunk's first batch went out (0: unknown)
	keys          chunkKeys          // the chunk's bets sent, for checking its winners (sender-owned while sending)
	keysChunk     int64              // the chunk keys holds (-1: none)
	won           map[int64]struct{} // stream indexes of the chunk's bets matched to winners so far
	wonChunk      int64              // the chunk won is for (-1: none)
	endRound      int                // the round of the connection that wrote the chunk's END (0: none yet)
	lastCollected int                // the latest round whose winners this run received
	winnersBy     time.Time          // deadline of the chunk's wait for its winners (zero: no END yet)
	endAt         time.Time          // when the chunk's first END was written

	rejectedBefore  int64 // the central's count of refused bets at the first WELCOME
	welcomeRejected int64 // its count at the latest WELCOME
	rejectedSince   int64 // bets refused by acks since the latest WELCOME

	curRound int // the round of the connection (for progress lines)

	progress     uint64 // moves with every ack and winners
	waited       uint64 // moves with every END written
	failingSince time.Time
	attempt      int
	afterFailure bool // the next WELCOME follows a failure (logged)

	paceBase   int64     // the run's first stream index sent (-1 until then), for Deps.Pace
	paceOrigin time.Time // Options.Rate: when the chunk's pacing started
	paceIdx    int64     // and at which index

	prog progressLog
}

func newRun(c *Client, s Stream, res *Result) *run {
	r := &run{
		c: c, s: s, res: res,
		backoff:   backoff{base: c.opts.RetryBase, max: c.opts.RetryMax, rand: c.rand},
		chunkLen:  s.Len(),
		lastChunk: int64(c.opts.Rounds) - 1,
		knownEnd:  -1,
		keysChunk: -1,
		wonChunk:  -1,
		first:     true,
		paceBase:  -1,
	}
	if c.opts.Rounds == UntilStopped {
		r.lastChunk = -1
	}
	if n := s.Len(); n >= 0 {
		c.m.BetsInFile.Set(float64(n))
	}
	r.prog.init(r)
	return r
}

func (r *run) chunkStart() int64 {
	if r.chunkLen < 0 {
		return 0
	}
	return r.chunk * r.chunkLen
}

// chunkEnd is the index past the chunk's last bet, -1 while unknown.
func (r *run) chunkEnd() int64 {
	if r.chunkLen < 0 {
		return r.knownEnd
	}
	return (r.chunk + 1) * r.chunkLen
}

// total is how many bets the run's rounds hold, -1 when not known.
func (r *run) total() int64 {
	if r.chunkLen < 0 || r.lastChunk < 0 {
		return -1
	}
	return (r.lastChunk + 1) * r.chunkLen
}

func (r *run) rejectedTotal() int64 { return r.welcomeRejected + r.rejectedSince }

// chunkOutcome is how a chunk's conversation ended: with the winners of
// the round its END went to, or with the news that its END is recorded in
// a round that has closed since, whose winners are to be collected.
type chunkOutcome struct {
	winners wire.Winners
	collect int
}

// loteria runs the loteria protocol: per chunk, connect, HELLO, resume at
// the WELCOME's mark, END, winners; every retryable failure reconnects.
func (r *run) loteria(ctx context.Context) error {
	for {
		var out chunkOutcome
		if err := r.retry(ctx, "sending", func(ctx context.Context) error {
			out = chunkOutcome{}
			return r.chunkOnce(ctx, &out)
		}); err != nil {
			return err
		}
		// Each round is reported as it arrives, in order; one deadline
		// bounds the collecting of all of them.
		by := time.Now().Add(r.c.opts.WinnersTimeout)
		if out.collect != 0 {
			r.c.log.Info("this round's END was recorded before and its round has closed since: collecting its winners", "round", out.collect)
			w, err := r.collectRound(ctx, out.collect, by)
			if err != nil {
				return err
			}
			// Then as any END's round: the chunk's earlier rounds too
			// (none known after a restart: startRound is 0).
			out.winners = w
		}
		// A cut-off that passed while the chunk was being sent put
		// its first bets in earlier rounds (docs/ROUNDS.md). How many
		// rounds closed meanwhile, and which hold its bets, the agency
		// cannot know (a cut-off closes a round whether or not the
		// agency sent in it): the deadline bounds their collecting,
		// each is printed as it comes, and the Result keeps the last.
		last := out.winners.Round
		var err error
		for x := r.startRound; x > 0 && x < last; x++ {
			if x <= r.lastCollected {
				continue
			}
			r.c.log.Info("a round closed while this round's bets were being sent: collecting the winners of the earlier round too",
				"round", x, "last_round", last)
			var w wire.Winners
			if w, err = r.collectRound(ctx, x, by); err != nil {
				break
			}
			r.emit(w)
		}
		r.emit(out.winners) // checked, and its own: reported even when an earlier round failed
		if err != nil {
			return err
		}
		if r.lastChunk >= 0 && r.chunk >= r.lastChunk {
			return nil
		}
		r.nextChunk()
	}
}

func (r *run) nextChunk() {
	r.chunk++
	r.startRound, r.endRound = 0, 0
	r.winnersBy, r.endAt = time.Time{}, time.Time{}
	r.paceOrigin = time.Time{}
}

// emit reports one round's winners.
func (r *run) emit(w wire.Winners) {
	dnis := w.DNIs
	if dnis == nil {
		dnis = []string{}
	}
	rw := RoundWinners{Round: w.Round, Number: w.Number, Winners: dnis}
	r.res.RoundsDone++
	if len(r.res.Rounds) >= 2*MaxKeptRounds {
		// Amortised: the oldest half goes once it doubled.
		r.res.Rounds = append(r.res.Rounds[:0], r.res.Rounds[len(r.res.Rounds)-MaxKeptRounds+1:]...)
	}
	r.res.Rounds = append(r.res.Rounds, rw)
	r.res.Winners = dnis
	r.lastCollected = max(r.lastCollected, w.Round)
	r.c.m.winners.Set(float64(len(dnis)))
	if r.c.deps.OnWinners != nil {
		r.c.deps.OnWinners(rw)
	}
}

// chunkOnce is one connection's worth of work on the chunk: whatever the
// central already has is skipped, the rest is sent, then END and the
// winners.
func (r *run) chunkOnce(ctx context.Context, out *chunkOutcome) error {
	hello := r.endRound // after an END, ask for the round it went to
	cn, w, err := r.open(ctx, hello)
	if err != nil {
		return err
	}
	defer cn.close()
	if r.first {
		if err := r.derive(w); err != nil {
			return err
		}
	}
	r.curRound = w.Round
	r.c.m.round.Set(float64(w.Round))
	end := r.chunkEnd()
	switch {
	case hello != 0 && !w.Ended && w.State != wire.RoundOpen:
		// The END did not land in that round (a cut-off moved it on, or
		// it was lost): ask the open round where things stand.
		r.endRound = 0
		return errRedirect
	case end >= 0 && w.Mark > end:
		return r.c.fail(reasonSession, fmt.Errorf(
			"the central has bets of agency %d up to index %d, past the end of this round's chunk (%d): is another agency process running with the same id?",
			r.c.opts.Agency, w.Mark, end))
	case end < 0 || w.Mark < end:
		if r.startRound == 0 {
			r.startRound = w.Round
		}
		if err := r.sendRange(ctx, cn, w.Round, max(w.Mark, r.chunkStart())); err != nil {
			return err
		}
		r.c.log.Info("bets sent", "round", w.Round, "mark", r.acked, "bets", r.res.Bets, "batches", r.res.Batches)
	case w.Ended:
		// END recorded in this round already: send it again to wait.
	case hello == 0 && w.LastEnd > 0 && w.LastEnd != w.Round && w.LastEnd > r.lastCollected && w.LastMark == end:
		// The chunk's END is recorded in a round that is not open any
		// more (sent before a restart, or before a reconnect).
		out.collect = w.LastEnd
		return nil
	}
	return r.awaitWinners(ctx, cn, w.Round, &out.winners)
}

// open connects, says HELLO (for round, 0: the open one) and reads the
// WELCOME, checking it against what the central told this run before.
func (r *run) open(ctx context.Context, round int) (*conn, wire.Welcome, error) {
	c := r.c
	var w wire.Welcome
	cn, err := c.dial(ctx, !r.first)
	if err != nil {
		return nil, w, err
	}
	hello := wire.Hello{Version: wire.Version, Agency: c.opts.Agency, Fingerprint: r.s.Fingerprint(), Round: round, Total: r.total()}
	frame := wire.AppendFrame(nil, wire.AppendHello(nil, hello))
	cn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if err := wire.WriteFull(cn, frame); err != nil {
		cn.close()
		return nil, w, c.ioFail("send HELLO", err)
	}
	c.m.bytesSent.Add(float64(len(frame)))
	cn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	payload, err := wire.ReadFrame(cn.br, nil, 64<<10)
	if err != nil {
		cn.close()
		return nil, w, c.ioFail("read WELCOME", err)
	}
	w, err = wire.ParseWelcome(payload)
	if err != nil {
		cn.close()
		var ae *wire.AckError
		if errors.As(err, &ae) {
			return nil, w, r.sessionRefused(ae)
		}
		return nil, w, c.fail(reasonSession, fmt.Errorf("the central's answer to HELLO is not a WELCOME (%v): it does not speak this session protocol; for a seed server run with --protocol=seed", err))
	}
	switch {
	case w.Version < 1 || w.Version > wire.Version:
		err = fmt.Errorf("the central chose session version %d; this agency speaks 1 to %d", w.Version, wire.Version)
	case w.Agency != c.opts.Agency:
		err = fmt.Errorf("the central welcomed agency %d on a connection for agency %d", w.Agency, c.opts.Agency)
	case round != 0 && w.Round != round:
		err = fmt.Errorf("asked for round %d, the central answered for round %d", round, w.Round)
	case w.Mark < r.acked:
		err = fmt.Errorf("the central's mark for agency %d is bet %d, but it had confirmed bets up to %d to this agency: "+
			"the central lost acknowledged bets (its store was reset or damaged); stopping rather than sending them into a store that forgot them",
			c.opts.Agency, w.Mark, r.acked)
	}
	if err != nil {
		cn.close()
		return nil, w, c.fail(reasonSession, err)
	}
	if !r.first && w.Mark > r.acked {
		// Stored, but their acks were lost with the connection.
		r.confirm(w.Mark - r.acked)
	}
	if r.afterFailure {
		r.afterFailure = false
		c.log.Info("reconnected: resuming at the central's mark", "mark", w.Mark, "round", w.Round, "ended", w.Ended)
	}
	r.acked = max(r.acked, w.Mark)
	r.welcomeRejected, r.rejectedSince = w.Rejected, 0
	return cn, w, nil
}

// confirm counts n more bets of this run as stored.
func (r *run) confirm(n int64) {
	r.res.Bets += int(n)
	r.c.m.betsAcked.Add(float64(n))
}

// sessionRefused turns an error answer to HELLO into what to do.
func (r *run) sessionRefused(ae *wire.AckError) error {
	c := r.c
	if ae.Code == "" {
		return c.fail(reasonSession, fmt.Errorf("the central answered HELLO with an error without a code (%d bytes): it speaks only the seed protocol: run the agency with --protocol=seed (env CLI_PROTOCOL=seed)", len(ae.Msg)))
	}
	if wire.Retryable(ae.Code) {
		return retryable(c.fail(reasonErrorAck, fmt.Errorf("the central refused the connection for now: %w", ae)))
	}
	return c.fail(reasonErrorAck, fmt.Errorf("the central refused the session: %w%s", ae, codeHint(ae.Code, c.opts.Agency)))
}

// codeHint says what a fatal error code means for the user.
func codeHint(code string, agency int) string {
	switch code {
	case wire.CodeFingerprint:
		return fmt.Sprintf(" (agency %d sent other bets before: use the same data file or generator settings, another agency id, or a fresh central store)", agency)
	case wire.CodeAgency:
		return fmt.Sprintf(" (check --id %d against the central's CLIENT_COUNT and, with TLS, the agency's certificate)", agency)
	case wire.CodeVersion:
		return " (the central does not speak session version 1: upgrade it, or run with --protocol=seed)"
	case wire.CodeRound:
		return " (the central has no such round)"
	case wire.CodeClosed:
		return " (the central's last round is drawn: it takes no more bets)"
	case wire.CodeEnded:
		return " (this agency already sent END in the open round: is another agency process running with the same id?)"
	case wire.CodeUnnamed:
		return " (the central does not know which agency this connection is)"
	case wire.CodeProtocol:
		return " (a framing error between agency and central)"
	case wire.CodeTLS:
		return " (the central speaks TLS at this address: give the agency its certificate with --tls-cert, --tls-key and --tls-ca, or point it at the central's plaintext port)"
	}
	return ""
}

// derive works out, from the first WELCOME, where a fresh run stands
// (docs/PROTOCOL.md, The agency's side): the chunk at the mark; at a chunk's
// end, that chunk, whose END is then sent or collected.
func (r *run) derive(w wire.Welcome) error {
	c := r.c
	r.first = false
	r.res.Resumed = w.Mark
	r.rejectedBefore = w.Rejected
	if r.chunkLen > 0 {
		k := w.Mark / r.chunkLen
		if w.Mark%r.chunkLen == 0 && w.Mark > 0 {
			k--
		}
		r.chunk = k
	}
	if r.lastChunk >= 0 && r.chunk > r.lastChunk {
		if w.Mark != r.chunkEnd() {
			return c.fail(reasonSession, fmt.Errorf("the central has %d bets of agency %d, more than the %d rounds asked (--rounds) hold: run with more rounds",
				w.Mark, c.opts.Agency, r.lastChunk+1))
		}
		r.lastChunk = r.chunk // the round at the mark is complete: finish it (END or its winners) and stop
	}
	if w.Mark > 0 {
		args := []any{"mark", w.Mark, "round", w.Round}
		if r.chunkLen > 0 {
			args = append(args, "round_chunk", r.chunk+1, "in_chunk", w.Mark-r.chunkStart())
		}
		c.log.Info("resuming: the central already has this agency's first bets; sending from its mark", args...)
	}
	if w.Rejected > 0 {
		c.log.Warn("the central refused bets of this agency before this run; they are in no draw", "rejected", w.Rejected)
	}
	return nil
}

// collectRound collects the agency's winners of round x: HELLO naming x,
// END, the winners, by the deadline by.
func (r *run) collectRound(ctx context.Context, x int, by time.Time) (wire.Winners, error) {
	var got wire.Winners
	err := r.retry(ctx, fmt.Sprintf("collecting round %d", x), func(ctx context.Context) error {
		if !time.Now().Before(by) {
			return r.c.fail(reasonTimeout, fmt.Errorf("the winners of round %d were not collected within the winners timeout (--winners-timeout %s): look at the central",
				x, r.c.opts.WinnersTimeout))
		}
		cn, w, err := r.open(ctx, x)
		if err != nil {
			return err
		}
		defer cn.close()
		return r.readWinners(ctx, cn, w.Round, true, by, &got)
	})
	return got, err
}
