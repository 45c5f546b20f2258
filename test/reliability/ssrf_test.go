package reliability

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSSRF registers webhooks that point at this machine in every spelling — loopback
// IPv4, localhost, IPv6 ::1, IPv4-mapped IPv6, the unspecified address, and an allowed
// address that redirects to loopback — on a server whose allow-list is empty (or names
// only the redirector). Every attempt is refused and logged, and the receiver behind
// them sees no request.
func TestSSRF(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"input":{"type":"ack","data":{}}}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = target.Serve(ln) }()
	t.Cleanup(func() { _ = target.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	// The redirector lives on 127.0.0.2, the one network the server allows.
	rln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot listen on 127.0.0.2: %v", err)
		}
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	var redirects atomic.Int64
	redirector := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/hook", port), http.StatusTemporaryRedirect)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = redirector.Serve(rln) }()
	t.Cleanup(func() { _ = redirector.Close() })

	urls := map[string]string{
		"loopback":    fmt.Sprintf("http://127.0.0.1:%d/hook", port),
		"localhost":   fmt.Sprintf("http://localhost:%d/hook", port),
		"ipv6":        fmt.Sprintf("http://[::1]:%d/hook", port),
		"mapped":      fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/hook", port),
		"mappedhex":   fmt.Sprintf("http://[::ffff:7f00:1]:%d/hook", port),
		"unspecified": fmt.Sprintf("http://0.0.0.0:%d/hook", port),
		"redirect":    "http://" + rln.Addr().String() + "/hook",
	}
	srv := startServer(t, newDatabaseURL(t, "sqlite"), map[string]string{
		"IRONFLOW_WEBHOOK_ALLOW_NETS":     "127.0.0.2/32",
		"IRONFLOW_MAX_ATTEMPTS":           "2",
		"IRONFLOW_RETRY_INITIAL_INTERVAL": "50ms",
		"IRONFLOW_RETRY_MAX_INTERVAL":     "100ms",
		"IRONFLOW_WEBHOOK_TIMEOUT":        "2s",
	})
	c := newClient(srv.URL, 30*time.Second)
	defer c.Close()

	refusedAtPut := 0
	var registered []string
	for name, u := range urls {
		typ := "ssrf_" + name
		c.putDefinition(t, typ, tickDefinition(true))
		r := c.Do(t, request{Method: http.MethodPut, Path: "/v1/workflow-types/" + typ + "/webhook", Body: map[string]string{"url": u}})
		require.Less(t, r.Status, 500, "%s: %s", name, r.Body)
		if r.Status >= 400 {
			refusedAtPut++
			continue
		}
		registered = append(registered, name)
		r = c.Do(t, request{Method: http.MethodPost, Path: "/v1/workflows/" + typ + "/w/inputs", Body: `{"type":"tick","data":{"n":1}}`})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	for _, name := range registered {
		typ := "ssrf_" + name
		var eff map[string]any
		waitFor(t, 30*time.Second, name+" effect dead", func() bool {
			items := c.ListAll(t, "/v1/effects?workflow_type="+typ)
			if len(items) != 1 || items[0]["status"] != "dead" {
				return false
			}
			eff = items[0]
			return true
		})
		r := c.Get(t, "/v1/effects/"+eff["id"].(string))
		require.Equal(t, http.StatusOK, r.Status)
		attempts := r.JSON(t)["attempts"].([]any)
		require.Len(t, attempts, 2, name)
		for _, a := range attempts {
			a := a.(map[string]any)
			errText, _ := a["error"].(string)
			if name == "redirect" {
				require.EqualValues(t, http.StatusTemporaryRedirect, a["status_code"], "the 3xx is the answer")
				require.Contains(t, errText, "redirects are not followed")
				continue
			}
			require.Contains(t, errText, "not allowed", "%s: %s", name, errText)
		}
	}
	require.Zero(t, hits.Load(), "the loopback receiver saw no request")
	// The redirector's network is allowed, so it is registered and asked: the one check
	// that redirects are refused must not drop out.
	require.Contains(t, registered, "redirect")
	require.EqualValues(t, 2, redirects.Load(), "the allowed redirector was asked twice and its redirect never followed")
	t.Logf("SSRF: %d webhook URLs aimed at loopback; %d refused at registration, %d refused at dial time (attempts logged, effects dead); receiver hits 0",
		len(urls), refusedAtPut, len(registered))
}
