package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/httprate"
)

// rateLimit returns the per-key limiter of the authenticated routes: at most perSecond
// requests in any one-second window per API key, or per client IP for requests that
// carry no valid key (so guessing keys is limited too). Beyond it the answer is 429
// problem+json with Retry-After. nil when perSecond is 0 (off).
func (s *Server) rateLimit(perSecond int) func(http.Handler) http.Handler {
	if perSecond <= 0 {
		return nil
	}
	return httprate.Limit(perSecond, time.Second,
		httprate.WithKeyFuncs(s.rateKey),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			if w.Header().Get("Retry-After") == "" {
				w.Header().Set("Retry-After", "1")
			}
			writeProblem(w, Problem{
				Type:      "rate_limited",
				Title:     "Too many requests",
				Status:    http.StatusTooManyRequests,
				Detail:    fmt.Sprintf("more than %s requests per second with this key; retry after the Retry-After header's seconds", strconv.Itoa(perSecond)),
				Instance:  r.URL.EscapedPath(),
				RequestID: requestID(r.Context()),
			})
		}))
}

// rateKey names the bucket of a request: "key:<n>" for the n-th configured API key,
// else "ip:<address>".
func (s *Server) rateKey(r *http.Request) (string, error) {
	if len(s.keyHashes) > 0 {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") {
			got := sha256.Sum256([]byte(strings.TrimSpace(token)))
			for i, want := range s.keyHashes {
				if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
					return "key:" + strconv.Itoa(i), nil
				}
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + httprate.CanonicalizeIP(host), nil
}
