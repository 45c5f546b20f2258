package http

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ConnLimiter bounds a server's open connections, in all and per client IP
// address, so that a client holding thousands of idle keep-alive connections
// cannot leave none for anyone else. A connection over its address's bound is
// answered 503 and closed at once. At the global bound the connection idle the
// longest is closed to make room (an idle keep-alive connection costs its client
// nothing to reopen); when none is idle, the new one is answered 503 and closed.
// Use Listener on the server's listener and ConnState as the http.Server's
// ConnState hook.
type ConnLimiter struct {
	max, perClient int

	mu     sync.Mutex
	open   int
	byAddr map[string]int
	idle   map[*limitedConn]time.Time // since when each idle connection waits
}

// NewConnLimiter returns a limiter of max connections in all and perClient per
// client IP address.
func NewConnLimiter(max, perClient int) *ConnLimiter {
	return &ConnLimiter{max: max, perClient: perClient, byAddr: map[string]int{}, idle: map[*limitedConn]time.Time{}}
}

// Listener wraps ln so that every accepted connection counts against the limits.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l}
}

// ConnState tracks which connections are idle between requests; set it as the
// http.Server's ConnState.
func (l *ConnLimiter) ConnState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.closed {
		return
	}
	if s == http.StateIdle {
		l.idle[lc] = time.Now()
	} else {
		delete(l.idle, lc)
	}
}

// admit counts a new connection, closing an idle one to make room at the global
// bound. It reports false when the connection must be refused.
func (l *ConnLimiter) admit(lc *limitedConn) bool {
	l.mu.Lock()
	if l.byAddr[lc.addr] >= l.perClient {
		l.mu.Unlock()
		return false
	}
	var evict *limitedConn
	if l.open >= l.max {
		var since time.Time
		for c, t := range l.idle {
			if evict == nil || t.Before(since) {
				evict, since = c, t
			}
		}
		if evict == nil {
			l.mu.Unlock()
			return false
		}
		l.releaseLocked(evict)
	}
	l.open++
	l.byAddr[lc.addr]++
	l.mu.Unlock()
	if evict != nil {
		_ = evict.Conn.Close()
	}
	return true
}

// releaseLocked uncounts c once; l.mu is held.
func (l *ConnLimiter) releaseLocked(c *limitedConn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.idle, c)
	l.open--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
		delete(l.byAddr, c.addr)
	}
}

type limitedListener struct {
	net.Listener
	l *ConnLimiter
}

// refusal is what a refused connection reads before it is closed.
var refusal = func() []byte {
	body := `{"type":"too_many_connections","title":"Too many connections","status":503,"detail":"too many open connections; close idle ones or retry later"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Accept returns the next connection within the limits; refused ones are answered
// and closed without reaching the server.
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
		lc := &limitedConn{Conn: c, l: ll.l, addr: addr}
		if !ll.l.admit(lc) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(refusal)
			_ = c.Close()
			continue
		}
		return lc, nil
	}
}

// limitedConn uncounts itself when it closes, whoever closes it.
type limitedConn struct {
	net.Conn
	l      *ConnLimiter
	addr   string
	closed bool // guarded by l.mu
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
