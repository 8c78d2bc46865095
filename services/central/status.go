package central

import (
	"encoding/json"
	"net/http"
	"os"
	"time"
)

// Status is what the central's /status endpoint answers: where the rounds
// stand and who the open round is still waiting for, so an operator sees
// at once which agency is missing.
type Status struct {
	PID      int       `json:"pid"`
	Round    int       `json:"round"`
	State    string    `json:"state"`  // open, closed, drawn, finished
	Rounds   int       `json:"rounds"` // to hold; 0: until stopped
	Cutoff   string    `json:"cutoff,omitempty"`
	Opened   time.Time `json:"opened,omitzero"`
	Expected int       `json:"expected"`
	// Finished and Missing are the lowest ids (at most 100 of each) of
	// the agencies 1..Expected that have and have not sent END in the
	// round; the counts are of all of them.
	Finished      []int       `json:"finished"`
	FinishedCount int         `json:"finished_count"`
	Missing       []int       `json:"missing"`
	MissingCount  int         `json:"missing_count"`
	Waiting       []int       `json:"waiting"`
	Anonymous     int         `json:"anonymous_ends,omitempty"`
	RoundBets     int64       `json:"round_bets"`
	Connected     int         `json:"connected"`
	LastDraw      *DrawStatus `json:"last_draw,omitempty"`
	Store         StoreStatus `json:"store"`
}

// DrawStatus describes the newest drawn round.
type DrawStatus struct {
	Round   int    `json:"round"`
	Number  int    `json:"number"`
	Bets    int64  `json:"bets"`
	Winners int    `json:"winners"`
	Reason  string `json:"closed_by"`
}

// StoreStatus says whether the store works.
type StoreStatus struct {
	Failed bool   `json:"failed"`
	Reason string `json:"reason,omitempty"`
}

// Status reports the central's state now.
func (s *Server) Status() Status {
	rs := s.rounds
	st := Status{PID: os.Getpid(), Expected: rs.expected, Rounds: max(rs.max, 0),
		Finished: []int{}, Missing: []int{}, Waiting: []int{}}
	if d := s.cfg.RoundCutoff; d > 0 {
		st.Cutoff = d.String()
	}
	s.mu.Lock()
	st.Connected = len(s.conns)
	s.mu.Unlock()
	r := rs.open()
	if r == nil {
		st.State = "finished"
		r = rs.get(rs.lastRound())
	}
	if r != nil {
		st.Round = r.num
		if st.State == "" {
			st.State = r.stateName()
		}
		st.Opened = r.opened
		st.RoundBets = r.bets.Load()
		l := r.endLists(statusIDs)
		st.Finished = append(st.Finished, l.finished...)
		st.Missing = append(st.Missing, l.missing...)
		st.FinishedCount, st.MissingCount = l.finishedCount, l.missingCount
		r.mu.Lock()
		st.Anonymous = r.anon
		r.mu.Unlock()
		st.Waiting = r.waitingAgencies()
	}
	for n := rs.lastRound(); n >= 1; n-- {
		dr := rs.get(n)
		if dr == nil {
			break
		}
		dr.mu.Lock()
		d, reason := dr.draw, dr.reason
		dr.mu.Unlock()
		if d != nil {
			st.LastDraw = &DrawStatus{Round: d.Round, Number: d.Number, Bets: d.Bets, Winners: d.Winners, Reason: reason.String()}
			break
		}
	}
	if err := s.led.Failed(); err != nil {
		st.Store = StoreStatus{Failed: true, Reason: err.Error()}
	}
	return st
}

// StatusRoutes are the metrics server's /status route, for a server that
// may not exist yet (get returns nil while the store is being opened).
func StatusRoutes(get func() *Server) map[string]http.Handler {
	return map[string]http.Handler{"GET /status": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := get()
		if s == nil {
			http.Error(w, "opening the store", http.StatusServiceUnavailable)
			return
		}
		s.StatusHandler().ServeHTTP(w, r)
	})}
}

// StatusHandler serves Status as JSON.
func (s *Server) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	})
}
