package apitest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/apitest"
)

// seen is what the server received.
type seen struct {
	target, contentType, auth, odd string
	body                           string
}

func server(t *testing.T) (*httptest.Server, *seen) {
	t.Helper()
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s = seen{target: r.RequestURI, contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"),
			odd: r.Header.Get("X-Odd"), body: string(b)}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, `{"ok": true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &s
}

func TestSendSendsWhatItIsAsked(t *testing.T) {
	t.Parallel()
	srv, got := server(t)
	c := apitest.New(srv.URL, apitest.Options{Key: "k"})
	defer c.Close()

	r := c.Do(t, apitest.Request{Method: http.MethodPost, Path: "/a?b=1", Body: map[string]int{"n": 1}, Header: map[string]string{"x-odd": "v"}})
	require.Equal(t, http.StatusTeapot, r.Status)
	require.Equal(t, true, r.JSON(t)["ok"])
	require.Equal(t, seen{target: "/a?b=1", contentType: "application/json", auth: "Bearer k", odd: "v", body: `{"n":1}`}, *got)

	c.Do(t, apitest.Request{Method: http.MethodPut, Path: "/b", Body: "raw", ContentType: "-", NoAuth: true})
	require.Equal(t, seen{target: "/b", body: "raw"}, *got)

	// A target no URL parser takes: sent byte for byte, refused by the server.
	_, err := c.Send(context.Background(), apitest.Request{Method: http.MethodGet, Path: "/%zz"})
	require.Error(t, err, "not a URL")
	r = c.Do(t, apitest.Request{Method: http.MethodGet, Path: "/%zz", Raw: true})
	require.Equal(t, http.StatusBadRequest, r.Status)

	r = c.Get(t, "/redirect")
	require.Equal(t, http.StatusFound, r.Status, "redirects are not followed")
}

func TestExpect(t *testing.T) {
	t.Parallel()
	srv, _ := server(t)
	c := apitest.New(srv.URL, apitest.Options{})
	defer c.Close()
	ctx := context.Background()
	r, err := c.Expect(ctx, apitest.Request{Method: http.MethodGet, Path: "/x"}, http.StatusOK, http.StatusTeapot)
	require.NoError(t, err)
	require.JSONEq(t, `{"ok": true}`, string(r.Body))
	_, err = c.Expect(ctx, apitest.Request{Method: http.MethodGet, Path: "/x"}, http.StatusOK)
	require.ErrorContains(t, err, "status 418")
}
