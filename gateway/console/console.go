// Package console serves the development console: a page, built from
// clients/js/console with the TypeScript client, where a developer signs in as
// any user of any organization, watches the live event feed and publishes
// sample events. `realtime serve` mounts it in development mode only.
//
// The built page is embedded (dist/, committed, rebuilt by `make console`), so
// the binary serves it without Node.js. build.sha256 records the build's
// inputs and outputs; a test fails when they no longer match.
//
// Routes, in front of the HTTP API (every other request goes to it):
//
//	GET /                 the page
//	GET /console/{file}   its script and style sheet
//	POST /dev/publish     publishes a batch of events through the HTTP API
//	                      with the server's API key, which never reaches the page
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Paths served by the Handler.
const (
	PathPage    = "/"
	PathAssets  = "/console/"
	PathPublish = "/dev/publish"
	// PathBatch is where PathPublish forwards: the HTTP API's batch endpoint
	// (httpapi.PathBatch; not imported, to keep this package a leaf).
	PathBatch = "/api/v1/events/batch"
)

// contentSecurityPolicy allows the page its own script, style and
// connections (Socket.IO, /dev/token, /dev/publish) and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the console and passes every other request to the API.
type Handler struct {
	api    http.Handler
	apiKey string
	files  map[string]file
	mux    *http.ServeMux
}

// file is an embedded file and its entity tag.
type file struct {
	content []byte
	etag    string
}

// New returns the console in front of api, the HTTP API handler
// (httpapi.Handler), which also receives every request the console does not
// serve. apiKey must be one of the API's keys: POST /dev/publish adds it to
// the requests it forwards. Mount the result in development mode only.
func New(api http.Handler, apiKey string) (*Handler, error) {
	if api == nil {
		return nil, errors.New("console: the API handler is required")
	}
	if apiKey == "" {
		return nil, errors.New("console: an API key is required (POST /dev/publish publishes with it)")
	}
	files, err := load()
	if err != nil {
		return nil, err
	}
	h := &Handler{api: api, apiKey: apiKey, files: files}
	m := http.NewServeMux()
	m.HandleFunc("GET "+PathPage+"{$}", h.servePage)
	m.HandleFunc("GET "+PathAssets+"{file}", h.serveAsset)
	m.HandleFunc("POST "+PathPublish, h.servePublish)
	m.HandleFunc(PathPublish, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" "+PathPublish+" is not allowed; use POST")
	})
	m.Handle("/", api)
	h.mux = m
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	h.serveFile(w, r, "index.html")
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" || !fs.ValidPath(name) || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	h.serveFile(w, r, name)
}

// load reads the embedded build.
func load() (map[string]file, error) {
	entries, err := fs.ReadDir(dist, "dist")
	if err != nil {
		return nil, err
	}
	files := make(map[string]file, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(dist, "dist/"+e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		files[e.Name()] = file{content: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	if _, ok := files["index.html"]; !ok {
		return nil, errors.New("console: the embedded build has no index.html: run `make console`")
	}
	return files, nil
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	// Fixed file names: always revalidate (the ETag makes that cheap).
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.content))
}

// servePublish forwards a batch of events to the HTTP API's batch endpoint
// with the server's API key: the page publishes through the real API (same
// validation, same answers) without ever seeing a key. Only same-origin JSON
// requests are accepted, so another site open in the developer's browser
// cannot publish through it (a cross-site JSON POST needs a CORS preflight,
// which nothing here grants, and Origin / Sec-Fetch-Site are checked too).
func (h *Handler) servePublish(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "forbidden", "POST /dev/publish accepts requests from the console's own origin only")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "POST /dev/publish takes application/json: a batch of {event, payload, target?}")
		return
	}
	fwd := r.Clone(r.Context())
	fwd.URL = &url.URL{Path: PathBatch}
	fwd.RequestURI = PathBatch
	fwd.Header = r.Header.Clone()
	fwd.Header.Set("Authorization", "Bearer "+h.apiKey)
	fwd.Header.Del("Cookie")
	// The page may retry a click safely: no Idempotency-Key is added, each
	// click publishes.
	h.api.ServeHTTP(w, fwd)
}

// sameOrigin reports whether a browser request comes from a page of this
// server. Requests without Origin and Sec-Fetch-Site (curl, tests) pass:
// development mode has nothing to protect from a local shell.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, message})
}
