package lottery

// Result is the outcome of a draw: each agency's winning DNIs, in the order
// their bets were stored.
type Result struct {
	winners map[int][]string
	bets    int
}

// NewResult starts an empty draw.
func NewResult() *Result { return &Result{winners: make(map[int][]string)} }

// Add takes one stored bet into the draw. document is copied only when the
// bet wins.
func (r *Result) Add(agency int, document []byte, number int) {
	r.bets++
	if Wins(number) {
		r.winners[agency] = append(r.winners[agency], string(document))
	}
}

// AddWinner records a winning bet directly, for a caller that keeps the
// winners as bets are stored; bets counts bets that did not win.
func (r *Result) AddWinner(agency int, document string) {
	r.bets++
	r.winners[agency] = append(r.winners[agency], document)
}

// AddBets counts bets that did not win.
func (r *Result) AddBets(n int) { r.bets += n }

// Winners returns an agency's winning DNIs (nil when it has none).
func (r *Result) Winners(agency int) []string { return r.winners[agency] }

// Bets is how many bets the draw went over.
func (r *Result) Bets() int { return r.bets }

// Agencies calls fn for every agency with at least one winner.
func (r *Result) Agencies(fn func(agency int, winners []string)) {
	for a, w := range r.winners {
		fn(a, w)
	}
}
