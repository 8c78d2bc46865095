package observability

import (
	"container/list"
	"net"
	"net/http"
	"sync"
)

// evictingListener bounds the connections open at once, as
// netutil.LimitListener did, but at the bound it makes room: it closes the
// oldest connection that is not being answered (one still sending its
// request's header, or idle between requests) and takes the new one. It
// waits, holding the new connection, only while every connection is
// being answered. With LimitListener, peers that held the places with
// half a request header each made every other request wait for
// httpReadHeaderTimeout, round after round: 200 such connections delayed
// a /healthz by 29.5 s (helper-27's attacker run), long enough for a
// container's health check to restart a healthy central.
type evictingListener struct {
	net.Listener
	max int

	mu     sync.Mutex
	room   *sync.Cond
	open   list.List // *trackedConn, oldest first
	closed bool
}

func newEvictingListener(ln net.Listener, max int) *evictingListener {
	l := &evictingListener{Listener: ln, max: max}
	l.room = sync.NewCond(&l.mu)
	return l
}

// trackedConn is a connection of an evictingListener.
type trackedConn struct {
	net.Conn
	l       *evictingListener
	elem    *list.Element // its place in l.open, under l.mu; nil once out of it
	serving bool          // its request is being answered, under l.mu
	once    sync.Once
}

// Accept waits for a connection and makes room for it.
func (l *evictingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.open.Len() >= l.max && !l.closed && !l.evictOne() {
		l.room.Wait()
	}
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	tc.elem = l.open.PushBack(tc)
	return tc, nil
}

// evictOne closes the oldest connection not being answered, with l.mu
// held, and reports whether there was one.
func (l *evictingListener) evictOne() bool {
	for e := l.open.Front(); e != nil; e = e.Next() {
		tc := e.Value.(*trackedConn)
		if tc.serving {
			continue
		}
		l.open.Remove(e)
		tc.elem = nil
		// Its reader fails at once; the server then closes tc, which
		// finds it out of the list already.
		tc.Conn.Close()
		return true
	}
	return false
}

// Close stops the listener and ends an Accept waiting for room.
func (l *evictingListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.room.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// Close closes the connection and gives its place back.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		if c.elem != nil {
			l.open.Remove(c.elem)
			c.elem = nil
		}
		l.room.Broadcast()
		l.mu.Unlock()
	})
	return c.Conn.Close()
}

// connState is an http.Server's ConnState hook: a connection is being
// answered from the moment its request's header has been read
// (StateActive) until its response is written (any later state), and
// such a connection is never evicted. (Counted around the handler
// instead, a connection whose handler had returned could be evicted
// before net/http wrote the end of its response.)
func connState(c net.Conn, st http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l := tc.l
	l.mu.Lock()
	defer l.mu.Unlock()
	serving := st == http.StateActive
	if tc.serving == serving {
		return
	}
	tc.serving = serving
	if !serving {
		l.room.Broadcast()
	}
}
