package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// rawClient is the load generator's HTTP/1.1 client for the one request it sends by the
// thousand: a POST with a small JSON body on a kept-alive connection. It writes the
// request in one system call and parses only the status line, Content-Length or chunked
// framing, and Connection: close. net/http's client spends two goroutines and several
// hand-offs on every request; on a 2-core machine that CPU is taken from the server
// under test, which the SQL ceiling's client does not pay (docs/BENCHMARKS.md, "CPU per
// input"). Every other request of the benchmark still goes through net/http.
type rawClient struct {
	addr    string
	timeout time.Duration

	mu   sync.Mutex
	idle []*rawConn
}

type rawConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte // the request being written
}

func newRawClient(addr string, timeout time.Duration) *rawClient {
	return &rawClient{addr: addr, timeout: timeout}
}

// post sends body to path and returns the response's status and body.
func (c *rawClient) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	rc, err := c.conn(ctx)
	if err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = rc.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = rc.c.SetDeadline(time.Now()) })
	status, resp, keep, err := rc.roundTrip(c.addr, path, body)
	if !stop() {
		err = errors.Join(err, ctx.Err())
		keep = false
	}
	if err != nil || !keep {
		_ = rc.c.Close()
		return status, resp, err
	}
	c.mu.Lock()
	c.idle = append(c.idle, rc)
	c.mu.Unlock()
	return status, resp, nil
}

func (c *rawClient) conn(ctx context.Context) (*rawConn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rc, nil
	}
	c.mu.Unlock()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: conn, r: bufio.NewReaderSize(conn, 4096)}, nil
}

// close closes the idle connections.
func (c *rawClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.idle {
		_ = rc.c.Close()
	}
	c.idle = nil
}

// roundTrip writes one request and reads its response; keep says whether the
// connection may carry the next one.
func (rc *rawConn) roundTrip(host, path string, body []byte) (status int, resp []byte, keep bool, err error) {
	b := rc.buf[:0]
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	rc.buf = b
	if _, err := rc.c.Write(b); err != nil {
		return 0, nil, false, err
	}
	line, err := rc.line()
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("raw http: bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, false, fmt.Errorf("raw http: bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		h, err := rc.line()
		if err != nil {
			return status, nil, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, nil, false, fmt.Errorf("raw http: bad header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return status, nil, false, fmt.Errorf("raw http: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		resp, err = rc.chunks()
	case length >= 0:
		resp = make([]byte, length)
		_, err = io.ReadFull(rc.r, resp)
	default: // the body runs to the end of the connection
		resp, err = io.ReadAll(rc.r)
		keep = false
	}
	return status, resp, keep && err == nil, err
}

// line reads one header line without its CRLF; the slice is valid until the next read.
func (rc *rawConn) line() ([]byte, error) {
	l, err := rc.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func (rc *rawConn) chunks() ([]byte, error) {
	var out []byte
	for {
		l, err := rc.line()
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(l, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("raw http: bad chunk size %q", l)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				if l, err = rc.line(); err != nil || len(l) == 0 {
					return out, err
				}
			}
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(rc.r, out[start:]); err != nil {
			return nil, err
		}
		if l, err = rc.line(); err != nil || len(l) != 0 {
			return nil, errors.Join(err, fmt.Errorf("raw http: no CRLF after a chunk"))
		}
	}
}
