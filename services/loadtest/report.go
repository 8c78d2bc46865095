package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/lottery"
)

// Report is the outcome of a run, in the spirit of vegeta's and ghz's.
type Report struct {
	Agencies       int     `json:"agencies"`
	AgenciesOK     int     `json:"agencies_ok"`
	AgenciesFailed int     `json:"agencies_failed"`
	SuccessRatio   float64 `json:"success_ratio"`
	BetsAcked      int64   `json:"bets_acked"`
	BatchesAcked   int64   `json:"batches_acked"`

	// Ingest is start → last ack; Total is start → last agency done.
	Ingest        time.Duration `json:"ingest_ns"`
	Total         time.Duration `json:"total_ns"`
	BetsPerSec    float64       `json:"bets_per_second"`
	BatchesPerSec float64       `json:"batches_per_second"`
	OfferedRate   float64       `json:"offered_bets_per_second,omitempty"`

	AckLatency  Snapshot `json:"ack_latency"`
	BarrierWait Snapshot `json:"barrier_wait"`

	Errors  map[string]int `json:"errors"`
	Samples []string       `json:"error_samples,omitempty"`
	Slowest []AgencyTime   `json:"slowest_agencies"`

	Checks []Check `json:"checks"`
	Failed bool    `json:"failed"`
	// Restarts is how many times the in-process central was killed and
	// reopened during the run (the restart mode).
	Restarts int `json:"restarts,omitempty"`

	Config struct {
		Batch    int     `json:"batch"`
		InFlight int     `json:"in_flight"`
		Bets     int     `json:"bets_per_agency"`
		Duration string  `json:"duration,omitempty"`
		Protocol string  `json:"protocol"`
		Target   string  `json:"target"`
		Store    bool    `json:"store"`
		Rate     float64 `json:"rate,omitempty"`
		Warmup   string  `json:"warmup,omitempty"`
	} `json:"config"`
}

// AgencyTime is how long one agency took, start to winners.
type AgencyTime struct {
	Agency int           `json:"agency"`
	Done   time.Duration `json:"done_ns"`
	Bets   int64         `json:"bets"`
	Error  string        `json:"error,omitempty"`
}

// Check is one correctness check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// rate is count per second over d (0 for an empty interval).
func rate(count int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}

func buildReport(cfg Config, runs []*agencyRun, lat *Histogram, total, ingest time.Duration, bets, batches int64) *Report {
	r := &Report{
		Agencies:      len(runs),
		BetsAcked:     bets,
		BatchesAcked:  batches,
		Ingest:        ingest,
		Total:         total,
		BetsPerSec:    rate(bets, ingest),
		BatchesPerSec: rate(batches, ingest),
		OfferedRate:   cfg.Rate,
		AckLatency:    lat.Snapshot(),
		Errors:        map[string]int{},
	}
	r.Config.Batch, r.Config.InFlight, r.Config.Bets, r.Config.Protocol = cfg.Batch, cfg.InFlight, cfg.Bets, cfg.Protocol
	if cfg.Duration > 0 {
		r.Config.Duration = cfg.Duration.String()
	}
	r.Config.Target = cfg.Addr
	if cfg.Addr == "" {
		r.Config.Target = "in-process"
	}
	r.Config.Store, r.Config.Rate = !cfg.NoStore, cfg.Rate
	if cfg.Warmup > 0 {
		r.Config.Warmup = cfg.Warmup.String()
	}
	wait := NewHistogram()
	times := make([]AgencyTime, 0, len(runs))
	winnersOK := true
	var firstWrong string
	for _, a := range runs {
		at := AgencyTime{Agency: a.id, Done: a.done, Bets: a.bets}
		if a.err != nil {
			r.AgenciesFailed++
			r.Errors[a.reason]++
			at.Error = a.err.Error()
			if len(r.Samples) < 5 {
				r.Samples = append(r.Samples, fmt.Sprintf("agency %d: %v", a.id, a.err))
			}
		} else {
			r.AgenciesOK++
			wait.Record(a.barrierWait)
			if cfg.NoStore {
				// A central that stores nothing draws nothing.
			} else if drawnByNumber(a.rounds) {
				if msg := checkRounds(a); msg != "" {
					winnersOK = false
					if firstWrong == "" {
						firstWrong = msg
					}
				}
			} else if !slices.Equal(a.winners, a.src.winners) && !(len(a.winners) == 0 && len(a.src.winners) == 0) {
				winnersOK = false
				if firstWrong == "" {
					firstWrong = fmt.Sprintf("agency %d got %d winners, its bets imply %d", a.id, len(a.winners), len(a.src.winners))
				}
			}
		}
		times = append(times, at)
	}
	r.BarrierWait = wait.Snapshot()
	r.SuccessRatio = float64(r.AgenciesOK) / float64(max(r.Agencies, 1))
	sort.Slice(times, func(i, j int) bool { return times[i].Done > times[j].Done })
	r.Slowest = times[:min(5, len(times))]
	if !cfg.NoStore {
		r.Checks = append(r.Checks, Check{Name: "every agency's winners are what its own bets imply", OK: winnersOK && r.AgenciesFailed == 0, Detail: firstWrong})
	}
	r.Checks = append(r.Checks, Check{Name: "every agency finished", OK: r.AgenciesFailed == 0,
		Detail: fmt.Sprintf("%d of %d failed", r.AgenciesFailed, r.Agencies)})
	return r
}

// drawnByNumber reports whether a central drew a number other than the
// seed's 7574 (continuous rounds): the winners are then checked against
// the bets that played the number each round says.
func drawnByNumber(rounds []agency.RoundWinners) bool {
	for _, w := range rounds {
		if w.Number != 0 && w.Number != lottery.WinningNumber {
			return true
		}
	}
	return false
}

// checkRounds checks an agency's winners round by round against its own
// bets playing that round's number, read again from its generator or
// file. With one round every bet was in it: the lists must be equal. With
// more (a cut-off moved some bets on), each round's winners must be among
// those bets, in order.
func checkRounds(a *agencyRun) string {
	for _, w := range a.rounds {
		want, err := a.src.playing(w.Number, a.id)
		if err != nil {
			return fmt.Sprintf("agency %d: %v", a.id, err)
		}
		if len(a.rounds) == 1 {
			if !slices.Equal(w.Winners, want) && !(len(w.Winners) == 0 && len(want) == 0) {
				return fmt.Sprintf("agency %d round %d (number %d): %d winners, its bets imply %d", a.id, w.Round, w.Number, len(w.Winners), len(want))
			}
			continue
		}
		j := 0
		for _, d := range w.Winners {
			for j < len(want) && want[j] != d {
				j++
			}
			if j == len(want) {
				return fmt.Sprintf("agency %d round %d (number %d): a winner that is not one of its bets playing %d", a.id, w.Round, w.Number, w.Number)
			}
			j++
		}
	}
	return ""
}

// finish settles Failed from the checks.
func (r *Report) finish() {
	r.Failed = false
	for _, c := range r.Checks {
		if !c.OK {
			r.Failed = true
		}
	}
}

// ErrorRate is the share of agencies that failed.
func (r *Report) ErrorRate() float64 { return 1 - r.SuccessRatio }

// WriteJSON writes the report for machines.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	target := r.Config.Target
	if !r.Config.Store {
		target += " (no store)"
	}
	p("Target\t%s, protocol %s, batch ≤%d bets, %d in flight", target, r.Config.Protocol, r.Config.Batch, r.Config.InFlight)
	p("Agencies\t%d ok, %d failed of %d (success ratio %.4f)", r.AgenciesOK, r.AgenciesFailed, r.Agencies, r.SuccessRatio)
	p("Bets acked\t%d in %d batches", r.BetsAcked, r.BatchesAcked)
	if r.Restarts > 0 {
		p("Restarts\t%d (central killed and reopened on the same store and port)", r.Restarts)
	}
	p("Duration\tingest %s (start → last ack), total %s (start → all winners)", r.Ingest.Round(time.Millisecond), r.Total.Round(time.Millisecond))
	if r.OfferedRate > 0 {
		p("Offered\t%.0f bets/s", r.OfferedRate)
	}
	p("Throughput\t%.0f bets/s, %.0f batches/s", r.BetsPerSec, r.BatchesPerSec)
	l := r.AckLatency
	warm := ""
	if r.Config.Warmup != "" {
		warm = " (after a " + r.Config.Warmup + " warm-up)"
	}
	p("Ack latency%s\tmin %s  mean %s  p50 %s  p90 %s  p95 %s  p99 %s  p99.9 %s  max %s", warm,
		ms(l.Min), ms(l.Mean), ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.P999), ms(l.Max))
	b := r.BarrierWait
	p("Barrier wait\tmin %s  p50 %s  p99 %s  max %s", ms(b.Min), ms(b.P50), ms(b.P99), ms(b.Max))
	if len(r.Errors) == 0 {
		p("Errors\tnone")
	} else {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, r.Errors[k]))
		}
		p("Errors\t%s", strings.Join(parts, " "))
		for _, s := range r.Samples {
			p("\t%s", s)
		}
	}
	var slow []string
	for _, s := range r.Slowest {
		slow = append(slow, fmt.Sprintf("#%d %s", s.Agency, s.Done.Round(time.Millisecond)))
	}
	p("Slowest\t%s", strings.Join(slow, ", "))
	for _, c := range r.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAIL"
		}
		if c.Detail != "" && !c.OK {
			p("Check\t%s: %s (%s)", mark, c.Name, c.Detail)
		} else {
			p("Check\t%s: %s", mark, c.Name)
		}
	}
	return tw.Flush()
}

// progress prints one line a second until stop closes.
func progress(cfg Config, start time.Time, stop <-chan struct{}, lat *Histogram, bets, finished, failed *atomic.Int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastBets int64
	last := start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			b := bets.Load()
			s := lat.Snapshot()
			fmt.Fprintf(cfg.Progress, "[%6.1fs] agencies %d/%d done, %d failed | %.0f bets/s | %d bets acked | p99 %s\n",
				now.Sub(start).Seconds(), finished.Load(), cfg.Agencies, failed.Load(),
				rate(b-lastBets, now.Sub(last)), b, ms(s.P99))
			lastBets, last = b, now
		}
	}
}
