package client_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/logbuf"
	"github.com/operate/realtime/socketio"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const testSecret = "client-test-secret-0123456789abcdef"

// waitTimeout bounds every wait: generous, since the tests run with -race
// on a loaded machine and a wait only lasts this long when something broke.
const waitTimeout = 20 * time.Second

// server is an in-process gateway on a real HTTP server.
type server struct {
	t    testing.TB
	gw   *gateway.Gateway
	http *httptest.Server
	url  string // http://127.0.0.1:PORT
	svc  *events.EventsService
	logs *logbuf.Buffer
	once sync.Once
}

type serverOptions struct {
	recovery      bool
	expiryWarning time.Duration // zero: the gateway's default
	leeway        time.Duration // zero: none
	pingInterval  time.Duration // zero: 25 s
	pingTimeout   time.Duration // zero: 20 s
}

func startServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	leeway := o.leeway
	if leeway == 0 {
		leeway = -1 // none: tokens end exactly at exp
	}
	v, err := auth.New(context.Background(), auth.Config{Secret: testSecret, Leeway: leeway, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	cfg := gateway.Config{
		Verifier:      v,
		ExpiryWarning: o.expiryWarning,
		Logger:        logger,
		Engine:        &engineio.Options{PingInterval: o.pingInterval, PingTimeout: o.pingTimeout},
	}
	if o.recovery {
		cfg.Recovery = &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(gw)
	s := &server{t: t, gw: gw, http: hs, url: hs.URL, svc: events.NewEventsService(gw), logs: logs}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the gateway down (idempotent).
func (s *server) stop() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.gw.Shutdown(ctx); err != nil {
			s.t.Errorf("gateway shutdown: %v", err)
		}
		s.http.Close()
	})
}

func (s *server) addr() string { return strings.TrimPrefix(s.url, "http://") }

// token mints a token of the test secret.
func token(t testing.TB, org, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.MintClaims{OrganizationID: org, UserID: user}, ttl, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenSource mints a fresh token of ttl on every call, and counts them.
type tokenSource struct {
	t         testing.TB
	org, user string
	ttl       time.Duration
	calls     atomic.Int64
}

func (ts *tokenSource) get(ctx context.Context) (string, error) {
	ts.calls.Add(1)
	return token(ts.t, ts.org, ts.user, ts.ttl), nil
}

// newClient creates a client of cfg (URL and token defaulted) that is
// closed when the test ends.
func newClient(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Backoff == (client.Backoff{}) {
		cfg.Backoff = client.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Errorf("client not done %v after Close", waitTimeout)
		}
	})
	return c
}

func connect(t testing.TB, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

// testWriter sends a client's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// recorder keeps what a client's handlers saw, in order.
type recorder struct {
	mu       sync.Mutex
	log      []string // "connect", "disconnect <reason>", "gap <reason>", "<event> <payload>"
	connects []client.ConnectInfo
	gaps     []client.HistoryGap
	errs     []error
	events   map[string][]json.RawMessage
	changed  chan struct{} // capacity 1
}

// record registers a recorder on c for the given events and the client's
// own callbacks.
func record(c *client.Client, names ...string) *recorder {
	r := &recorder{events: make(map[string][]json.RawMessage), changed: make(chan struct{}, 1)}
	c.OnConnect(func(i client.ConnectInfo) {
		r.add("connect", func() { r.connects = append(r.connects, i) })
	})
	c.OnDisconnect(func(i client.DisconnectInfo) { r.add("disconnect "+i.Reason, nil) })
	c.OnHistoryGap(func(g client.HistoryGap) {
		r.add("gap "+g.Reason, func() { r.gaps = append(r.gaps, g) })
	})
	c.OnError(func(err error) { r.add("error", func() { r.errs = append(r.errs, err) }) })
	for _, n := range names {
		c.OnEvent(n, func(p json.RawMessage) {
			r.add(n+" "+string(p), func() { r.events[n] = append(r.events[n], p) })
		})
	}
	return r
}

func (r *recorder) add(line string, f func()) {
	r.mu.Lock()
	r.log = append(r.log, line)
	if f != nil {
		f()
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called under the recorder's lock) holds.
func (r *recorder) waitFor(t testing.TB, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s; the handlers saw (last 30 of %d):\n%s",
				waitTimeout, what, len(r.log), strings.Join(r.log[max(0, len(r.log)-30):], "\n"))
		}
	}
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events[name])
}

// seqs returns the "seq" field of each payload received for name.
func (r *recorder) seqs(t testing.TB, name string) []int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.events[name]))
	for _, p := range r.events[name] {
		var v struct {
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatalf("payload %s: %v", p, err)
		}
		out = append(out, v.Seq)
	}
	return out
}

// emitSeq publishes invoice:paid with a sequence number for org.
func emitSeq(t testing.TB, s *server, org string, seq int) {
	t.Helper()
	raw := json.RawMessage(`{"organizationId":"` + org + `","invoiceId":"inv_` + itoa(seq) + `","seq":` + itoa(seq) + `}`)
	if _, err := s.svc.Emit(context.Background(), events.InvoicePaid, raw, events.Target{}); err != nil {
		t.Fatalf("emit %d: %v", seq, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// consecutive reports whether seqs is exactly from..to, in order, once each.
func consecutive(seqs []int, from, to int) bool {
	if len(seqs) != to-from+1 {
		return false
	}
	for i, s := range seqs {
		if s != from+i {
			return false
		}
	}
	return true
}

// newProxy puts a fault proxy in front of addr until the test ends.
func newProxy(t testing.TB, addr string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func mintWith(secret, org, user string, ttl time.Duration) (string, error) {
	return auth.Mint(secret, auth.MintClaims{OrganizationID: org, UserID: user}, ttl, time.Time{})
}

func mintAt(secret, org, user string, ttl time.Duration, now time.Time) (string, error) {
	return auth.Mint(secret, auth.MintClaims{OrganizationID: org, UserID: user}, ttl, now)
}

// noWebSocket is a reverse proxy to target that refuses WebSocket
// handshakes, as some corporate proxies do; it returns its URL.
func noWebSocket(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests cut by the client's Close
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "WebSocket not allowed here", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}
