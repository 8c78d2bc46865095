package observability

import (
	"container/list"
	"context"
	"net"
	"net/http"
	"sync"
)

// evictingListener bounds the connections open at once, as
// netutil.LimitListener did, but at the bound it makes room: it closes the
// oldest connection that is not running a handler (one still sending its
// request's header, or idle between requests) and takes the new one. It
// waits, holding the new connection, only while every connection is
// running a handler. With LimitListener, peers that held the places with
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
	serving int           // handlers running on it, under l.mu
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

// evictOne closes the oldest connection running no handler, with l.mu
// held, and reports whether there was one.
func (l *evictingListener) evictOne() bool {
	for e := l.open.Front(); e != nil; e = e.Next() {
		tc := e.Value.(*trackedConn)
		if tc.serving > 0 {
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

// connKey is the context key of a request's *trackedConn.
type connKey struct{}

// withConn is an http.Server's ConnContext: it puts the connection in its
// requests' context, for markServing.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// markServing counts h's running handlers on their connections, so that
// a connection whose request is being answered is never evicted.
func markServing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, _ := r.Context().Value(connKey{}).(*trackedConn)
		if tc == nil {
			h.ServeHTTP(w, r)
			return
		}
		l := tc.l
		l.mu.Lock()
		tc.serving++
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			tc.serving--
			l.room.Broadcast()
			l.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}
