package console_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/operate/realtime/gateway/console"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

const apiKey = "console-test-key-0123456789abcdef"

type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev.Payload = append(json.RawMessage(nil), ev.Payload...)
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) published() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

func newServer(t *testing.T) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	api, err := httpapi.New(httpapi.Config{Emitter: rec, APIKeys: []string{apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := console.New(api, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, rec
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func request(t *testing.T, method, url, body string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func TestPage(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := do(t, request(t, "GET", srv.URL+"/", ""))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`src="/console/console.js"`, `href="/console/console.css"`, `<div id="root">`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / lacks %q:\n%s", want, body)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP: %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}

	resp, body = do(t, request(t, "GET", srv.URL+"/console/console.js", ""))
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || len(body) < 1000 {
		t.Fatalf("GET /console/console.js: %d %s %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	etag := resp.Header.Get("ETag")
	resp, _ = do(t, request(t, "GET", srv.URL+"/console/console.js", "", "If-None-Match", etag))
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", etag, resp.StatusCode)
	}
	resp, _ = do(t, request(t, "GET", srv.URL+"/console/console.css", ""))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET /console/console.css: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, _ = do(t, request(t, "HEAD", srv.URL+"/", ""))
	if resp.StatusCode != 200 {
		t.Errorf("HEAD /: %d", resp.StatusCode)
	}
	for _, path := range []string{"/console/index.html", "/console/nope.js", "/console/../go.mod", "/console/a/b.js"} {
		if resp, _ := do(t, request(t, "GET", srv.URL+path, "")); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// Everything else is the API's.
func TestFallthroughToAPI(t *testing.T) {
	srv, _ := newServer(t)
	if resp, body := do(t, request(t, "GET", srv.URL+"/healthz", "")); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, request(t, "POST", srv.URL+"/", "")); resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("POST /: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, request(t, "GET", srv.URL+"/nope", "")); resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /nope: %d %s", resp.StatusCode, body)
	}
	// The API still wants its key: the console adds it on /dev/publish only.
	resp, _ := do(t, request(t, "POST", srv.URL+httpapi.PathBatch, `[]`, "Content-Type", "application/json"))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST %s without a key: %d", httpapi.PathBatch, resp.StatusCode)
	}
}

func TestPublish(t *testing.T) {
	srv, rec := newServer(t)
	body := `[{"event":"invoice:paid","payload":{"organizationId":"org_a","invoiceId":"inv_1"}},
	          {"event":"notification:new","payload":{"organizationId":"org_a","userId":"u1","notificationId":"n1","title":"t","message":"m","type":"info"}}]`
	resp, out := do(t, request(t, "POST", srv.URL+"/dev/publish", body,
		"Content-Type", "application/json", "Origin", srv.URL, "Sec-Fetch-Site", "same-origin",
		"Authorization", "Bearer not-the-key"))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /dev/publish: %d %s", resp.StatusCode, out)
	}
	var ack struct{ IDs []string }
	if err := json.Unmarshal([]byte(out), &ack); err != nil || len(ack.IDs) != 2 {
		t.Fatalf("answer %s: %v", out, err)
	}
	got := rec.published()
	if len(got) != 2 || got[0].Name != "invoice:paid" || got[1].Name != "notification:new" || got[1].Target.UserID != "u1" {
		t.Fatalf("published %+v", got)
	}

	// The API's validation and answers, unchanged.
	resp, out = do(t, request(t, "POST", srv.URL+"/dev/publish", `[{"event":"invoice:payed","payload":{"organizationId":"o"}}]`,
		"Content-Type", "application/json"))
	if resp.StatusCode != 400 || !strings.Contains(out, `"unknown_event"`) {
		t.Errorf("unknown event: %d %s", resp.StatusCode, out)
	}

	// Refused: other sites, other content types, other methods.
	for _, tc := range []struct {
		name   string
		header []string
		status int
	}{
		{"cross-origin", []string{"Content-Type", "application/json", "Origin", "http://evil.example"}, 403},
		{"cross-site fetch", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site fetch", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "same-site"}, 403},
		{"form post", []string{"Content-Type", "text/plain"}, 415},
		{"no content type", nil, 415},
	} {
		resp, out := do(t, request(t, "POST", srv.URL+"/dev/publish", body, tc.header...))
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, out, tc.status)
		}
	}
	if resp, _ := do(t, request(t, "GET", srv.URL+"/dev/publish", "")); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /dev/publish: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := len(rec.published()); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := console.New(nil, apiKey); err == nil {
		t.Error("no API: no error")
	}
	if _, err := console.New(http.NotFoundHandler(), ""); err == nil {
		t.Error("no key: no error")
	}
}

// TestBuildCurrent checks the committed console build against its sources,
// without Node.js: build.sha256 (written by `make console`) must list the
// current SHA-256 of every input under clients/js and of every embedded
// file. The JavaScript test suite also rebuilds the console and compares the
// bytes (npm run console:check).
func TestBuildCurrent(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "clients/js/package.json")); err != nil {
		t.Skip("clients/js is not here")
	}
	f, err := os.Open("build.sha256")
	if err != nil {
		t.Fatalf("%v: run `make console`", err)
	}
	defer f.Close()
	listed := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("build.sha256: bad line %q", sc.Text())
		}
		listed[name] = sum
	}

	// Inputs: the same set as clients/js/scripts/build-console.mjs.
	inputs := []string{
		"clients/js/package.json", "clients/js/package-lock.json", "clients/js/tsconfig.json",
		"clients/js/scripts/build-console.mjs",
	}
	for _, dir := range []string{"clients/js/console", "clients/js/src"} {
		err := filepath.WalkDir(filepath.Join(repo, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(repo, path)
			inputs = append(inputs, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir("dist")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		inputs = append(inputs, "gateway/console/dist/"+e.Name())
	}
	slices.Sort(inputs)

	var stale []string
	for _, name := range inputs {
		b, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		switch want, ok := listed[name]; {
		case !ok:
			stale = append(stale, name+" (new)")
		case want != hex.EncodeToString(sum[:]):
			stale = append(stale, name+" (changed)")
		}
		delete(listed, name)
	}
	for name := range listed {
		stale = append(stale, name+" (gone)")
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Fatalf("the committed console build is stale; run `make console` (needs Node.js and npm) and commit gateway/console:\n  %s",
			strings.Join(stale, "\n  "))
	}
}
