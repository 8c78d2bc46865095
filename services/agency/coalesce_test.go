package agency

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/loteria/loteria/services/agency/agencytest"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// writeLog records every Write on a connection.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
}

type loggedConn struct {
	net.Conn
	log *writeLog
}

func (c loggedConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, bytes.Clone(p))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

// TestBatchesAreCoalescedIntoWrites: frames that go out back to back
// leave in one write, each whole. 30 batches of 10 bets (about 12 KB) fit
// an InFlight of 64 and the byte bound, so the sender never waits for an
// ack and writes them all at once. One write per frame, as before, filled
// a central's socket buffer with small segments: the kernel pruned it,
// dropped one, and the run stalled for a 200 ms retransmission timeout.
func TestBatchesAreCoalescedIntoWrites(t *testing.T) {
	bets := genBets(3, 300)
	want := linesOf(bets)
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.InFlight = 64
	log := &writeLog{}
	h := newHarness(t, opts, Deps{WrapConn: func(nc net.Conn) net.Conn { return loggedConn{nc, log} }})
	if _, err := h.run(t, NewBetsStream(bets)); err != nil {
		t.Fatal(err)
	}
	checkStoredOnce(t, fake, want)
	log.mu.Lock()
	defer log.mu.Unlock()
	withBatches, frames := 0, 0
	for i, w := range log.writes {
		// Every write holds whole frames.
		batches := 0
		for off := 0; off < len(w); {
			if len(w)-off < wire.HeaderLen {
				t.Fatalf("write %d (%d bytes) ends inside a frame header", i, len(w))
			}
			n, err := wire.ParseHeader(w[off : off+wire.HeaderLen])
			if err != nil || off+wire.HeaderLen+n > len(w) {
				t.Fatalf("write %d (%d bytes) ends inside a frame (%v)", i, len(w), err)
			}
			p := w[off+wire.HeaderLen : off+wire.HeaderLen+n]
			off += wire.HeaderLen + n
			if h, _, err := wire.ReadBatch(p); err == nil && h.Count > 0 {
				batches++
			}
		}
		if batches > 0 {
			withBatches++
			frames += batches
		}
	}
	if frames != len(bets)/opts.MaxBets || withBatches != 1 {
		t.Fatalf("%d batch frames in %d writes, want %d in 1", frames, withBatches, len(bets)/opts.MaxBets)
	}
}

// failingStream's source fails at bet failAt, as a bad line of a file does.
type failingStream struct {
	*BetsStream
	failAt int
}

func (s failingStream) Open(from int64) (Source, error) {
	src, err := s.BetsStream.Open(from)
	return &failingSource{src: src, left: s.failAt - int(from)}, err
}

type failingSource struct {
	src  Source
	left int
}

func (s *failingSource) Next() (lottery.Bet, error) {
	if s.left == 0 {
		return lottery.Bet{}, errors.New("line 46: a bad line")
	}
	s.left--
	return s.src.Next()
}

// TestCoalescedBatchesGoOutBeforeABadLine: the batches packed before a bad
// line of the file are sent and stored, although they were still waiting
// in the coalescing buffer when the line was read.
func TestCoalescedBatchesGoOutBeforeABadLine(t *testing.T) {
	bets := genBets(4, 100)
	fake := newFake(t, agencytest.Options{})
	opts := testOptions(fake.Addr())
	opts.InFlight = 64
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, failingStream{NewBetsStream(bets), 45})
	if err == nil || !strings.Contains(err.Error(), "a bad line") {
		t.Fatalf("run: %v, want the bad line's error", err)
	}
	checkStoredOnce(t, fake, linesOf(bets[:40]))
}
