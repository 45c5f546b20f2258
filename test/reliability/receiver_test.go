package reliability

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// receiverMode is what the receiver does with one delivery.
type receiverMode int

const (
	modeOK        receiverMode = iota // 200 with the routed ack input
	modeUnavail                       // 503
	modeHang                          // answers nothing until after the webhook timeout
	modeReset                         // closes the connection without an answer (TCP RST)
	modeRetryLate                     // 429 with Retry-After
)

// delivery is one webhook request as the receiver saw it.
type delivery struct {
	EffectID string
	Attempt  int
	At       time.Time
	Mode     receiverMode
}

// receiver is a local webhook endpoint that logs every delivery by webhook-id and, when
// it answers 200, routes an "ack" input back into the instance.
type receiver struct {
	srv *httptest.Server
	URL string

	mu         sync.Mutex
	deliveries []delivery
	delay      time.Duration
	// choose picks the mode of a delivery; always modeOK when nil.
	choose     func(effectID string, attempt int) receiverMode
	hang       time.Duration
	retryAfter int // seconds, for modeRetryLate
	closing    chan struct{}
	// held holds every delivery (those hold picks, when set), once logged, while
	// paused.
	held pausable
	hold func(body []byte) bool
	// answer, when set, makes the body of a modeOK answer from the delivery's body
	// (the routed ack otherwise).
	answer func(body []byte) string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{hang: 10 * time.Second, retryAfter: 1, closing: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hook"
	t.Cleanup(func() {
		close(r.closing)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var msg struct {
		Data struct {
			EffectID string `json:"effect_id"`
			Attempt  int    `json:"attempt"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	mode := modeOK
	if r.choose != nil {
		mode = r.choose(id, msg.Data.Attempt)
	}
	delay, answer, hold := r.delay, r.answer, r.hold
	r.deliveries = append(r.deliveries, delivery{EffectID: id, Attempt: msg.Data.Attempt, At: time.Now(), Mode: mode})
	r.mu.Unlock()
	if hold == nil || hold(body) {
		r.held.wait(req.Context())
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	switch mode {
	case modeUnavail:
		http.Error(w, "try later", http.StatusServiceUnavailable)
	case modeHang:
		select {
		case <-time.After(r.hang):
		case <-req.Context().Done():
		case <-r.closing:
		}
		http.Error(w, "too late", http.StatusServiceUnavailable)
	case modeReset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		_ = conn.Close()
	case modeRetryLate:
		w.Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
		http.Error(w, "slow down", http.StatusTooManyRequests)
	default:
		w.Header().Set("Content-Type", "application/json")
		if answer != nil {
			_, _ = w.Write([]byte(answer(body)))
			return
		}
		_, _ = w.Write([]byte(`{"input":{"type":"ack","data":{}}}`))
	}
}

// seen returns how many times each effect id was delivered.
func (r *receiver) seen() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, d := range r.deliveries {
		out[d.EffectID]++
	}
	return out
}

// log returns every delivery in arrival order.
func (r *receiver) log() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

// byEffect groups the deliveries by effect id, each in arrival order.
func (r *receiver) byEffect() map[string][]delivery {
	out := map[string][]delivery{}
	for _, d := range r.log() {
		out[d.EffectID] = append(out[d.EffectID], d)
	}
	for _, ds := range out {
		sort.Slice(ds, func(i, j int) bool { return ds[i].At.Before(ds[j].At) })
	}
	return out
}

// randomModes returns a chooser that draws each delivery's mode with the given weights
// (in percent; the rest is modeOK).
func randomModes(seed uint64, unavail, hang, reset, retryLate int) func(string, int) receiverMode {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(string, int) receiverMode {
		n := rng.IntN(100)
		switch {
		case n < unavail:
			return modeUnavail
		case n < unavail+hang:
			return modeHang
		case n < unavail+hang+reset:
			return modeReset
		case n < unavail+hang+reset+retryLate:
			return modeRetryLate
		}
		return modeOK
	}
}
