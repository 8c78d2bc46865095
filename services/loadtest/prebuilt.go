package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/loteria/loteria/services/agency"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// prebuiltFrames is how many distinct batches each agency of the prebuilt
// mode cycles through: enough that the central's work is not one cached
// frame, few enough to build in no time.
const prebuiltFrames = 8

// frame is one prebuilt batch and what it holds, for the checks.
type frame struct {
	bytes   []byte
	bets    []lottery.Bet
	winners []string
}

// buildFrames packs an agency's first bets into prebuilt batch frames of
// the seed protocol (no extensions: each is stored at the agency's mark,
// so sending one again stores its bets again, as a seed client's resend
// would).
func buildFrames(cfg Config, agencyID int) []frame {
	g := datagen.New(datagen.Options{Seed: cfg.Seed, Agency: agencyID})
	frames := make([]frame, 0, prebuiltFrames)
	var held *lottery.Bet
	for len(frames) < prebuiltFrames {
		var f frame
		var body []byte
		for len(f.bets) < cfg.Batch {
			b := g.Next()
			if held != nil {
				b, held = *held, nil
			}
			line := wire.BetLineLen(b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
			hdr := wire.BatchHeader{Agency: agencyID, Count: len(f.bets) + 1}
			if wire.HeaderLen+wire.HeaderLineLen(hdr)+len(body)+line > wire.MaxAgencyFrame {
				held = &b
				break
			}
			body = wire.AppendBetLine(body, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
			f.bets = append(f.bets, b)
			if b.Wins() {
				f.winners = append(f.winners, b.Document)
			}
		}
		f.bytes = wire.BeginFrame(nil)
		f.bytes = wire.AppendBatchHeader(f.bytes, wire.BatchHeader{Agency: agencyID, Count: len(f.bets)})
		f.bytes = append(f.bytes, body...)
		wire.FinishFrame(f.bytes)
		frames = append(frames, f)
	}
	return frames
}

// buildAllFrames builds every agency's frames, on as many goroutines as
// there are cores: frames[i] is agency cfg.FirstID+i-1's (frames[0] is
// unused, as in Run's runs).
func buildAllFrames(cfg Config) [][]frame {
	frames := make([][]frame, cfg.Agencies+1)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), cfg.Agencies) {
		wg.Go(func() {
			for i := range next {
				frames[i] = buildFrames(cfg, cfg.FirstID+i-1)
			}
		})
	}
	for i := 1; i <= cfg.Agencies; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return frames
}

// runPrebuilt is one agency of the prebuilt mode: a raw connection that
// writes prebuilt frames (a window of cfg.InFlight unacknowledged) until
// it has sent cfg.Bets bets (a timed run: until the deadline), then END, then reads
// its winners. It costs the load side next to nothing per batch, so the
// run measures the central. It fills r and src (the oracle of what it
// sent) and calls onAck for each ack.
func runPrebuilt(ctx context.Context, cfg Config, addr string, r *agencyRun, frames []frame, src *source, deadline time.Time,
	pace func(context.Context, int) (time.Time, error), onAck func(time.Duration, int)) error {
	d := net.Dialer{Timeout: cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &agency.Error{Reason: "connection", Err: err}
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	type sent struct {
		at   time.Time
		bets int
	}
	// The window: a frame takes a slot before it is written and frees it
	// when its ack is read; the reader gets the frames in order. A reader
	// that stops at a failure closes readerDone, so the sender does not
	// wait for a slot that never frees.
	slots := make(chan struct{}, cfg.InFlight)
	window := make(chan sent, cfg.InFlight)
	acked := make(chan error, 1)
	readerDone := make(chan struct{})
	br := bufio.NewReaderSize(nc, 4096)
	go func() {
		defer close(readerDone)
		buf := make([]byte, 0, 128)
		for s := range window {
			nc.SetReadDeadline(time.Now().Add(cfg.Timeout))
			p, err := wire.ReadFrame(br, buf[:0], 1<<16)
			if err != nil {
				acked <- &agency.Error{Reason: "connection", Err: fmt.Errorf("read an ack: %w", err)}
				nc.Close()
				return
			}
			if err := wire.ParseAck(p); err != nil {
				acked <- &agency.Error{Reason: "error_ack", Err: err}
				nc.Close()
				return
			}
			onAck(time.Since(s.at), s.bets)
			r.bets += int64(s.bets)
			r.batches++
			<-slots
		}
		acked <- nil
	}()
	n := 0
	limit := cfg.Bets
	if cfg.Duration > 0 {
		limit = src.limit // a timed run sends until the deadline, and paced, only the bets due before it
	}
	var sendErr error
	for i := 0; ; i++ {
		if limit > 0 && n >= limit {
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		f := frames[i%len(frames)]
		var due time.Time
		if pace != nil {
			if due, sendErr = pace(ctx, n); sendErr != nil {
				break
			}
		}
		stopped := false
		select {
		case slots <- struct{}{}:
		case <-readerDone:
			stopped = true // its error is the run's
		}
		if stopped {
			break
		}
		if pace == nil {
			due = time.Now() // unpaced, latency runs from the write, not from the wait for room
		}
		window <- sent{at: due, bets: len(f.bets)} // never blocks: a slot each
		nc.SetWriteDeadline(time.Now().Add(cfg.Timeout))
		if sendErr = wire.WriteFull(nc, f.bytes); sendErr != nil {
			sendErr = &agency.Error{Reason: "connection", Err: fmt.Errorf("send a batch: %w", sendErr)}
			break
		}
		for _, b := range f.bets {
			src.n++
			src.hash = hashBet(src.hash, b.Document, b.Number)
		}
		src.winners = append(src.winners, f.winners...)
		n += len(f.bets)
	}
	close(window)
	if err := <-acked; err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	start := time.Now()
	nc.SetWriteDeadline(time.Now().Add(cfg.Timeout))
	if err := wire.WriteFull(nc, []byte("00000003"+wire.End)); err != nil {
		return &agency.Error{Reason: "connection", Err: err}
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Minute))
	p, err := wire.ReadFrame(br, nil, 64<<20)
	if err != nil {
		return &agency.Error{Reason: "connection", Err: fmt.Errorf("read the winners: %w", err)}
	}
	w, err := wire.ParseWinners(p)
	if err != nil {
		return &agency.Error{Reason: "error_ack", Err: err}
	}
	r.barrierWait, r.winners = time.Since(start), w
	if w == nil {
		return errors.New("no winners message")
	}
	return nil
}
