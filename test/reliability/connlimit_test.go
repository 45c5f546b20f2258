package reliability

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawConn is a keep-alive connection from a chosen local address that sends one
// request and then holds the connection open, as an idle client does.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

// dialFrom connects to addr from the loopback address from (127.0.0.x) and sends
// GET /healthz without an API key, returning the status (0: the server closed the
// connection without an answer).
func dialFrom(t *testing.T, from, addr string) (*rawConn, int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	rc := &rawConn{c: c, br: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: ironflow\r\n\r\n")); err != nil {
		return rc, 0
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return rc, 0
	}
	_ = resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return rc, resp.StatusCode
}

// closedByServer reports whether the server has closed the connection.
func (rc *rawConn) closedByServer() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := rc.br.Peek(1)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// aliveCount counts the connections the server has not closed, all at once.
func aliveCount(conns []*rawConn) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	alive := 0
	for _, rc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !rc.closedByServer() {
				mu.Lock()
				alive++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return alive
}

// TestConnectionLimits: one client address holding many idle keep-alive connections
// gets 503 beyond IRONFLOW_MAX_CONNS_PER_CLIENT; several addresses together beyond
// IRONFLOW_MAX_CONNS make the server close the longest idle connections instead of
// refusing newcomers; IRONFLOW_IDLE_TIMEOUT closes an idle connection; and another
// client's writes stay fast while the connections are held.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	const perClient, global = 40, 120
	srv := startServer(t, newDatabaseURL(t, "sqlite"), map[string]string{
		"IRONFLOW_MAX_CONNS":            itoa(global),
		"IRONFLOW_MAX_CONNS_PER_CLIENT": itoa(perClient),
		"IRONFLOW_IDLE_TIMEOUT":         "3s",
	})
	b := newBystander(t, srv)

	var held []*rawConn
	closeAll := func() {
		for _, rc := range held {
			_ = rc.c.Close()
		}
		held = nil
	}
	defer closeAll()
	requireBystanderFast(t, b, func() func() {
		// One address: the first perClient connections are served, the rest refused.
		statuses := map[int]int{}
		for range perClient + 20 {
			rc, status := dialFrom(t, "127.0.0.2", srv.Addr)
			statuses[status]++
			held = append(held, rc)
		}
		require.Equal(t, map[int]int{200: perClient, 503: 20}, statuses, "one address beyond its share")
		// Four more addresses: 160 more connections against a global bound of 120; the
		// longest idle make room, so every newcomer is served.
		for _, from := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
			for range perClient {
				rc, status := dialFrom(t, from, srv.Addr)
				require.Equal(t, http.StatusOK, status, "from %s", from)
				held = append(held, rc)
			}
		}
		return closeAll
	})

	// The same again, counting what the server closed.
	var open []*rawConn
	for _, from := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		for range perClient {
			rc, status := dialFrom(t, from, srv.Addr)
			require.Equal(t, http.StatusOK, status)
			open = append(open, rc)
		}
	}
	alive := aliveCount(open)
	require.LessOrEqual(t, alive, global, "at most IRONFLOW_MAX_CONNS stay open")
	require.GreaterOrEqual(t, alive, global-10, "the server keeps the newest open")
	waitFor(t, 10*time.Second, "the idle timeout to close every idle connection", func() bool {
		return aliveCount(open) == 0
	})
	for _, rc := range open {
		_ = rc.c.Close()
	}
	_, panics := srv.logCounts()
	require.Zero(t, panics)
}
