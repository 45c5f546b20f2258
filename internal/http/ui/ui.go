// Package ui holds the web console: plain ES modules, one stylesheet and the vendored
// Mermaid renderer, embedded in the binary and served under a path prefix (/ui). There
// is no build step: the files in static/ are what the browser runs.
//
// The console is a single page that talks to the same /v1 API as every other client,
// with the same bearer keys (the key is kept in the browser's sessionStorage). Serving
// the assets needs no key; every datum they show does.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy lets the console load its own scripts and call its own API,
// nothing else. Mermaid writes style attributes and <style> into the SVG it renders,
// hence 'unsafe-inline' for styles only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets indexes the embedded files once: their bodies are constant, so the index is
// too, and hashing the 3.5 MB Mermaid bundle on every request would be waste.
var assets = sync.OnceValue(func() map[string]asset {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees static/ exists
	}
	out := map[string]asset{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = asset{
			body:        b,
			contentType: contentType(p),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic(err) // reading an embed.FS cannot fail
	}
	return out
})

// contentType maps the few extensions the console uses; anything else is served as
// bytes (and nosniff keeps browsers from guessing).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".md":
		return "text/markdown; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Handler serves the console under prefix (e.g. "/ui"): prefix itself redirects to
// prefix+"/", which serves index.html; prefix+"/<file>" serves that file. Unknown
// files are 404. Responses carry an ETag (a hash of the content) and must be
// revalidated, so a new binary's console is picked up at once.
func Handler(prefix string) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == prefix {
			http.Redirect(w, r, prefix+"/", http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(p, prefix+"/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		a, ok := assets()[name]
		if !ok {
			http.Error(w, "no such file in the console: "+name, http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "index.html" {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
		}
		// ServeContent answers If-None-Match with 304 and handles HEAD and ranges.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
