package http

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
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
			// httprate has set Retry-After.
			s.writeError(w, r, fmt.Errorf("%w: more than %d requests per second from this API key (or address); retry after the Retry-After header's seconds",
				errRateLimited, perSecond))
		}))
}

// rateKey names the bucket of a request: "key:<n>" for the n-th configured API key,
// else "ip:<address>".
func (s *Server) rateKey(r *http.Request) (string, error) {
	if i, ok := s.keyIndex(r); ok {
		return "key:" + strconv.Itoa(i), nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + httprate.CanonicalizeIP(host), nil
}
