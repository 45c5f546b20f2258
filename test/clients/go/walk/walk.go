// Package walk holds what the Go walk-throughs share and that is not the API: where
// the server is, the order definition, failing with a message, waiting on a condition,
// and a webhook receiver. Every request and answer of the API goes through the client
// each walk-through generates from openapi/openapi.json.
package walk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Env is what run.sh passes: the server's URL and API key.
type Env struct {
	URL, Key string
}

// FromEnv reads IRONFLOW_URL and IRONFLOW_API_KEY; both are required.
func FromEnv() Env {
	e := Env{URL: os.Getenv("IRONFLOW_URL"), Key: os.Getenv("IRONFLOW_API_KEY")}
	if e.URL == "" || e.Key == "" {
		Failf("IRONFLOW_URL and IRONFLOW_API_KEY must name a running server and its key (run.sh sets them)")
	}
	return e
}

// OrderDefinition is examples/order.json, read from the repository root above the
// module.
func OrderDefinition() []byte {
	b, err := os.ReadFile("../../../examples/order.json")
	if err != nil {
		Failf("read the order definition: %v", err)
	}
	return b
}

// Failf ends the walk-through with a message.
func Failf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "walk-through: "+format+"\n", args...)
	os.Exit(1)
}

// Check ends the walk-through when ok is false.
func Check(ok bool, format string, args ...any) {
	if !ok {
		Failf(format, args...)
	}
}

// Must ends the walk-through when err is not nil (the request could not be made or
// its answer could not be decoded).
func Must(err error, what string) {
	if err != nil {
		Failf("%s: %v", what, err)
	}
}

// Eventually waits up to a minute for cond, asking every 50 ms.
func Eventually(what string, cond func() bool) {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			Failf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Receiver is a webhook endpoint on the loopback interface. It checks the Standard
// Webhooks signature of every delivery against the secret it is given, records the
// effects it got, and answers reserve_stock with the input "reserved", which the
// server applies to the workflow as its next input.
type Receiver struct {
	URL string

	srv    *http.Server
	mu     sync.Mutex
	secret []byte
	got    map[string]int // effect name -> deliveries with a valid signature
	bad    []string
}

// StartReceiver listens on 127.0.0.1 on a free port.
func StartReceiver() *Receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(err, "receiver: listen")
	r := &Receiver{URL: "http://" + ln.Addr().String() + "/hooks/ironflow", got: map[string]int{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r
}

// Close stops the receiver.
func (r *Receiver) Close() { _ = r.srv.Close() }

// SetSecret gives the receiver the "whsec_…" secret the webhook registration answered.
func (r *Receiver) SetSecret(secret string) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	Must(err, "receiver: the webhook secret is not whsec_ + base64")
	r.mu.Lock()
	r.secret = key
	r.mu.Unlock()
}

// Got returns how many signed deliveries of the effect name arrived.
func (r *Receiver) Got(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[name]
}

// Bad returns the deliveries that were refused, and why.
func (r *Receiver) Bad() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// ServeHTTP verifies and records one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, r.secret)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	signed := false
	for _, sig := range strings.Fields(req.Header.Get("webhook-signature")) {
		signed = signed || hmac.Equal([]byte(sig), []byte(want))
	}
	// The delivery's envelope (Standard Webhooks); only the effect name is needed.
	var msg struct {
		Data struct {
			Effect string `json:"effect"`
		} `json:"data"`
	}
	if !signed || json.Unmarshal(body, &msg) != nil || msg.Data.Effect == "" {
		r.bad = append(r.bad, fmt.Sprintf("id %q signed %v body %.200s", id, signed, body))
		http.Error(w, "bad signature or body", http.StatusUnauthorized)
		return
	}
	r.got[msg.Data.Effect]++
	if msg.Data.Effect == "reserve_stock" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"input": {"type": "reserved"}}`)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
