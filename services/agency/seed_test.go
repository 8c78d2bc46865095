package agency

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
	"github.com/loteria/loteria/services/internal/lottery"
)

// seedServer is a raw TCP server that answers as the seed's own server
// does, and keeps every byte it received.
type seedServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	got   [][]byte // bytes received, per connection
	conns int
	// closeAfter, when positive, closes the connection after that many
	// frames of its first connection, without answering the last.
	closeAfter int
	winners    string
	// lookAhead, when positive, is how long the server watches, before it
	// acks a batch, for bytes of a next frame; ahead counts the batches
	// that were followed so before their ack.
	lookAhead time.Duration
	ahead     int
}

func newSeedServer(t *testing.T, addr string) *seedServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &seedServer{ln: ln, winners: "NO_WINNERS"}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *seedServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		n := s.conns
		s.got = append(s.got, nil)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			s.serve(nc, n)
		}()
	}
}

// serve reads frames by hand (8 ASCII digits, then the payload).
func (s *seedServer) serve(nc net.Conn, n int) {
	br := bufio.NewReader(nc)
	frames := 0
	for {
		var hdr [8]byte
		if _, err := ioReadFull(br, hdr[:]); err != nil {
			return
		}
		size, err := strconv.Atoi(string(hdr[:]))
		if err != nil {
			return
		}
		payload := make([]byte, size)
		if _, err := ioReadFull(br, payload); err != nil {
			return
		}
		s.mu.Lock()
		s.got[n-1] = append(append(s.got[n-1], hdr[:]...), payload...)
		s.mu.Unlock()
		frames++
		if s.closeAfter > 0 && n == 1 && frames == s.closeAfter {
			return
		}
		answer := "success;Batch stored successfully."
		if string(payload) == "END" {
			answer = s.winners
		} else if s.lookAhead > 0 {
			nc.SetReadDeadline(time.Now().Add(s.lookAhead))
			if _, err := br.Peek(1); err == nil {
				s.mu.Lock()
				s.ahead++
				s.mu.Unlock()
			}
			nc.SetReadDeadline(time.Time{})
		}
		fmt.Fprintf(nc, "%08d%s", len(answer), answer)
		if string(payload) == "END" {
			return
		}
	}
}

func ioReadFull(br *bufio.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := br.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *seedServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, g := range s.got {
		out = append(out, append([]byte(nil), g...))
	}
	return out
}

// seedBytes is what the seed's client sends for bets in batches of max:
// frames of "<agency>;<n>\n" and n bet lines, then END. Written here with
// fmt, not with the wire package.
func seedBytes(agency int, bets []lottery.Bet, max int) []byte {
	var b bytes.Buffer
	for i := 0; i < len(bets); i += max {
		j := min(i+max, len(bets))
		var p strings.Builder
		fmt.Fprintf(&p, "%d;%d\n", agency, j-i)
		for _, bet := range bets[i:j] {
			p.WriteString(lineOf(bet) + "\n")
		}
		fmt.Fprintf(&b, "%08d%s", p.Len(), p.String())
	}
	if len(bets) == 0 {
		fmt.Fprintf(&b, "%08d%d;0\n", len(fmt.Sprintf("%d;0\n", agency)), agency)
	}
	b.WriteString("00000003END")
	return b.Bytes()
}

// TestSeedProtocolBytes: --protocol=seed sends exactly the seed client's
// bytes: no HELLO, no extension, END; and reads the seed's winners.
func TestSeedProtocolBytes(t *testing.T) {
	for _, n := range []int{0, 1, 25, 100} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			bets := genBets(20, n)
			srv := newSeedServer(t, "127.0.0.1:0")
			if w := winnersOf(linesOf(bets)); len(w) > 0 {
				srv.winners = strings.Join(w, ";")
			}
			opts := testOptions(srv.ln.Addr().String())
			opts.Protocol = ProtocolSeed
			h := newHarness(t, opts, Deps{})
			res, err := h.run(t, NewBetsStream(bets))
			if err != nil {
				t.Fatal(err)
			}
			got := srv.received()
			if want := seedBytes(1, bets, 10); len(got) != 1 || !bytes.Equal(got[0], want) {
				t.Fatalf("sent\n%q\nwant\n%q", got, want)
			}
			if !equalStrings(res.Winners, winnersOf(linesOf(bets))) || len(res.Rounds) != 1 || res.Rounds[0].Round != 1 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

// TestSeedWindow: a window of one is stop-and-wait, as the seed's own
// client is: nothing of the next batch is written before the ack. The
// server watches for 20 ms before each ack; a window of two shows that
// the watch sees a batch sent early (it always is: the agency writes it
// at once), so the test fails if the window lets one more out than it
// says.
func TestSeedWindow(t *testing.T) {
	for _, tt := range []struct {
		inFlight int
		early    bool
	}{{1, false}, {2, true}} {
		t.Run(fmt.Sprintf("in-flight %d", tt.inFlight), func(t *testing.T) {
			srv := newSeedServer(t, "127.0.0.1:0")
			srv.lookAhead = 20 * time.Millisecond
			opts := testOptions(srv.ln.Addr().String())
			opts.Protocol, opts.InFlight = ProtocolSeed, tt.inFlight
			h := newHarness(t, opts, Deps{})
			bets := genBets(23, 60)
			if _, err := h.run(t, NewBetsStream(bets)); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			ahead := srv.ahead
			srv.mu.Unlock()
			if tt.early && ahead == 0 || !tt.early && ahead != 0 {
				t.Errorf("%d of 6 batches followed by the next before their ack, with a window of %d", ahead, tt.inFlight)
			}
		})
	}
}

// TestSeedFailureIsFinal: in the seed protocol nothing says what the
// server stored, so a failure after connecting is final.
func TestSeedFailureIsFinal(t *testing.T) {
	srv := newSeedServer(t, "127.0.0.1:0")
	srv.closeAfter = 2
	opts := testOptions(srv.ln.Addr().String())
	opts.Protocol = ProtocolSeed
	h := newHarness(t, opts, Deps{})
	_, err := h.run(t, NewBetsStream(genBets(21, 50)))
	// The server closes with frames unread: EOF or a reset, seen while the
	// agency waits for an ack or while it still writes the next batch.
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != reasonConnection ||
		!(strings.Contains(err.Error(), "read ack of batch") || strings.Contains(err.Error(), "send batch")) {
		t.Fatalf("err = %v, want the lost connection", err)
	}
	if len(srv.received()) != 1 || len(h.clock.Sleeps()) != 0 {
		t.Errorf("%d connections, %d backoffs: want no retry", len(srv.received()), len(h.clock.Sleeps()))
	}
}

// hookClock is a fake clock that calls onSleep at each sleep.
type hookClock struct {
	*fakeClock
	onSleep func(n int)
	n       int
}

func (c *hookClock) Sleep(ctx context.Context, d time.Duration) error {
	c.n++
	c.onSleep(c.n)
	return c.fakeClock.Sleep(ctx, d)
}

// TestSeedRefusedDialRetried: before anything is sent, a refused dial is
// retried in the seed protocol too (the central may start after the
// agency).
func TestSeedRefusedDialRetried(t *testing.T) {
	addr := testenv.FreeAddr(t)
	var srv *seedServer
	clock := &hookClock{fakeClock: newFakeClock(), onSleep: func(n int) {
		if n == 2 {
			srv = newSeedServer(t, addr)
		}
	}}
	opts := testOptions(addr)
	opts.Protocol = ProtocolSeed
	h := newHarness(t, opts, Deps{Clock: clock})
	bets := genBets(22, 12)
	if _, err := h.run(t, NewBetsStream(bets)); err != nil {
		t.Fatal(err)
	}
	if got := srv.received(); len(got) != 1 || !bytes.Equal(got[0], seedBytes(1, bets, 10)) {
		t.Errorf("sent %q", got)
	}
	if h.retries() != 2 {
		t.Errorf("retries_total = %v, want the 2 refused dials", h.retries())
	}
}
