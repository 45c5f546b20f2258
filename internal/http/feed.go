package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ironflow/ironflow/internal/engine"
)

// Defaults of the waiting routes (Config).
const (
	defaultMaxWait         = 60 * time.Second
	defaultMaxStreams      = 8
	defaultStreamHeartbeat = 15 * time.Second
	// writeSlack is added to a waiting response's write deadline: time to read and
	// write once the wait is over.
	writeSlack = 15 * time.Second
	// streamPage is how many events a stream reads per query.
	streamPage = 500
	// heldBackDelay is how soon a reader whose page was held back reads again, should
	// the Hub not wake it first.
	heldBackDelay = 50 * time.Millisecond
)

// waitQuery reads ?wait=, a Go duration ("30s") or whole seconds ("30"), clamped to
// the server's maximum. 0 when absent.
func (s *Server) waitQuery(r *http.Request) (time.Duration, error) {
	v, err := textQuery(r, "wait")
	if err != nil || v == "" {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("%w: wait must be a duration like 30s", errMalformed)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: wait must not be negative", errMalformed)
	}
	return min(d, s.maxWait), nil
}

// waiter is one waiting request: it ends at its deadline, when the client goes away or
// when the server shuts down.
type waiter struct {
	s        *Server
	ctx      context.Context
	deadline *time.Timer
}

// newWaiter starts waiting up to d; the response's write deadline moves past it.
// Call stop when done.
func (s *Server) newWaiter(w http.ResponseWriter, r *http.Request, d time.Duration) *waiter {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + writeSlack))
	return &waiter{s: s, ctx: r.Context(), deadline: time.NewTimer(d)}
}

func (wt *waiter) stop() { wt.deadline.Stop() }

// wait blocks until ch is closed or, when heldBack, a short while has passed (true), or
// the wait is over (false).
func (wt *waiter) wait(ch <-chan struct{}, heldBack bool) bool {
	var again <-chan time.Time
	if heldBack {
		again = time.After(heldBackDelay)
	}
	select {
	case <-again:
		return true
	case <-ch:
		return wt.ctx.Err() == nil && !wt.s.feed.Stopped()
	case <-wt.deadline.C:
	case <-wt.ctx.Done():
	case <-wt.s.closing:
	}
	return false
}

// canWait reports whether waiting is possible: a Hub follows the feed and the server
// is not shutting down.
func (s *Server) canWait() bool {
	if s.feed == nil || s.feed.Stopped() {
		return false
	}
	select {
	case <-s.closing:
		return false
	default:
		return true
	}
}

// handleListFeed pages the global event feed, waiting for events when asked.
//
//	@ID			listFeed
//	@Summary		Read every event of every instance
//	@Description	The events of every instance in commit order, each with its cursor, workflow_type and workflow_id. A reader that follows next_cursor never misses an event and never reads one twice, whatever the commit order of concurrent transactions (docs/decisions/0015-event-feed.md). next_cursor is always present: at the end of the feed it is where the next events will be. With wait, an empty answer is held until events arrive or the wait is over (capped by IRONFLOW_MAX_WAIT); a waiting request holds no database connection.
//	@Tags			events
//	@Produce		json
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			after			query		string	false	"a cursor (of an item, or next_cursor): only events after it; absent: from the beginning; now: from the current end"
//	@Param			cursor			query		string	false	"the same as after, as on every list"
//	@Param			limit			query		int		false	"page size (default 50)"	minimum(1)	maximum(500)
//	@Param			workflow_type	query		string	false	"only events of instances of this type"
//	@Param			wait			query		string	false	"when no event follows the cursor, wait up to this long for one (Go duration or seconds, e.g. 30s)"
//	@Success		200				{object}	engine.FeedPage
//	@Failure		400				{object}	Problem	"bad cursor, limit or wait"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"over the per-key rate limit (IRONFLOW_RATE_LIMIT); see Retry-After"
//	@Failure		503				{object}	Problem	"database unavailable"
//	@Router			/v1/events [get]
func (s *Server) handleListFeed(w http.ResponseWriter, r *http.Request) error {
	after, typ, err := feedParams(r)
	if err != nil {
		return err
	}
	limit, err := intQuery(r, "limit", 1, engine.MaxPageSize)
	if err != nil {
		return err
	}
	wait, err := s.waitQuery(r)
	if err != nil {
		return err
	}
	var wt *waiter
	for {
		var changed <-chan struct{}
		if wait > 0 && s.canWait() {
			changed = s.feed.Changed() // before the read: nothing committed after it is missed
		}
		page, err := s.engine.ReadFeed(r.Context(), after, typ, int(limit))
		if err != nil {
			return err
		}
		if len(page.Items) > 0 || changed == nil {
			return writeJSON(w, http.StatusOK, page)
		}
		after = page.NextCursor
		if wt == nil {
			wt = s.newWaiter(w, r, wait)
			defer wt.stop()
		}
		if !wt.wait(changed, page.HeldBack) {
			return writeJSON(w, http.StatusOK, page)
		}
	}
}

// feedParams reads after (or cursor, its other name, as on every list) and
// workflow_type.
func feedParams(r *http.Request) (after, typ string, err error) {
	if after, err = textQuery(r, "after"); err != nil {
		return "", "", err
	}
	cursor, err := textQuery(r, "cursor")
	if err != nil {
		return "", "", err
	}
	switch {
	case cursor != "" && r.URL.Query().Has("after") && after != cursor:
		return "", "", fmt.Errorf("%w: after and cursor disagree; send one of them", errMalformed)
	case cursor != "":
		after = cursor
	}
	if typ, err = textQuery(r, "workflow_type"); err != nil {
		return "", "", err
	}
	return after, typ, nil
}

// handleStreamFeed sends the global event feed as Server-Sent Events.
//
//	@ID			streamFeed
//	@Summary		Follow every event as Server-Sent Events
//	@Description	The feed of GET /v1/events as text/event-stream: one "event" message per event, its id the event's cursor and its data the feed item (JSON). A reconnecting client sends Last-Event-ID (EventSource does) and resumes exactly after that event, from this or any other server of the same database. Comment lines (": ping") every 15 s keep idle connections open. Woken by the database's notifications, not by polling. Each API key (or client address) may hold IRONFLOW_MAX_STREAMS streams at once.
//	@Tags			events
//	@Produce		text/event-stream
//	@Produce		application/problem+json
//	@Security		BearerAuth
//	@Param			after			query		string	false	"start after this cursor; absent: from the beginning; now: from the current end"
//	@Param			workflow_type	query		string	false	"only events of instances of this type"
//	@Param			Last-Event-ID	header		string	false	"resume after this cursor (wins over after)"
//	@Success		200				{string}	string	"id: <cursor>\nevent: event\ndata: <feed item JSON>"
//	@Failure		400				{object}	Problem	"bad cursor"
//	@Failure		401				{object}	Problem	"missing or wrong API key"
//	@Failure		429				{object}	Problem	"too many streams open for this API key or address, or over the rate limit"
//	@Failure		503				{object}	Problem	"database unavailable, or the server is shutting down"
//	@Router			/v1/events/stream [get]
func (s *Server) handleStreamFeed(w http.ResponseWriter, r *http.Request) error {
	after, typ, err := feedParams(r)
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after = id
	}
	if !s.canWait() {
		return fmt.Errorf("%w: live updates are not available (the server is stopping)", errNotReady)
	}
	release, err := s.acquireStream(r)
	if err != nil {
		return err
	}
	defer release()
	// The first read answers a bad cursor or an unavailable database as a problem.
	changed := s.feed.Changed()
	page, err := s.engine.ReadFeed(r.Context(), after, typ, streamPage)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The headers go out now, so the client knows the stream is open before any event.
	if !s.streamWrite(w, rc, "") {
		return nil
	}
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	var buf strings.Builder
	for {
		buf.Reset()
		if err := writeEvents(&buf, page.Items); err != nil {
			return nil // nothing more can be sent as a problem
		}
		if buf.Len() > 0 {
			if !s.streamWrite(w, rc, buf.String()) {
				return nil
			}
		}
		after = page.NextCursor
		if len(page.Items) < streamPage && !page.Cut {
			// Caught up: wait for the next events, pinging meanwhile.
			var again <-chan time.Time
			if page.HeldBack {
				again = time.After(heldBackDelay)
			}
			for waiting := true; waiting; {
				select {
				case <-changed:
					waiting = false
				case <-again:
					waiting = false
				case <-heartbeat.C:
					if !s.streamWrite(w, rc, ": ping\n\n") {
						return nil
					}
				case <-r.Context().Done():
					return nil
				case <-s.closing:
					return nil
				}
			}
			if !s.canWait() {
				return nil
			}
			changed = s.feed.Changed()
		}
		if page, err = s.engine.ReadFeed(r.Context(), after, typ, streamPage); err != nil {
			// The client reconnects with its Last-Event-ID and misses nothing.
			s.log.Warn("event stream: read failed; closing the stream", "error", err)
			return nil
		}
	}
}

// writeEvents appends one SSE message per item.
func writeEvents(b *strings.Builder, items []engine.FeedEventView) error {
	for _, it := range items {
		data, err := json.Marshal(it)
		if err != nil {
			return err
		}
		b.WriteString("id: ")
		b.WriteString(it.Cursor)
		b.WriteString("\nevent: event\ndata: ")
		b.Write(data) // JSON has no raw newline
		b.WriteString("\n\n")
	}
	return nil
}

// streamWrite writes and flushes msg within a fresh write deadline; false when the
// client is gone.
func (s *Server) streamWrite(w http.ResponseWriter, rc *http.ResponseController, msg string) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(s.heartbeat + writeSlack))
	if _, err := w.Write([]byte(msg)); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// streamCounter bounds the streams open per API key (or client address).
type streamCounter struct {
	mu   sync.Mutex
	open map[string]int
}

// acquireStream counts a stream against the request's key; errRateLimited beyond the
// maximum. release gives the slot back.
func (s *Server) acquireStream(r *http.Request) (release func(), err error) {
	key, err := s.rateKey(r)
	if err != nil {
		return nil, err
	}
	c := &s.streams
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= s.maxStreams {
		return nil, fmt.Errorf("%w: %d event streams are already open for this API key (or address); close one first (IRONFLOW_MAX_STREAMS)",
			errRateLimited, s.maxStreams)
	}
	c.open[key]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.open[key]--; c.open[key] == 0 {
			delete(c.open, key)
		}
	}, nil
}

// CloseStreams ends every event stream and long-poll (each answers what it has):
// http.Server.Shutdown waits for open requests, and these would otherwise last. Call
// it from RegisterOnShutdown; it is safe to call more than once.
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// etagSet is the versions an If-None-Match header names; any is "*".
type etagSet struct {
	any      bool
	versions []int64
}

func (e *etagSet) matches(version int64) bool {
	if e.any {
		return version > 0
	}
	for _, v := range e.versions {
		if v == version {
			return true
		}
	}
	return false
}

// ifNoneMatch reads If-None-Match: "*" or a list of "<version>" (weak ones too, as
// the version is the same either way). nil when absent.
func ifNoneMatch(values []string) (*etagSet, error) {
	if len(values) == 0 {
		return nil, nil
	}
	set := &etagSet{}
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" {
				set.any = true
				continue
			}
			n, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
			if err != nil || len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' || n < 0 {
				return nil, fmt.Errorf("%w: If-None-Match must be \"*\" or quoted versions like \"3\"", errMalformed)
			}
			set.versions = append(set.versions, n)
		}
	}
	return set, nil
}
