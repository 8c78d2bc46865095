// Package loadtest drives many simulated agencies against a central, in
// one process, using the real agency client, and reports what a
// performance engineer needs: throughput, ack latency percentiles, barrier
// wait, errors, the slowest agencies, and whether the result was correct.
package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"math/rand/v2"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/betfile"
	"github.com/loteria/loteria/services/internal/certs"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/tlsconf"
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
	// Prebuilt sends prebuilt frames on raw connections instead of running
	// the agency client: a few batches built once per agency and sent over
	// and over (seed protocol, so each is stored again), so the load side
	// costs next to nothing and the run measures the central.
	Prebuilt bool
	// TLS makes every agency connect over mutual TLS, each with its own
	// certificate. With the in-process central, certificates are made for
	// the run in a temporary directory; with Addr, TLSDir must hold what
	// bin/certs wrote (ca.pem, agency-<i>.pem, agency-<i>-key.pem).
	TLS    bool
	TLSDir string
	// Restarts kills the in-process central (every connection dropped
	// unanswered, the store closed) and reopens it on the same store and
	// port this many times during the run, one every RestartEvery
	// (jittered); the agencies resume by themselves, and the checks then
	// say whether every bet is stored exactly once with the right winners.
	Restarts     int
	RestartEvery time.Duration

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
	if c.Rate > 0 {
		// A paced batch holds at most pacedFlush of its agency's bets, as a
		// real agency sends what it has sold at least that often: at 2 bets/s
		// a full frame would otherwise carry 90 s of bets, all sent at the
		// time of the first.
		c.Batch = min(c.Batch, max(1, int(c.Rate/float64(c.Agencies)*pacedFlush.Seconds())))
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
	if c.Prebuilt && (c.TLS || c.Restarts > 0 || c.DataDir != "") {
		return errors.New("--prebuilt sends its own frames on plain connections: it cannot be combined with --tls, --restarts or --data-dir")
	}
	if c.TLS && c.Addr != "" && c.TLSDir == "" {
		return errors.New("--tls with --addr needs --tls-dir: the certificates bin/certs wrote for that central")
	}
	if c.Restarts > 0 {
		switch {
		case c.Addr != "":
			return errors.New("--restarts kills the load tool's own central: it cannot be used with --addr")
		case c.Duration > 0 || (c.Bets == 0 && c.DataDir == ""):
			return errors.New("--restarts needs a fixed number of bets per agency (--bets N), so every agency's stream can be resumed and checked")
		case c.DataDir != "" && c.Bets != 0:
			return errors.New("--restarts with --data-dir resumes and checks each whole file: give --bets 0")
		case c.Protocol != agency.ProtocolLoteria:
			return errors.New("--restarts needs --protocol loteria: seed-protocol agencies cannot resume without duplicating")
		case c.NoStore:
			return errors.New("--restarts checks the store: it cannot be used with --no-store")
		}
		if c.RestartEvery <= 0 {
			c.RestartEvery = 500 * time.Millisecond
		}
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
	rounds      []agency.RoundWinners // per round, when the central said (v1)
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
	var own *inproc
	var storePath string
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
		storePath = filepath.Join(dir, "bets.csv")
		if err := refuseUsedStore(storePath); err != nil {
			return nil, err
		}
		own = newInproc(cfg, storePath)
		if cfg.TLS && cfg.TLSDir == "" {
			certDir, err := os.MkdirTemp("", "loteria-loadtest-certs-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(certDir)
			cfg.TLSDir = certDir
			if err := own.useTLS(certDir, cfg.Agencies); err != nil {
				return nil, err
			}
		}
		if err := own.start(); err != nil {
			return nil, err
		}
		defer own.stop()
		addr = own.address()
	}

	shared := agency.NewMetrics(cfg.Registerer)
	lat := NewHistogram()
	var betsAcked, batchesAcked, lastAck atomic.Int64
	runs := make([]*agencyRun, cfg.Agencies+1)
	var running, finished, failed atomic.Int64
	m.agencies.WithLabelValues("running").Set(float64(cfg.Agencies))

	// The prebuilt mode's frames are built before the clock starts: built
	// by each agency as it began (8,000 frames for 1,000 agencies: 0.57 s
	// of one core), they delayed the first sends and took the cores the
	// central was being measured on, and a paced 10 s run offering 1.7 M
	// bets/s got 1.61 M.
	var frames [][]frame
	if cfg.Prebuilt {
		frames = buildAllFrames(cfg)
	}
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

	restartsDone := make(chan struct{})
	stopRestarts := make(chan struct{})
	var restarted int
	var restartErr error
	go func() {
		defer close(restartsDone)
		if own != nil && cfg.Restarts > 0 {
			restarted, restartErr = restartLoop(own, cfg, stopRestarts)
		}
	}()
	finish := func(r *agencyRun, err error) {
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
	}
	var wg sync.WaitGroup
	for i := 1; i <= cfg.Agencies; i++ {
		id := cfg.FirstID + i - 1
		r := &agencyRun{id: id}
		runs[i] = r
		wg.Go(func() {
			running.Add(1)
			defer running.Add(-1)
			onAck := func(d time.Duration, bets int) {
				if cfg.Warmup <= 0 || time.Since(start)-d >= cfg.Warmup {
					lat.Record(d)
				}
				m.ackDuration.Observe(d.Seconds())
				m.betsAcked.Add(float64(bets))
				betsAcked.Add(int64(bets))
				batchesAcked.Add(1)
				lastAck.Store(int64(time.Since(start)))
			}
			if cfg.Prebuilt {
				src := &source{hash: fnvOffset, limit: pacedBets(cfg, i)}
				r.src = src
				var pace func(context.Context, int) (time.Time, error)
				if cfg.Rate > 0 {
					pace = newPacer(cfg, i).wait
				}
				err := runPrebuilt(ctx, cfg, addr, r, frames[i], src, deadline, pace, onAck)
				r.done = time.Since(start)
				finish(r, err)
				return
			}
			src, err := newSource(cfg, id, deadline)
			if err != nil {
				r.err, r.reason = err, "data"
				failed.Add(1)
				return
			}
			defer src.close()
			if cfg.Duration > 0 {
				src.limit = pacedBets(cfg, i)
			}
			r.src = src
			var stream agency.Stream = agency.OneShot(src, src.fingerprint(cfg, id), -1)
			if resumable(cfg) {
				// Resumable: the agency reopens its stream at the mark the
				// restarted central reports. The oracle is built from one
				// more pass over the same file or generator, bet by bet.
				rs, err := resumableStream(cfg, id, src.path)
				if err == nil {
					err = src.fromStream(rs)
				}
				if err != nil {
					r.err, r.reason = err, "data"
					failed.Add(1)
					return
				}
				stream = rs
			}
			deps := agency.Deps{Metrics: shared, OnAck: onAck}
			if cfg.Rate > 0 {
				deps.Pace = newPacer(cfg, i).wait
			}
			opts := agency.Options{
				Agency: id, Address: addr, MaxBets: cfg.Batch, InFlight: cfg.InFlight,
				Protocol: cfg.Protocol, Timeout: cfg.Timeout, WinnersTimeout: 30 * time.Minute,
				DialAttempts: 20,
			}
			if cfg.Restarts > 0 {
				// A restart takes milliseconds: keep the backoff short so the
				// run measures the central, not the agencies' patience.
				opts.DialAttempts, opts.RetryBase, opts.RetryMax = 0, 20*time.Millisecond, 500*time.Millisecond
			}
			if cfg.TLS {
				if opts.TLS, err = tlsconf.ClientConfig(filepath.Join(cfg.TLSDir, certs.AgencyFile(id)),
					filepath.Join(cfg.TLSDir, certs.AgencyKeyFile(id)), filepath.Join(cfg.TLSDir, "ca.pem"), ""); err != nil {
					r.err, r.reason = err, "config"
					failed.Add(1)
					return
				}
			}
			c, err := agency.NewClient(opts, deps)
			if err != nil {
				r.err, r.reason = err, "config"
				failed.Add(1)
				return
			}
			res, err := c.Run(ctx, stream)
			r.done = time.Since(start)
			r.bets, r.batches, r.barrierWait, r.winners = int64(res.Bets), int64(res.Batches), res.BarrierWait, res.Winners
			r.rounds = res.Rounds
			finish(r, err)
		})
	}
	wg.Wait()
	total := time.Since(start)
	close(stopProgress)
	close(stopRestarts)
	<-progressDone
	<-restartsDone

	rep := buildReport(cfg, runs[1:], lat, total, time.Duration(lastAck.Load()), betsAcked.Load(), batchesAcked.Load())
	if cfg.Restarts > 0 {
		rep.Restarts = restarted
		c := Check{Name: fmt.Sprintf("central killed and reopened %d times", cfg.Restarts), OK: restarted == cfg.Restarts && restartErr == nil}
		if restartErr != nil {
			c.Detail = restartErr.Error()
		} else if !c.OK {
			c.Detail = fmt.Sprintf("only %d: the run ended first (lower --restart-every or raise --bets)", restarted)
		}
		rep.Checks = append(rep.Checks, c)
	}
	if own != nil {
		if err := own.stop(); err != nil {
			rep.Checks = append(rep.Checks, Check{Name: "central shut down cleanly", OK: false, Detail: err.Error()})
		}
		if !cfg.NoStore {
			rep.Checks = append(rep.Checks, checkStore(storePath, runs[1:], cfg.Restarts > 0))
		}
	}
	rep.finish()
	return rep, nil
}

// resumable reports whether the agencies' streams can be reopened at a
// central's mark: with the restart mode, and against a central of --addr
// for a fixed number of generated bets (--bets N) or each whole data file
// (--data-dir with --bets 0), so that the operator may restart that
// central during the run and the agencies resume (one pass more over the
// generator or the file, per agency before it starts, builds the oracle).
// A timed run's stream, and a file's first N bets, are read once.
func resumable(cfg Config) bool {
	if cfg.Restarts > 0 {
		return true
	}
	fixed := cfg.Bets > 0
	if cfg.DataDir != "" {
		fixed = cfg.Bets == 0
	}
	return cfg.Addr != "" && cfg.Duration == 0 && fixed && cfg.Protocol == agency.ProtocolLoteria
}

// resumableStream is agency id's resumable stream: its data file's
// (path, when the run reads --data-dir) or its generated bets'.
func resumableStream(cfg Config, id int, path string) (agency.Stream, error) {
	if cfg.DataDir != "" {
		return agency.OpenFileStream(path, id)
	}
	return agency.NewGeneratedStream(id, cfg.Seed, int64(cfg.Bets))
}

// restartLoop kills and reopens the central every cfg.RestartEvery,
// jittered by ±50%, until it has done cfg.Restarts or the run ends.
func restartLoop(p *inproc, cfg Config, stop <-chan struct{}) (int, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for n := 0; n < cfg.Restarts; n++ {
		d := cfg.RestartEvery/2 + time.Duration(rng.Int64N(int64(cfg.RestartEvery)))
		t := time.NewTimer(d)
		select {
		case <-stop:
			t.Stop()
			return n, nil
		case <-t.C:
		}
		if err := p.kill(); err != nil && !errors.Is(err, ledger.ErrFailed) {
			return n, fmt.Errorf("kill %d: %w", n+1, err)
		}
		if err := p.start(); err != nil {
			return n, fmt.Errorf("restart %d: %w", n+1, err)
		}
	}
	return cfg.Restarts, nil
}

// refuseUsedStore refuses a store directory that already holds bets: the
// checks compare the store with what this run acknowledged, so a store
// the run did not start empty would fail them for the wrong reason.
func refuseUsedStore(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s already holds %d bytes of bets from an earlier run: the load tool checks the store against what it sent, so it only uses a store it starts empty; pass a new --store-dir (or none, for a temporary one)", path, st.Size())
}

// source yields one agency's bets and remembers what it yielded, so the
// run can check the winners and the store against it.
type source struct {
	gen      *datagen.Generator
	genOpts  datagen.Options // to generate the same bets again (the round-aware check)
	file     *betfile.File
	path     string // the file's, to read it again
	limit    int    // 0: until the deadline
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
		s.file, s.path = f, path
		if cfg.Duration == 0 && cfg.Bets == 0 {
			s.limit = 0
		}
		return s, nil
	}
	s.genOpts = datagen.Options{Seed: cfg.Seed, Agency: agencyID}
	s.gen = datagen.New(s.genOpts)
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
		// A copy: the bet's strings share the reader's 64 KiB block.
		s.winners = append(s.winners, strings.Clone(b.Document))
	}
	return b, nil
}

// fingerprint names the agency's bets for the central's HELLO: the load
// tool sends them once per run (no resume), so the data's parameters do.
func (s *source) fingerprint(cfg Config, agencyID int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "loadtest;agency=%d;seed=%d;data=%s", agencyID, cfg.Seed, cfg.DataDir))
	return hex.EncodeToString(sum[:16])
}

// playing is the DNIs of the bets this source yielded that play number,
// in order: read again from the generator or the file, so it costs no
// memory during the run. (A stream's oracle, fromStream, is generated
// with agency.NewGeneratedStream's generator, the same as genOpts'.)
func (s *source) playing(number int, agencyID int) ([]string, error) {
	var next func() (lottery.Bet, error)
	switch {
	case s.path != "":
		f, err := betfile.Open(s.path, agencyID)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		next = f.Next
	case s.gen != nil:
		g := datagen.New(s.genOpts)
		next = func() (lottery.Bet, error) { return g.Next(), nil }
	default:
		return nil, errors.New("the bets sent cannot be read again")
	}
	var out []string
	for i := 0; i < s.n; i++ {
		b, err := next()
		if err != nil {
			return nil, err
		}
		if b.Number == number {
			out = append(out, strings.Clone(b.Document)) // not the reader's block
		}
	}
	return out, nil
}

// fromStream makes the oracle of a resumable stream: every bet it will
// yield, read here from the generator, once.
func (s *source) fromStream(st agency.Stream) error {
	src, err := st.Open(0)
	if err != nil {
		return err
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	for i := int64(0); i < st.Len(); i++ {
		b, err := src.Next()
		if err != nil {
			return fmt.Errorf("read the stream's bet %d: %w", i, err)
		}
		s.n++
		s.hash = hashBet(s.hash, b.Document, b.Number)
		if b.Wins() {
			// A copy: a file's bets share the reader's 64 KiB block.
			s.winners = append(s.winners, strings.Clone(b.Document))
		}
	}
	return nil
}

func (s *source) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// checkStore reads the in-process central's bets file and checks it holds
// exactly the bets each finished agency had acknowledged: same count and
// same sequence of (document, number) per agency.
//
// With exact (the restart mode), acknowledgements are not counted once
// per bet (a resend of a stored bet is acknowledged again), so the store
// must hold every agency's whole stream, once, in order.
func checkStore(path string, runs []*agencyRun, exact bool) Check {
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
		if exact {
			if r.src == nil || g.n != int64(r.src.n) || g.hash != r.src.hash {
				bad++
				if c.Detail == "" {
					want := 0
					if r.src != nil {
						want = r.src.n
					}
					c.Detail = fmt.Sprintf("agency %d: store has %d bets, its stream %d (or they differ, or some twice)", r.id, g.n, want)
				}
			}
			continue
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
