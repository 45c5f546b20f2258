package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssets(t *testing.T) {
	t.Parallel()
	h := Handler("/ui")
	cases := []struct {
		target, status, contentType, contains string
	}{
		{"/ui/", "200", "text/html; charset=utf-8", `<script type="module" src="js/app.js">`},
		{"/ui/index.html", "200", "text/html; charset=utf-8", "ironflow console"},
		{"/ui/js/app.js", "200", "text/javascript; charset=utf-8", "import"},
		{"/ui/js/views/instance.js", "200", "text/javascript; charset=utf-8", "export async function render"},
		{"/ui/style.css", "200", "text/css; charset=utf-8", ":root"},
		{"/ui/favicon.svg", "200", "image/svg+xml", "<svg"},
		{"/ui/vendor/mermaid.min.js", "200", "text/javascript; charset=utf-8", "mermaid"},
		{"/ui/nope.js", "404", "text/plain; charset=utf-8", "no such file"},
		{"/ui/../go.mod", "404", "text/plain; charset=utf-8", ""},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			t.Parallel()
			res := get(t, h, c.target)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, c.status, strings.Fields(res.Status)[0])
			require.Equal(t, c.contentType, res.Header.Get("Content-Type"))
			require.Contains(t, string(body), c.contains)
			if res.StatusCode == http.StatusOK {
				require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
				require.NotEmpty(t, res.Header.Get("ETag"))
			}
		})
	}
}

func TestHandlerRedirectsAndRevalidates(t *testing.T) {
	t.Parallel()
	h := Handler("/ui")

	res := get(t, h, "/ui")
	require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
	require.Equal(t, "/ui/", res.Header.Get("Location"))

	res = get(t, h, "/ui/")
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	etag := res.Header.Get("ETag")
	res = get(t, h, "/ui/", "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, res.StatusCode)

	req := httptest.NewRequest(http.MethodPost, "/ui/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// TestModulesResolve: every relative import and every file the page names exists, so
// a renamed module fails here rather than in a browser.
func TestModulesResolve(t *testing.T) {
	t.Parallel()
	root, err := fs.Sub(static, "static")
	require.NoError(t, err)
	imports := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"](\.[^'"]+)['"]`)
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`)
	index, err := fs.ReadFile(root, "index.html")
	require.NoError(t, err)
	for _, m := range refs.FindAllStringSubmatch(string(index), -1) {
		if strings.HasPrefix(m[1], "../") {
			continue // the API's own pages (/docs)
		}
		_, err := fs.Stat(root, m[1])
		require.NoError(t, err, "index.html names %s", m[1])
	}
	n := 0
	err = fs.WalkDir(root, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		for _, m := range imports.FindAllStringSubmatch(string(b), -1) {
			target := path.Join(path.Dir(p), m[1])
			_, err := fs.Stat(root, target)
			require.NoError(t, err, "%s imports %s", p, m[1])
			n++
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 10)
}
