package central

import (
	"bufio"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loteria/loteria/services/internal/wire"
)

// conn is one agency connection, served by one goroutine that owns its
// buffers: read a frame, act on it (HELLO, batch, END), queue batches for
// the ledger; the ack writer (acks.go) answers them in order.
type conn struct {
	s    *Server
	nc   net.Conn // a *tls.Conn on the TLS listener
	raw  net.Conn // the accepted connection under nc
	tls  bool
	addr string // the peer's IP address, for the per-address cap

	br  *bufio.Reader // nil while idle: an idle connection holds no read buffer
	hdr [wire.HeaderLen]byte

	// Identity: 0 until the connection names its agency (the client
	// certificate, a HELLO, or the first batch on the plaintext listener).
	agency   int
	v1       bool // it spoke HELLO: answers use the session protocol
	round    int  // the round its HELLO asked for (0: the open one)
	replaced atomic.Bool
	stored   prometheus.Counter // loteria_bets_stored_total{agency}
	frames   int
	// nameBy is when a connection that has not named its agency is
	// closed: HANDSHAKE_TIMEOUT after it was accepted, however many
	// frames it sent.
	nameBy time.Time

	// Its place among the server's unnamed connections, under s.mu: nil
	// once it named its agency, or was evicted (set under s.mu too).
	unnamed *list.Element
	evicted atomic.Bool
	// Its place among the server's holders of anonymous charges, the
	// charge it holds there, and whether an eviction handed that charge
	// to another frame (all under s.mu).
	holding      *list.Element
	holdingAnon  int64
	holdingSince time.Time
	handedOver   bool

	acks ackState
	// ended is closed once serve has returned, every ack answered or
	// failed: a newer connection of its agency waits on it (finished).
	ended chan struct{}
}

func newConn(s *Server, nc net.Conn, isTLS bool) *conn {
	c := &conn{s: s, nc: nc, raw: nc, tls: isTLS, nameBy: time.Now().Add(s.cfg.HandshakeTimeout), ended: make(chan struct{})}
	if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		c.addr = host
	}
	if isTLS {
		c.nc = tls.Server(nc, s.cfg.TLS)
	}
	return c
}

// refuse answers a connection the central will not serve and closes it.
func (c *conn) refuse(code, msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if c.tls {
		// No handshake for a refused connection: close it plainly.
		c.nc.Close()
		return
	}
	c.nc.Write(wire.AppendFrame(nil, wire.AppendCodedError(nil, code, msg)))
	c.nc.Close()
}

func (c *conn) serve(ctx context.Context) {
	defer close(c.ended)
	s := c.s
	log := s.log.With("remote", c.nc.RemoteAddr().String())
	log.Debug("connection open", "tls", c.tls)
	var reason string
	var err error
	if c.tls {
		reason, err = c.handshake(ctx)
	}
	if reason == "" {
		reason, err = c.loop(ctx)
	}
	c.nc.Close()
	c.releaseReader()
	if c.evicted.Load() {
		reason, err = closeEvicted, errEvicted
	}
	s.untrack(c)
	s.m.closed.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "agency", c.agency, "frames", c.frames}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	switch reason {
	case closeProtocolError, closeWriteError, closeOutcomeUnknown, closeStoreFailed:
		s.warn.Warn("conn_"+reason, "connection closed", attrs...)
	default:
		log.Debug("connection closed", attrs...)
	}
}

// handshake runs the TLS handshake under the handshake timeout and takes
// the agency id from the verified client certificate.
func (c *conn) handshake(ctx context.Context) (string, error) {
	s := c.s
	tc := c.nc.(*tls.Conn)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if c.evicted.Load() {
			return closeEvicted, errEvicted // not the peer's TLS failing
		}
		reason := s.cfg.HandshakeReason(err)
		s.m.tlsErrors.WithLabelValues(reason).Inc()
		s.warn.Warn("tls_"+reason, "TLS handshake refused", "reason", reason, "remote", c.addr, "err", err)
		tellPlaintextPeer(err)
		return closeHandshake, err
	}
	id, err := s.cfg.AgencyID(tc.ConnectionState())
	if err == nil && (id < 1 || id > s.cfg.Agencies) {
		err = fmt.Errorf("the certificate is for agency %d, not one of the %d agencies (1..%d)", id, s.cfg.Agencies, s.cfg.Agencies)
	}
	if err != nil {
		s.m.tlsErrors.WithLabelValues("bad_identity").Inc()
		s.warn.Warn("tls_bad_identity", "TLS client certificate names no agency of this central", "remote", c.addr, "err", err)
		c.writeError(wire.CodeAgency, err.Error())
		return closeHandshake, err
	}
	older, out := s.claim(c, id)
	if out != claimed { // over TLS only an eviction refuses a claim
		// Evicted between its handshake and its claim: it acts for no
		// agency, not even on records its TLS layer already holds (it
		// once stored a batch that came with the handshake, beside the
		// agency's newer connection).
		return closeEvicted, errEvicted
	}
	c.nameAgency(id)
	if older != nil {
		// The newer, authenticated connection takes over: let the older
		// one finish answering what it has in flight first. A frame of
		// the older that waits for room, in the budget or in its own
		// share, ends now and is not read: that room may be long in
		// coming, and the older takes no more frames.
		s.m.replaced.Inc()
		older.wakeShare(false)
		s.budget.wake()
		select {
		case <-older.finished():
		case <-time.After(replaceWait):
		}
	}
	return "", nil
}

// errEvicted: the connection's place was given to a newer one.
var errEvicted = errors.New("evicted: the central was at its connection limit, or its budget for unnamed connections was spent, and this connection had not named its agency")

// acquire takes n bytes of pool for a frame, waiting until deadline. A
// frame of an unnamed connection that finds the anonymous budget spent
// takes the charges of unnamed connections that have held theirs for
// trickleAfter while their payloads arrive (peers that announce frames and
// trickle them), and those connections are evicted (takeFromHolders):
// they would otherwise keep a seed client's first batch of more than
// 1 KiB waiting, and close it, for as long as they kept coming. While no
// holder is that old it waits for room, and looks again when the next
// holder turns trickleAfter old (at most trickleAfter later).
func (c *conn) acquire(pool *budget, n int64, deadline time.Time) (int64, error) {
	if pool != c.s.anon {
		return pool.acquireUnless(n, deadline, &c.replaced)
	}
	n = min(n, pool.limit)
	for {
		if took, ok := pool.tryAcquire(n); ok {
			return took, nil
		}
		now := time.Now()
		got, next := c.s.takeFromHolders(c, n, now)
		if got > 0 {
			pool.release(got - n)
			return n, nil
		}
		// Wait for room, or until the next holder has held its charge
		// long enough to be taken.
		until := now.Add(trickleAfter)
		if !next.IsZero() && next.Before(until) {
			until = next
		}
		if !deadline.IsZero() && deadline.Before(until) {
			until = deadline
		}
		took, err := pool.acquireUnless(n, until, &c.evicted)
		if err == nil || !errors.Is(err, errBudgetTimeout) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return took, err
		}
	}
}

// nameAgency binds the connection to its agency once it is known.
func (c *conn) nameAgency(id int) {
	c.agency = id
	c.stored = c.s.m.betsStored.WithLabelValues(agencyLabel(id))
}

// finished is closed when the connection has ended, its acks all
// answered; it lets a replaced connection drain. (It was a goroutine
// waiting on the ack WaitGroup while the replaced connection's reader
// could still add to it: a WaitGroup reused before its Wait returned,
// which panicked the central; helper-31.)
func (c *conn) finished() <-chan struct{} { return c.ended }

// loop serves frames until the conversation ends and says why. It reads
// and queues batches while earlier ones are still on their way to disk;
// the ack writer answers them in order as they become durable.
func (c *conn) loop(ctx context.Context) (reason string, err error) {
	s := c.s
	defer func() {
		// Every queued batch is answered (or fails to be) before the
		// connection closes: nothing stored goes unacknowledged for lack
		// of waiting.
		if werr := c.drainAcks(); werr != nil && err == nil {
			reason, err = closeWriteError, werr
		}
		if c.acks.unknown.Load() && reason != closeOutcomeUnknown {
			reason, err = closeOutcomeUnknown, errOutcomeUnknown
		}
	}()
	for {
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		if c.replaced.Load() {
			return closeReplaced, nil
		}
		if err := c.ackFailed(); err != nil {
			return closeWriteError, err
		}
		if c.acks.unknown.Load() {
			return closeOutcomeUnknown, errOutcomeUnknown
		}
		// An anonymous connection has at most one batch waiting for its
		// ack (a refused one: a batch that names a free agency makes it
		// an agency's): its small frames pay no budget, so it must not
		// queue a pipeline of refusals behind acks it does not read.
		if c.agency == 0 && c.frames > 0 {
			if err := c.drainAcks(); err != nil {
				return closeWriteError, err
			}
		}
		// Until a connection has said which agency it is (a TLS
		// certificate, a HELLO or a batch claiming its id), it has the
		// handshake's time from its accept to do so, however many frames
		// it sent, frames of at most a seed client's size, and a share of
		// the budget of its own: a crowd of anonymous peers cannot hold
		// back the agencies (refused frames bought the idle timeout, then
		// the handshake's time each, so a peer that sent one now and then
		// held its place for ever; and 4,096 peers that announced 64 KiB
		// and sent a byte held the whole budget for a minute).
		timeout, maxFrame, pool, wait := s.cfg.IdleTimeout, s.cfg.MaxFrame, s.budget, time.Time{}
		if c.agency == 0 {
			timeout, maxFrame, pool, wait = time.Until(c.nameBy), min(maxFrame, anonMaxFrame), s.anon, c.nameBy
			if timeout <= 0 {
				return closeIdleTimeout, fmt.Errorf("the connection did not name its agency within %s of connecting (HANDSHAKE_TIMEOUT)", s.cfg.HandshakeTimeout)
			}
		}
		size, err := c.readHeader(timeout, maxFrame)
		if err != nil {
			if c.agency == 0 && errors.Is(err, wire.ErrFrameTooLarge) {
				err = fmt.Errorf("%w until the connection says which agency it is: send a HELLO or an empty batch \"<agency>;0\" first", err)
			}
			return c.readFailed(err)
		}
		// The frame pays the budget for all it may hold before its buffer
		// is taken, so a crowd of peers announcing large frames waits
		// instead of exhausting memory, and nothing waits for the budget
		// after this.
		var ch charge
		// An anonymous peer's small frame (a HELLO, a short seed batch)
		// pays nothing, so an agency can always say who it is, whatever a
		// crowd of anonymous peers holds: like the read buffer, it is
		// bounded by the connection cap, since such a connection has one
		// frame and at most one batch waiting for its ack at a time.
		if c.agency != 0 || size > anonFreeFrame {
			if c.agency != 0 {
				if err := c.waitShare(frameCharge(size)); err != nil {
					if errors.Is(err, errBudgetClosed) {
						return closeShutdown, nil
					}
					if errors.Is(err, errBudgetStopped) {
						return closeReplaced, nil
					}
					return closeWriteError, err
				}
			}
			took, err := c.acquire(pool, frameCharge(size), wait)
			if err != nil {
				if errors.Is(err, errBudgetClosed) {
					return closeShutdown, nil
				}
				if errors.Is(err, errBudgetStopped) {
					if c.replaced.Load() {
						return closeReplaced, nil
					}
					return closeEvicted, errEvicted
				}
				return closeIdleTimeout, fmt.Errorf("no room to read a first frame within %s (the in-flight budget for connections that have not named their agency is spent)", s.cfg.HandshakeTimeout)
			}
			ch = charge{pool: pool, left: took, conn: c}
			c.hold(pool, took)
			if c.replaced.Load() {
				// Replaced while its frame waited for room: the frame
				// is not read, though its payload may already be in
				// (crypto/tls decrypts a record whole). The newer
				// connection sends it again if it must.
				ch.refund()
				return closeReplaced, nil
			}
		}
		// Once its header is in (and its charge paid, which may have
		// waited), a frame's payload has the handshake's time to arrive,
		// not the idle timeout: a peer that announces a frame and
		// trickles it holds its charge only that long.
		if c.br.Buffered() < size {
			by := time.Now().Add(s.cfg.HandshakeTimeout)
			if c.agency == 0 {
				by = c.nameBy
			}
			c.setReadDeadline(by)
		}
		buf := s.pools.getBuf(size)
		if ch.pool == s.anon {
			s.holdAnon(c, ch.left)
		}
		payload, err := wire.ReadPayload(c.br, *buf, size)
		if ch.pool == s.anon && s.dropAnon(c) {
			// Evicted while its payload arrived: the charge is another
			// frame's now, so it is neither used nor given back.
			s.pools.putBuf(buf)
			return closeEvicted, errEvicted
		}
		if err != nil {
			s.pools.putBuf(buf)
			ch.refund()
			if errors.Is(err, os.ErrDeadlineExceeded) && !s.shuttingDown() && !c.replaced.Load() && !c.acks.unknown.Load() {
				return closeIdleTimeout, fmt.Errorf("a frame of %d bytes announced did not arrive within %s", size, s.cfg.HandshakeTimeout)
			}
			return c.readFailed(err)
		}
		c.frames++
		switch {
		case wire.IsEnd(payload):
			s.pools.putBuf(buf)
			ch.refund()
			if err := c.drainAcks(); err != nil {
				return closeWriteError, err
			}
			if c.acks.unknown.Load() {
				return closeOutcomeUnknown, errOutcomeUnknown
			}
			return c.end(ctx)
		case wire.IsHello(payload):
			reason, err := c.hello(ctx, payload)
			s.pools.putBuf(buf)
			ch.refund()
			if reason != "" {
				return reason, err
			}
		default:
			pb, closeAfter := c.batch(ctx, payload, &ch)
			s.pools.putBuf(buf)
			pb.pool, pb.charge = ch.pool, ch.spend(queueCharge)
			ch.refund()
			c.pushAck(pb)
			if closeAfter != "" {
				return closeAfter, nil
			}
		}
	}
}

// readHeader reads the next frame header. When nothing is buffered the
// connection is idle: it returns its read buffer to the pool and waits
// for the 8 header bytes with none, taking a buffer again for what
// follows.
func (c *conn) readHeader(timeout time.Duration, maxFrame int) (int, error) {
	c.setReadDeadline(time.Now().Add(timeout))
	if c.br != nil && c.br.Buffered() > 0 {
		return wire.ReadHeader(c.br, maxFrame)
	}
	c.releaseReader()
	n, err := io.ReadFull(c.nc, c.hdr[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return 0, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, fmt.Errorf("%w: %d of %d header bytes", wire.ErrTruncatedFrame, n, wire.HeaderLen)
	case err != nil:
		return 0, err
	}
	size, err := wire.ParseHeader(c.hdr[:])
	if err != nil {
		return 0, err
	}
	if size > maxFrame {
		return 0, fmt.Errorf("%w: %d bytes declared, at most %d accepted", wire.ErrFrameTooLarge, size, maxFrame)
	}
	c.br = c.s.pools.getReader(c.nc)
	return size, nil
}

// setReadDeadline sets the reader's own deadline. Whoever must wake the
// reader (the shutdown, a newer connection replacing this one, a failed
// ack write, an outcome the store cannot tell) sets its flag and then a
// read deadline of now; when that deadline lands between the reader's look
// at the flags and this call, this one overwrote it and the reader slept
// in a read for IdleTimeout: a shutdown waited out its whole bound for an
// idle connection, and a replaced TLS connection went on being served
// while its newer one waited replaceWait (helper-33). So the flags are
// looked at again once the deadline is set.
func (c *conn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	if c.mustStop() {
		c.nc.SetReadDeadline(time.Now())
	}
}

// mustStop reports whether something asked the reader to end.
func (c *conn) mustStop() bool {
	return c.s.shuttingDown() || c.replaced.Load() || c.acks.unknown.Load() || c.ackFailed() != nil
}

func (c *conn) releaseReader() {
	if c.br != nil {
		c.s.pools.putReader(c.br)
		c.br = nil
	}
}

func (c *conn) readFailed(err error) (string, error) {
	s := c.s
	var reason string
	switch {
	case errors.Is(err, io.EOF):
		return closePeerClosed, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.acks.unknown.Load() {
			return closeOutcomeUnknown, errOutcomeUnknown
		}
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		if c.replaced.Load() {
			return closeReplaced, nil
		}
		if c.frames == 0 {
			return closeIdleTimeout, fmt.Errorf("no first frame within %s", s.cfg.HandshakeTimeout)
		}
		if c.agency == 0 {
			return closeIdleTimeout, fmt.Errorf("the connection did not name its agency within %s of connecting (HANDSHAKE_TIMEOUT)", s.cfg.HandshakeTimeout)
		}
		return closeIdleTimeout, fmt.Errorf("no frame for %s", s.cfg.IdleTimeout)
	case errors.Is(err, wire.ErrBadHeader):
		reason = protoBadHeader
	case errors.Is(err, wire.ErrFrameTooLarge):
		reason = protoFrameTooLarge
	case errors.Is(err, wire.ErrTruncatedFrame):
		reason = protoTruncated
	default:
		if s.shuttingDown() {
			return closeShutdown, nil
		}
		return closePeerClosed, err
	}
	s.m.protoErrors.WithLabelValues(reason).Inc()
	// Tell the peer why before closing, when the socket still takes it,
	// after the acks of the batches before (one writer at a time).
	c.drainAcks()
	c.writeError(wire.CodeProtocol, err.Error())
	return closeProtocolError, err
}

// writeError writes one error frame outside the ack stream (the ack
// writer must be idle), under a short deadline.
func (c *conn) writeError(code, msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(wire.AppendFrame(nil, wire.AppendCodedError(nil, code, msg)))
}

// tellPlaintextPeer answers a peer that sent a plaintext frame to the TLS
// port with a plaintext error frame that says so, as net/http answers
// HTTP sent to an HTTPS port, instead of closing with nothing: an agency
// pointed at the wrong port retried for its whole retry budget and ended
// with "central closed the connection" (helper-35). Only when the
// record's first five bytes are digits, as a frame header's are, and
// crypto/tls has written nothing (it then hands back the connection).
func tellPlaintextPeer(err error) {
	rhe, ok := errors.AsType[tls.RecordHeaderError](err)
	if !ok || rhe.Conn == nil {
		return
	}
	for _, b := range rhe.RecordHeader {
		if b < '0' || b > '9' {
			return
		}
	}
	rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	rhe.Conn.Write(wire.AppendFrame(nil, wire.AppendCodedError(nil, wire.CodeTLS,
		"this address speaks TLS: give the agency its certificate (--tls-cert, --tls-key, --tls-ca), or use the central's plaintext port")))
}

// writeFrame writes one frame outside the ack stream.
func (c *conn) writeFrame(payload []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	return wire.WriteFull(c.nc, wire.AppendFrame(make([]byte, 0, wire.HeaderLen+len(payload)), payload))
}

// wire429 is the refusal of a connection the central has no room for.
func wire429(reason string) (string, string) {
	switch reason {
	case rejectShutdown:
		return wire.CodeShuttingDown, "central is shutting down, try again later"
	case rejectPerAddress:
		return wire.CodeBusy, "too many connections from this address, try again later"
	}
	return wire.CodeBusy, "central at its connection limit, try again later"
}

// pools keep idle connections cheap: a connection holds a read buffer,
// payload or rows only while a frame is in hand.
type pools struct {
	pending sync.Pool
	readers sync.Pool
	queues  sync.Pool // ack queues (chan *pendingBatch), empty, of MaxPipeline slots
	bufs    [len(bufClasses)]sync.Pool
}

// newPools makes the server's pools; pipeline is the slots of an ack queue.
func newPools(pipeline int) *pools {
	p := &pools{}
	p.pending.New = func() any { return new(pendingBatch) }
	p.queues.New = func() any { return make(chan *pendingBatch, pipeline) }
	return p
}

func (p *pools) getReader(r io.Reader) *bufio.Reader {
	if br, ok := p.readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufferSize)
}

func (p *pools) putReader(br *bufio.Reader) {
	br.Reset(nil)
	p.readers.Put(br)
}

// getBuf returns an empty buffer with room for at least n bytes.
func (p *pools) getBuf(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			if b, ok := p.bufs[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, 0, c)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

func (p *pools) putBuf(b *[]byte) {
	c := cap(*b)
	for i := len(bufClasses) - 1; i >= 0; i-- {
		if c >= bufClasses[i] {
			if c <= pooledCap {
				*b = (*b)[:0]
				p.bufs[i].Put(b)
			}
			return
		}
	}
}

var errOutcomeUnknown = errors.New("the store failed and could not tell whether a batch was stored: no ack sent")

func itoa(n int) string { return strconv.Itoa(n) }
