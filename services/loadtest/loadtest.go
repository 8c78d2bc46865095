// Package loadtest drives many simulated agencies against a central, in
// one process, using the real agency client, and reports what a
// performance engineer needs: throughput, ack latency percentiles, barrier
// wait, errors, the slowest agencies, and whether the result was correct.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/betfile"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
)

// Config is one load run.
type Config struct {
	Agencies int           // simulated agencies, each its own connection
	Bets     int           // bets per agency (ignored when Duration is set; 0 with DataDir: whole files)
	Duration time.Duration // send for this long instead of a fixed count
	Batch    int           // bets per batch at most (frames stay ≤ 8 KiB)
	InFlight int           // batches in flight per agency
	Rate     float64       // total bets/s to offer (open model); 0 = as fast as acks allow
	DataDir  string        // agency-<i>.csv files to read instead of generated bets
	Protocol string        // agency.ProtocolLoteria or agency.ProtocolSeed
	Seed     uint64        // generator seed
	// FirstID is the first simulated agency's id (default 1): against a central that also
	// serves other agencies, e.g. the compose stack's 1..N, the load tool takes N+1 onwards.
	FirstID int

	// Addr targets a running central; empty starts one in this process.
	Addr string
	// StoreDir holds the in-process central's bets file (default: a
	// temporary directory, removed afterwards).
	StoreDir string
	// NoStore makes the in-process central acknowledge without storing.
	NoStore bool

	Timeout time.Duration // per ack and dial
	// Warmup leaves out of the latency figures the batches due in the
	// run's first Warmup (connection set-up, first bursts); throughput
	// and correctness still count everything.
	Warmup time.Duration
	// Progress receives a line a second; nil for none.
	Progress io.Writer
	// Registerer receives the load tool's metrics (and an in-process
	// central's); nil for none.
	Registerer prometheus.Registerer
	// CentralLogger is the in-process central's logger (nil: discard).
	CentralLogger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Agencies < 1 {
		return errors.New("agencies: need at least 1")
	}
	if c.Bets < 0 || (c.Bets == 0 && c.Duration <= 0 && c.DataDir == "") {
		return errors.New("set --bets (per agency) or --duration (or --data-dir with --bets 0 for whole files)")
	}
	if c.Batch < 1 {
		c.Batch = 100
	}
	if c.InFlight < 1 {
		c.InFlight = 1
	}
	if c.Protocol == "" {
		c.Protocol = agency.ProtocolLoteria
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.FirstID == 0 {
		c.FirstID = 1
	}
	if c.FirstID < 1 {
		return errors.New("first-id: agency ids start at 1")
	}
	if c.FirstID > 1 && c.Addr == "" {
		return errors.New("first-id: only against a running central (--addr) that also serves agencies 1..first-id-1; the in-process central's barrier waits for agencies 1..N")
	}
	return nil
}

// agencyRun is one simulated agency's outcome.
type agencyRun struct {
	id          int
	bets        int64 // acknowledged
	batches     int64
	done        time.Duration // from start to winners (or failure)
	barrierWait time.Duration
	err         error
	reason      string
	winners     []string
	src         *source
}

// Run executes one load run and returns its report. The report's Failed
// says whether any correctness check failed; thresholds are the caller's.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m := newMetrics(cfg.Registerer)
	addr := cfg.Addr
	var srv *central.Server
	var stopCentral func() error
	if addr == "" {
		dir := cfg.StoreDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "loteria-loadtest-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		var err error
		srv, stopCentral, err = startCentral(cfg, filepath.Join(dir, "bets.csv"))
		if err != nil {
			return nil, err
		}
		defer stopCentral()
		addr = srv.Addr().String()
	}

	shared := agency.NewMetrics(cfg.Registerer)
	lat := NewHistogram()
	var betsAcked, batchesAcked, lastAck atomic.Int64
	runs := make([]*agencyRun, cfg.Agencies+1)
	var running, finished, failed atomic.Int64
	m.agencies.WithLabelValues("running").Set(float64(cfg.Agencies))

	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		progress(cfg, start, stopProgress, lat, &betsAcked, &finished, &failed)
	}()

	var wg sync.WaitGroup
	for i := 1; i <= cfg.Agencies; i++ {
		id := cfg.FirstID + i - 1
		r := &agencyRun{id: id}
		runs[i] = r
		wg.Go(func() {
			running.Add(1)
			defer running.Add(-1)
			src, err := newSource(cfg, id, deadline)
			if err != nil {
				r.err, r.reason = err, "data"
				failed.Add(1)
				return
			}
			defer src.close()
			r.src = src
			deps := agency.Deps{
				Metrics: shared,
				OnAck: func(d time.Duration, bets int) {
					if cfg.Warmup <= 0 || time.Since(start)-d >= cfg.Warmup {
						lat.Record(d)
					}
					m.ackDuration.Observe(d.Seconds())
					m.betsAcked.Add(float64(bets))
					betsAcked.Add(int64(bets))
					batchesAcked.Add(1)
					lastAck.Store(int64(time.Since(start)))
				},
			}
			if cfg.Rate > 0 {
				deps.Pace = newPacer(cfg, i).wait
			}
			c, err := agency.NewClient(agency.Options{
				Agency: id, Address: addr, MaxBets: cfg.Batch, InFlight: cfg.InFlight,
				Protocol: cfg.Protocol, Timeout: cfg.Timeout, WinnersTimeout: 30 * time.Minute,
				DialAttempts: 20,
			}, deps)
			if err != nil {
				r.err, r.reason = err, "config"
				failed.Add(1)
				return
			}
			res, err := c.Run(ctx, src)
			r.done = time.Since(start)
			r.bets, r.batches, r.barrierWait, r.winners = int64(res.Bets), int64(res.Batches), res.BarrierWait, res.Winners
			if err != nil {
				r.err = err
				r.reason = "other"
				var ae *agency.Error
				if errors.As(err, &ae) {
					r.reason = ae.Reason
				}
				m.errors.WithLabelValues(r.reason).Inc()
				failed.Add(1)
				m.agencies.WithLabelValues("failed").Inc()
			} else {
				finished.Add(1)
				m.agencies.WithLabelValues("done").Inc()
			}
			m.agencies.WithLabelValues("running").Dec()
		})
	}
	wg.Wait()
	total := time.Since(start)
	close(stopProgress)
	<-progressDone

	rep := buildReport(cfg, runs[1:], lat, total, time.Duration(lastAck.Load()), betsAcked.Load(), batchesAcked.Load())
	if srv != nil {
		if err := stopCentral(); err != nil {
			rep.Checks = append(rep.Checks, Check{Name: "central shut down cleanly", OK: false, Detail: err.Error()})
		}
		if !cfg.NoStore {
			rep.Checks = append(rep.Checks, checkStore(srv.Store().Path(), runs[1:]))
		}
	}
	rep.finish()
	return rep, nil
}

func startCentral(cfg Config, path string) (*central.Server, func() error, error) {
	srv, err := central.New(central.Config{
		Address:        "127.0.0.1:0",
		Agencies:       cfg.Agencies,
		StorePath:      path,
		MaxConnections: cfg.Agencies + 64,
		IdleTimeout:    5 * time.Minute,
		DiscardBets:    cfg.NoStore,
	}, central.Deps{Logger: cfg.CentralLogger, Registerer: cfg.Registerer})
	if err != nil {
		return nil, nil, fmt.Errorf("start the in-process central: %w", err)
	}
	if err := srv.Listen(); err != nil {
		srv.Store().Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	return srv, stop, nil
}

// source yields one agency's bets and remembers what it yielded, so the
// run can check the winners and the store against it.
type source struct {
	gen      *datagen.Generator
	file     *betfile.File
	limit    int // 0: until the deadline
	deadline time.Time
	n        int
	winners  []string
	hash     uint64
}

func newSource(cfg Config, agencyID int, deadline time.Time) (*source, error) {
	s := &source{limit: cfg.Bets, deadline: deadline, hash: fnvOffset}
	if cfg.Duration > 0 {
		s.limit = 0
	}
	if cfg.DataDir != "" {
		files, err := filepath.Glob(filepath.Join(cfg.DataDir, "agency-*.csv"))
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("no agency-*.csv files in %s", cfg.DataDir)
		}
		sort.Strings(files)
		path := filepath.Join(cfg.DataDir, "agency-"+strconv.Itoa(agencyID)+".csv")
		if _, err := os.Stat(path); err != nil {
			path = files[(agencyID-1)%len(files)]
		}
		f, err := betfile.Open(path, agencyID)
		if err != nil {
			return nil, err
		}
		s.file = f
		if cfg.Duration == 0 && cfg.Bets == 0 {
			s.limit = 0
		}
		return s, nil
	}
	s.gen = datagen.New(datagen.Options{Seed: cfg.Seed, Agency: agencyID})
	return s, nil
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashBet folds a bet's document and number into h (FNV-1a), the same way
// checkStore does for stored rows.
func hashBet[T ~string | ~[]byte](h uint64, document T, number int) uint64 {
	for i := 0; i < len(document); i++ {
		c := document[i]
		h = (h ^ uint64(c)) * fnvPrime
	}
	h = (h ^ uint64(number)) * fnvPrime
	return (h ^ ',') * fnvPrime
}

func (s *source) Next() (lottery.Bet, error) {
	if s.limit > 0 && s.n >= s.limit {
		return lottery.Bet{}, io.EOF
	}
	if !s.deadline.IsZero() && s.n%64 == 0 && time.Now().After(s.deadline) {
		return lottery.Bet{}, io.EOF
	}
	var b lottery.Bet
	if s.file != nil {
		var err error
		if b, err = s.file.Next(); err != nil {
			return b, err
		}
	} else {
		b = s.gen.Next()
	}
	s.n++
	s.hash = hashBet(s.hash, b.Document, b.Number)
	if b.Wins() {
		s.winners = append(s.winners, b.Document)
	}
	return b, nil
}

func (s *source) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// checkStore reads the in-process central's bets file and checks it holds
// exactly the bets each finished agency had acknowledged: same count and
// same sequence of (document, number) per agency.
func checkStore(path string, runs []*agencyRun) Check {
	type agg struct {
		n    int64
		hash uint64
	}
	got := map[int]*agg{}
	err := func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return store.ScanRows(f, func(a int, doc []byte, number int) error {
			g := got[a]
			if g == nil {
				g = &agg{hash: fnvOffset}
				got[a] = g
			}
			g.n++
			g.hash = hashBet(g.hash, doc, number)
			return nil
		})
	}()
	c := Check{Name: "store holds exactly the acknowledged bets"}
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	bad := 0
	for _, r := range runs {
		g := got[r.id]
		if g == nil {
			g = &agg{hash: fnvOffset}
		}
		if r.err != nil {
			// A failed agency's unacknowledged batch may or may not be
			// stored; only "nothing acknowledged is missing" holds.
			if g.n < r.bets {
				bad++
			}
			continue
		}
		if g.n != r.bets || r.src == nil || g.hash != r.src.hash || int64(r.src.n) != r.bets {
			bad++
			if c.Detail == "" {
				c.Detail = fmt.Sprintf("agency %d: store has %d bets, %d acknowledged", r.id, g.n, r.bets)
			}
		}
	}
	c.OK = bad == 0
	if !c.OK {
		c.Detail = fmt.Sprintf("%d agencies differ; first: %s", bad, c.Detail)
	}
	return c
}
