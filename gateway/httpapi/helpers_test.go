package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

const (
	key1 = "key-one-0123456789abcdef"
	key2 = "key-two-0123456789abcdef"
)

// recorder is an in-memory Emitter; fail, when set, decides which publishes
// fail.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	fail   func(n int, ev events.Event) error // n: events published so far
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(len(r.events), ev); err != nil {
			return err
		}
	}
	ev.Payload = append(json.RawMessage(nil), ev.Payload...)
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) published() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// newAPI serves a Handler on a real HTTP server. cfg.Emitter defaults to a
// new recorder and cfg.APIKeys to key1 and key2.
func newAPI(t *testing.T, cfg httpapi.Config) (url string, rec *recorder) {
	t.Helper()
	rec, _ = cfg.Emitter.(*recorder)
	if cfg.Emitter == nil {
		rec = &recorder{}
		cfg.Emitter = rec
	}
	if cfg.APIKeys == nil {
		cfg.APIKeys = []string{key1, key2}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// result is an answer of the API.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d %s: %v", r.status, r.body, err)
	}
}

func (r result) errorBody(t *testing.T) httpapi.ErrorBody {
	t.Helper()
	var e httpapi.ErrorBody
	r.decode(t, &e)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer has Content-Type %q", ct)
	}
	return e
}

// do sends a request; headers are name, value pairs.
func do(t *testing.T, method, url string, body io.Reader, headers ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends body to path with key1 and extra headers.
func post(t *testing.T, url, path, body string, headers ...string) result {
	t.Helper()
	return do(t, http.MethodPost, url+path, strings.NewReader(body), append([]string{"Authorization", "Bearer " + key1}, headers...)...)
}

var errBoom = errors.New("boom")
