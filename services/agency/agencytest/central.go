// Package agencytest is a scripted fake of the central, for testing the
// agency over real TCP: it speaks the seed protocol and the loteria
// extensions as docs/PROTOCOL.md and docs/ROUNDS.md describe them (HELLO /
// WELCOME, idempotent batches by stream index, coded error acks, rounds,
// the v1 winners message), keeps everything in memory, records every
// frame it got, and lets a test script failures: drop a connection, answer
// an error code, refuse a batch, cut a round.
//
// It is deliberately simple and written apart from the real central, so
// that the agency is tested against the protocol rather than against one
// implementation of it.
package agencytest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loteria/loteria/services/internal/wire"
)

// WinningNumber is the number the fake's draws pick, every round.
const WinningNumber = 7574

// Options configure a fake central. Hooks run on the connection's
// goroutine, without the fake's lock held: they may call its methods.
type Options struct {
	// Agencies is the barrier: a round closes once this many agencies
	// sent END in it (default 1).
	Agencies int
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
	// OnHello may answer a HELLO in the fake's place.
	OnHello func(c Conn, h wire.Hello) Action
	// OnBatch may answer a batch in the fake's place.
	OnBatch func(b Batch) Action
	// OnEnd may answer an END in the fake's place.
	OnEnd func(c Conn) Action
}

// Action is what a hook tells the fake to do; the zero Action lets the
// fake handle the frame as the protocol says.
type Action struct {
	// Reply answers this payload and stores nothing, e.g.
	// "error;busy: at the connection limit".
	Reply string
	// Close closes the connection after Reply, or at once without one.
	Close bool
	// Drop handles the frame (a batch is stored), then drops the
	// connection without answering: it stops reading acks' way, closes
	// its sending side and reads (and records) what the agency still
	// sends until the agency closes. An ack lost with a connection.
	Drop bool
	// Reject refuses the batch as invalid with this message: nothing of
	// it is stored, the agency's mark moves past it.
	Reject string
	// Hold never answers an END (the barrier holds the agency).
	Hold bool
	// Begin, with Hold, writes these bytes first: a winners frame begun
	// and never finished.
	Begin string
}

// Conn describes one connection.
type Conn struct {
	N      int // 1, 2, ... in accept order
	Agency int // 0 until known
	Round  int // the round its HELLO named (0: the open one), or 0
	Hello  bool
}

// Batch is one batch frame the fake received.
type Batch struct {
	Conn    int
	Header  string // the header line as received
	Agency  int
	Count   int
	From    int64 // the from= extension, -1 when absent
	Round   int   // the round= extension, 0 when absent
	Seq     uint64
	Lines   []string // the bet lines, without newline
	Dropped bool     // received after the fake dropped the connection: not handled
}

// Hello is one HELLO the fake received, and the WELCOME it answered
// (zero when it answered something else).
type Hello struct {
	Conn int
	wire.Hello
	Welcome wire.Welcome
}

// Stored is one stored bet.
type Stored struct {
	Line  string // as it came: first;last;document;birthdate;number
	Round int
}

type agencyState struct {
	fp       string
	mark     int64
	rejected int64
	bets     []Stored // stored bets, by stream index... of the stored ones, in stream order
	lastEnd  int
	lastMark int64
}

type round struct {
	n     int
	ends  map[int]int64 // agency → its mark at END
	drawn chan struct{} // closed when the round closes (and is drawn at once)
}

// Central is a fake central listening on loopback.
type Central struct {
	opts Options
	ln   net.Listener

	mu       sync.Mutex
	open     int // the open round
	rounds   map[int]*round
	agencies map[int]*agencyState
	nconns   int
	batches  []Batch
	hellos   []Hello
	ends     []Conn
	waiting  int
	live     map[net.Conn]bool
	closed   bool

	wg sync.WaitGroup
}

// New starts a fake central on a free loopback port.
func New(opts Options) (*Central, error) {
	if opts.Agencies < 1 {
		opts.Agencies = 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	c := &Central{opts: opts, ln: ln, open: 1, rounds: map[int]*round{}, agencies: map[int]*agencyState{}, live: map[net.Conn]bool{}}
	c.rounds[1] = newRound(1)
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

func newRound(n int) *round {
	return &round{n: n, ends: map[int]int64{}, drawn: make(chan struct{})}
}

// Addr is the address agencies dial.
func (c *Central) Addr() string { return c.ln.Addr().String() }

// Close stops the fake: the listener, every connection, every goroutine.
func (c *Central) Close() {
	c.mu.Lock()
	c.closed = true
	for nc := range c.live {
		nc.Close()
	}
	c.mu.Unlock()
	c.ln.Close()
	c.wg.Wait()
}

func (c *Central) accept() {
	defer c.wg.Done()
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return
		}
		c.nconns++
		n := c.nconns
		c.live[nc] = true
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			defer func() {
				c.mu.Lock()
				delete(c.live, nc)
				c.mu.Unlock()
				nc.Close()
			}()
			c.serve(nc, &Conn{N: n})
		}()
	}
}

// CloseRound closes the open round as a cut-off would: it is drawn at
// once, agencies waiting in it get their winners, and the next opens.
func (c *Central) CloseRound() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeRoundLocked()
}

func (c *Central) closeRoundLocked() {
	r := c.rounds[c.open]
	close(r.drawn)
	c.open++
	c.rounds[c.open] = newRound(c.open)
}

// Reset forgets everything of agency, as a central whose store was reset
// would: its bets, mark, fingerprint and ENDs.
func (c *Central) Reset(agency int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.agencies, agency)
	for _, r := range c.rounds {
		delete(r.ends, agency)
	}
}

// Round is the open round.
func (c *Central) Round() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// Conns is how many connections were accepted.
func (c *Central) Conns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nconns
}

// Live is how many connections the fake is still serving (a dropped one
// until the agency has closed it and every frame it sent is recorded).
func (c *Central) Live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// Waiting is how many connections wait for a draw after END.
func (c *Central) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}

// Batches are the batches received, in arrival order.
func (c *Central) Batches() []Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Batch(nil), c.batches...)
}

// Hellos are the HELLOs received, in arrival order.
func (c *Central) Hellos() []Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Hello(nil), c.hellos...)
}

// Ends are the connections that sent END, in arrival order.
func (c *Central) Ends() []Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Conn(nil), c.ends...)
}

// Stored is agency's stored bets in stream order.
func (c *Central) Stored(agency int) []Stored {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.agencies[agency]; a != nil {
		return append([]Stored(nil), a.bets...)
	}
	return nil
}

// Mark is agency's mark: the first stream index it does not have.
func (c *Central) Mark(agency int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.agencies[agency]; a != nil {
		return a.mark
	}
	return 0
}

// Rejected is how many of agency's bets the fake refused.
func (c *Central) Rejected(agency int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.agencies[agency]; a != nil {
		return a.rejected
	}
	return 0
}

func (c *Central) agency(id int) *agencyState {
	a := c.agencies[id]
	if a == nil {
		a = &agencyState{}
		c.agencies[id] = a
	}
	return a
}

const maxFrame = 64 << 10

func (c *Central) serve(nc net.Conn, cn *Conn) {
	br := bufio.NewReader(nc)
	reply := func(p string) bool { return wire.WriteFrame(nc, []byte(p)) == nil }
	for {
		payload, err := wire.ReadFrame(br, nil, maxFrame)
		if errors.Is(err, wire.ErrBadHeader) || errors.Is(err, wire.ErrFrameTooLarge) {
			reply("error;protocol: " + err.Error())
			return
		}
		if err != nil {
			return
		}
		var act Action
		switch {
		case wire.IsHello(payload):
			act = c.hello(cn, payload)
		case wire.IsEnd(payload):
			c.mu.Lock()
			c.ends = append(c.ends, *cn)
			c.mu.Unlock()
			if c.opts.OnEnd != nil {
				act = c.opts.OnEnd(*cn)
			}
			if act == (Action{}) {
				c.end(nc, cn)
				return
			}
			if act.Hold {
				if act.Begin != "" {
					nc.Write([]byte(act.Begin))
				}
				c.mu.Lock()
				c.waiting++
				c.mu.Unlock()
				io.Copy(io.Discard, br) // until the agency goes
				c.mu.Lock()
				c.waiting--
				c.mu.Unlock()
				return
			}
		default:
			act = c.batch(cn, payload)
		}
		if act.Drop {
			c.drop(nc, br, cn)
			return
		}
		if act.Reply != "" && !reply(act.Reply) {
			return
		}
		if act.Close {
			return
		}
	}
}

// drop stops answering: the fake closes its sending side and records what
// the agency still sends, until the agency closes the connection.
func (c *Central) drop(nc net.Conn, br *bufio.Reader, cn *Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		return
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		payload, err := wire.ReadFrame(br, nil, maxFrame)
		if err != nil {
			return
		}
		if b, err := parseBatch(cn.N, payload); err == nil {
			b.Dropped = true
			c.mu.Lock()
			c.batches = append(c.batches, b)
			c.mu.Unlock()
		}
	}
}

func (c *Central) hello(cn *Conn, payload []byte) Action {
	h, err := wire.ParseHello(payload)
	if err != nil {
		return Action{Reply: "error;version: " + err.Error(), Close: true}
	}
	c.mu.Lock()
	c.hellos = append(c.hellos, Hello{Conn: cn.N, Hello: h})
	rec := len(c.hellos) - 1
	c.mu.Unlock()
	if c.opts.OnHello != nil {
		if act := c.opts.OnHello(*cn, h); act != (Action{}) {
			return act
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.agency(h.Agency)
	switch {
	case a.fp != "" && a.fp != h.Fingerprint:
		return Action{Reply: fmt.Sprintf("error;fingerprint: agency %d sent another stream before", h.Agency), Close: true}
	case h.Round > c.open:
		return Action{Reply: fmt.Sprintf("error;round: round %d has not opened yet", h.Round), Close: true}
	}
	a.fp = h.Fingerprint
	cn.Agency, cn.Round, cn.Hello = h.Agency, h.Round, true
	r := h.Round
	if r == 0 {
		r = c.open
	}
	state := wire.RoundOpen
	if r != c.open {
		state = wire.RoundDrawn
	}
	_, ended := c.rounds[r].ends[h.Agency]
	w := wire.Welcome{Version: 1, Agency: h.Agency, Round: r, State: state, Mark: a.mark, Rejected: a.rejected,
		Ended: ended, LastEnd: a.lastEnd, LastMark: a.lastMark}
	c.hellos[rec].Welcome = w
	return Action{Reply: string(wire.AppendWelcome(nil, w))}
}

func (c *Central) batch(cn *Conn, payload []byte) Action {
	b, err := parseBatch(cn.N, payload)
	if err != nil {
		return Action{Reply: "error;malformed: " + err.Error()}
	}
	c.mu.Lock()
	c.batches = append(c.batches, b)
	c.mu.Unlock()
	if cn.Agency == 0 {
		cn.Agency = b.Agency
	}
	if b.Agency != cn.Agency {
		return Action{Reply: "error;agency: the batch names another agency than this connection"}
	}
	var act Action
	if c.opts.OnBatch != nil {
		act = c.opts.OnBatch(b)
		if act.Reply != "" || (act.Close && !act.Drop) {
			return act
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.agency(b.Agency)
	from := b.From
	if from < 0 {
		from = a.mark // a seed client: at the mark
	}
	end := from + int64(b.Count)
	if from > a.mark {
		return Action{Reply: fmt.Sprintf("error;gap: agency %d: batch starts at bet %d but the next expected is bet %d", b.Agency, from, a.mark)}
	}
	if _, ended := c.rounds[c.open].ends[b.Agency]; ended && end > a.mark {
		return Action{Reply: "error;ended: the agency already sent END in the open round"}
	}
	if act.Reject != "" {
		a.rejected += max(0, end-a.mark)
		a.mark = max(a.mark, end)
		return Action{Reply: "error;invalid: " + act.Reject}
	}
	for i := a.mark - from; i < int64(b.Count); i++ {
		a.bets = append(a.bets, Stored{Line: b.Lines[i], Round: c.open})
	}
	a.mark = max(a.mark, end)
	if act.Drop {
		return act
	}
	return Action{Reply: wire.AckSuccess}
}

// end records an END and answers the winners once its round is drawn.
func (c *Central) end(nc net.Conn, cn *Conn) {
	c.mu.Lock()
	if cn.Agency == 0 {
		c.mu.Unlock()
		return // closed with no frame, as the central does: a seed client reads any frame as winners
	}
	r := cn.Round
	if r == 0 {
		r = c.open
	}
	rd := c.rounds[r]
	a := c.agency(cn.Agency)
	if r == c.open {
		if _, ok := rd.ends[cn.Agency]; !ok {
			rd.ends[cn.Agency] = a.mark
			a.lastEnd, a.lastMark = r, a.mark
		}
		if len(rd.ends) >= c.opts.Agencies {
			c.closeRoundLocked()
		}
	}
	c.waiting++
	c.mu.Unlock()

	// Until the round is drawn, or the agency leaves.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		nc.Read(b[:])
		close(gone)
	}()
	select {
	case <-rd.drawn:
	case <-gone:
	}
	c.mu.Lock()
	c.waiting--
	var dnis []string
	for _, s := range a.bets {
		if s.Round != r {
			continue
		}
		f := strings.Split(s.Line, ";")
		if n, err := strconv.Atoi(f[4]); err == nil && n == WinningNumber {
			dnis = append(dnis, f[2])
		}
	}
	c.mu.Unlock()
	select {
	case <-gone:
		return
	default:
	}
	var p []byte
	if cn.Hello {
		p = wire.AppendWinnersMessage(nil, wire.Winners{Round: r, Number: WinningNumber, DNIs: dnis})
	} else {
		p = wire.AppendWinners(nil, dnis)
	}
	wire.WriteFrame(nc, p)
}

// parseBatch reads a batch frame with plain string handling.
func parseBatch(conn int, payload []byte) (Batch, error) {
	b := Batch{Conn: conn, From: -1}
	text := string(payload)
	head, body, _ := strings.Cut(text, "\n")
	b.Header = head
	f := strings.Split(head, ";")
	if len(f) < 2 {
		return b, errors.New("header is not <agency>;<n>")
	}
	var err error
	if b.Agency, err = strconv.Atoi(f[0]); err != nil {
		return b, errors.New("agency is not a number")
	}
	if b.Count, err = strconv.Atoi(f[1]); err != nil {
		return b, errors.New("count is not a number")
	}
	for _, kv := range f[2:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "from":
			if b.From, err = strconv.ParseInt(v, 10, 64); err != nil {
				return b, errors.New("from is not a number")
			}
		case "round":
			if b.Round, err = strconv.Atoi(v); err != nil {
				return b, errors.New("round is not a number")
			}
		case "seq":
			if b.Seq, err = strconv.ParseUint(v, 10, 64); err != nil {
				return b, errors.New("seq is not a number")
			}
		}
	}
	body = strings.TrimSuffix(body, "\n")
	if body != "" {
		b.Lines = strings.Split(body, "\n")
	}
	if len(b.Lines) != b.Count {
		return b, fmt.Errorf("header says %d bets, %d lines follow", b.Count, len(b.Lines))
	}
	return b, nil
}
