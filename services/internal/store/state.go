package store

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/loteria/loteria/services/internal/ledger"
)

// state is what the journal says: recovery builds it by replaying every
// record, and the writer moves it forward by applying each commit once it
// is durable, with the same code, so what a running store reports is what
// a restarted one will.
type state struct {
	round      int // open round
	rounds     []ledger.ClosedRound
	ends       []ledger.End // the open round's ENDs, one per agency
	agencies   map[int]*ledger.AgencyState
	bets       int64
	roundBets  int64
	roundStart int64 // data offset where the open round starts
	size       int64 // data bytes committed
	seq        uint64
	seen       map[uint32]bool // scratch for check
}

func newState() *state {
	return &state{round: 1, agencies: map[int]*ledger.AgencyState{}}
}

func (st *state) agency(a int) *ledger.AgencyState {
	s := st.agencies[a]
	if s == nil {
		s = &ledger.AgencyState{}
		st.agencies[a] = s
	}
	return s
}

// checkHeader validates a HEADER against the state so far.
func (st *state) checkHeader(h *header) error {
	switch {
	case h.version < minJournalVersion || h.version > journalVersion:
		return fmt.Errorf("journal version %d, this loteria reads versions %d to %d", h.version, minJournalVersion, journalVersion)
	case int(h.round) != st.round:
		return fmt.Errorf("HEADER in round %d while round %d is open", h.round, st.round)
	case h.maxGroupBytes == 0:
		return fmt.Errorf("HEADER with a group bound of 0 bytes")
	}
	return nil
}

// applyChecked moves the state past c after checking that c follows it:
// recovery refuses a record that does not rather than guess.
func (st *state) applyChecked(c *commit) error {
	if err := st.check(c); err != nil {
		return err
	}
	st.apply(c)
	return nil
}

// apply moves the state past c. The writer applies the commits it built
// (checked as they were queued) without checking them again.
func (st *state) apply(c *commit) {
	for i := range c.entries {
		e := &c.entries[i]
		switch e.kind {
		case kindMark:
			a := st.agency(int(e.agency))
			a.Mark = int64(e.mark)
			a.Rejected += int64(e.rejected)
			st.bets += int64(e.stored)
			st.roundBets += int64(e.stored)
		case kindStrm:
			st.agency(int(e.agency)).Fingerprint = e.fp
		case kindEnd:
			end := ledger.End{Round: st.round, Agency: int(e.agency), Mark: int64(e.mark)}
			if e.agency != 0 {
				st.agency(int(e.agency)).LastEnd = end
			}
			st.addEnd(end)
		case kindDraw:
			d := e.draw
			st.rounds[d.Round-1].Draw = &d
		case kindClose:
			st.rounds = append(st.rounds, ledger.ClosedRound{
				Round: st.round, Reason: ledger.CloseReason(e.reason),
				Start: st.roundStart, Cut: int64(e.mark), Bets: st.roundBets, Ends: st.ends,
			})
			st.round++
			st.roundStart = int64(e.mark)
			st.roundBets = 0
			st.ends = nil
		}
	}
	st.size = int64(c.end)
	st.seq = c.seq
}

// addEnd records an END of the open round: an agency's second END (a
// reconnect) replaces its first, in place. Anonymous ENDs (agency 0) are
// each kept.
func (st *state) addEnd(e ledger.End) {
	if e.Agency != 0 {
		for i := range st.ends {
			if st.ends[i].Agency == e.Agency {
				st.ends[i] = e
				return
			}
		}
	}
	st.ends = append(st.ends, e)
}

func (st *state) check(c *commit) error {
	switch {
	case c.seq != st.seq+1:
		return fmt.Errorf("commit %d follows commit %d", c.seq, st.seq)
	case int64(c.start) != st.size:
		return fmt.Errorf("commit %d starts at data byte %d but the previous one ended at %d", c.seq, c.start, st.size)
	case c.end < c.start:
		return fmt.Errorf("commit %d ends (%d) before it starts (%d)", c.seq, c.end, c.start)
	case c.start == c.end && c.dataCRC != 0:
		return fmt.Errorf("commit %d has no data but a data checksum", c.seq)
	case int(c.round) != st.round:
		return fmt.Errorf("commit %d is in round %d while round %d is open", c.seq, c.round, st.round)
	}
	if st.seen == nil {
		st.seen = map[uint32]bool{}
	}
	marks := st.seen
	clear(marks)
	rows := 0
	for i := range c.entries {
		e := &c.entries[i]
		switch e.kind {
		case kindMark:
			old := int64(0)
			if a := st.agencies[int(e.agency)]; a != nil {
				old = a.Mark
			}
			if e.agency == 0 || marks[e.agency] || int64(e.mark) != old+int64(e.stored)+int64(e.rejected) {
				return fmt.Errorf("commit %d: MARK of agency %d does not follow its mark %d", c.seq, e.agency, old)
			}
			marks[e.agency] = true
		case kindStrm:
			if a := st.agencies[int(e.agency)]; e.agency == 0 || (a != nil && a.Fingerprint != "" && a.Fingerprint != e.fp) {
				return fmt.Errorf("commit %d: STREAM of agency %d contradicts its recorded fingerprint", c.seq, e.agency)
			}
		case kindDraw:
			d := e.draw
			if d.Round < 1 || d.Round > len(st.rounds) || st.rounds[d.Round-1].Draw != nil {
				return fmt.Errorf("commit %d: DRAW of round %d, which is not a closed round without a draw", c.seq, d.Round)
			}
		case kindClose:
			if i != len(c.entries)-1 || e.mark != c.end || e.reason == 0 {
				return fmt.Errorf("commit %d: CLOSE is not its last entry, or does not cut at its end", c.seq)
			}
		case kindRows:
			if rows++; rows > 1 || int64(len(e.rows)) != int64(c.end-c.start) || dataCRC(e.rows) != c.dataCRC ||
				e.rows[len(e.rows)-1] != '\n' || bytes.IndexByte(e.rows, 0) >= 0 {
				return fmt.Errorf("commit %d: its ROWS are not its data (a second ROWS, another length or checksum, or not whole rows)", c.seq)
			}
		}
	}
	return nil
}

// recovery is a deep copy of the state as a ledger.Recovery.
func (st *state) recovery() *ledger.Recovery {
	r := &ledger.Recovery{
		Round:     st.round,
		Rounds:    make([]ledger.ClosedRound, len(st.rounds)),
		Ends:      slices.Clone(st.ends),
		Agencies:  make(map[int]ledger.AgencyState, len(st.agencies)),
		Bets:      st.bets,
		RoundBets: st.roundBets,
		Bytes:     st.size,
	}
	for i, cr := range st.rounds {
		cr.Ends = slices.Clone(cr.Ends)
		if cr.Draw != nil {
			d := *cr.Draw
			d.Digest = slices.Clone(d.Digest)
			cr.Draw = &d
		}
		r.Rounds[i] = cr
	}
	for a, s := range maps.All(st.agencies) {
		r.Agencies[a] = *s
	}
	return r
}
