package webhook_test

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
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/webhook"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/wait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const secret = "whsec_0123456789abcdef"

// receiver is the application's webhook endpoint: it verifies every
// request's signature and records what it got. answer, when set, decides
// the status of request n (from 1); a request that fails verification is
// answered 400 and recorded as such.
type receiver struct {
	t      *testing.T
	answer func(n int) int
	block  chan struct{} // when set, requests wait for it to close

	mu         sync.Mutex
	requests   int
	deliveries []string // Realtime-Delivery of each request
	bodies     []webhook.Body
	badSigs    int
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{t: t}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.deliveries = append(r.deliveries, req.Header.Get(webhook.DeliveryHeader))
	if err := webhook.Verify(secret, req.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil {
		r.badSigs++
		r.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status := http.StatusNoContent
	if r.answer != nil {
		status = r.answer(n)
	}
	if status/100 == 2 {
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil {
			r.t.Errorf("body %s: %v", body, err)
		}
		r.bodies = append(r.bodies, b)
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *receiver) snapshot() (requests int, bodies []webhook.Body, deliveries []string, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]webhook.Body(nil), r.bodies...), append([]string(nil), r.deliveries...), r.badSigs
}

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func TestDeliveredSignedBatched(t *testing.T) {
	rec, srv := newReceiver(t)
	// A batch goes out when full: three events, one request.
	s := newSender(t, webhook.Config{URL: srv.URL, BatchSize: 3, BatchWait: time.Hour, Node: "n1"})
	c := gateway.Connection{SocketID: "sid1", UserID: "u1", OrganizationID: "o1", Transport: "websocket", Address: "10.0.0.1",
		ConnectedAt: time.Now().Add(-1500 * time.Millisecond)}
	s.Connected(c)
	s.Disconnected(c, "transport close")
	s.PresenceChanged(gateway.PresenceChange{Event: gateway.EventPresenceLeft, OrganizationID: "o1", UserID: "u1", At: time.Now()})
	wait.For(t, "the batch delivered", func() bool { return s.Stats().Delivered == 3 })
	n, bodies, _, bad := rec.snapshot()
	if n != 1 || bad != 0 || len(bodies) != 1 || len(bodies[0].Events) != 3 {
		t.Fatalf("requests %d, bad signatures %d, bodies %+v: want one signed request with three events", n, bad, bodies)
	}
	ev := bodies[0].Events
	if ev[0].Type != webhook.TypeSocketConnected || ev[1].Type != webhook.TypeSocketDisconnected || ev[2].Type != webhook.TypePresenceLeft {
		t.Fatalf("types %s %s %s", ev[0].Type, ev[1].Type, ev[2].Type)
	}
	if ev[0].SocketID != "sid1" || ev[0].OrganizationID != "o1" || ev[0].UserID != "u1" || ev[0].Transport != "websocket" || ev[0].Node != "n1" {
		t.Fatalf("connected event %+v", ev[0])
	}
	if ev[1].Reason != "transport close" || ev[1].DurationMs < 1500 {
		t.Fatalf("disconnected event %+v", ev[1])
	}
	if ev[0].ID == "" || ev[0].ID == ev[1].ID || ev[1].ID == ev[2].ID {
		t.Fatalf("ids %q %q %q: want distinct", ev[0].ID, ev[1].ID, ev[2].ID)
	}
	if _, err := time.Parse(time.RFC3339, ev[2].Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", ev[2].Timestamp, err)
	}
}

func TestRetriedAfter500(t *testing.T) {
	rec, srv := newReceiver(t)
	rec.answer = func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	s := newSender(t, webhook.Config{URL: srv.URL, BatchSize: 1, MinBackoff: 10 * time.Millisecond})
	s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u1"})
	wait.For(t, "delivered after two 500s", func() bool { return s.Stats().Delivered == 1 })
	n, bodies, deliveries, bad := rec.snapshot()
	if n != 3 || len(bodies) != 1 || bad != 0 {
		t.Fatalf("requests %d, delivered bodies %d, bad signatures %d: want 3, 1, 0", n, len(bodies), bad)
	}
	if deliveries[0] == "" || deliveries[0] != deliveries[1] || deliveries[1] != deliveries[2] {
		t.Fatalf("deliveries %q: a retry must carry the batch's id", deliveries)
	}
	if st := s.Stats(); st.Retries != 2 || st.Requests != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGivesUpAndRefusals(t *testing.T) {
	rec, srv := newReceiver(t)
	rec.answer = func(n int) int {
		if n == 1 {
			return http.StatusBadRequest // refused: not retried
		}
		return http.StatusServiceUnavailable // retried until MaxAttempts
	}
	s := newSender(t, webhook.Config{URL: srv.URL, BatchSize: 1, MinBackoff: time.Millisecond, MaxAttempts: 3})
	s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u1"})
	wait.For(t, "the first refused", func() bool { return s.Stats().Failed == 1 })
	s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u2"})
	wait.For(t, "the second given up", func() bool { return s.Stats().Failed == 2 })
	if n, _, _, _ := rec.snapshot(); n != 4 {
		t.Fatalf("requests %d, want 1 (400, not retried) + 3 (503, MaxAttempts)", n)
	}
}

func TestDroppedWhenQueueFull(t *testing.T) {
	rec, srv := newReceiver(t)
	rec.block = make(chan struct{})
	s := newSender(t, webhook.Config{URL: srv.URL, BatchSize: 1, QueueSize: 5, Timeout: time.Minute})
	s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u0"})
	wait.For(t, "the first request in flight", func() bool { return s.Stats().Requests == 1 && s.Stats().Queued == 0 })
	// The receiver hangs: five fit in the queue, the rest are dropped, and
	// Send returns at once every time.
	accepted := 0
	for i := range 12 {
		if s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u" + string(rune('a'+i))}) {
			accepted++
		}
	}
	if st := s.Stats(); accepted != 5 || st.Dropped != 7 || st.Queued != 5 {
		t.Fatalf("accepted %d, stats %+v: want 5 queued and 7 dropped", accepted, st)
	}
	close(rec.block)
	wait.For(t, "the rest delivered", func() bool { return s.Stats().Delivered == 6 })
}

func TestCloseDeliversQueued(t *testing.T) {
	_, srv := newReceiver(t)
	s := newSender(t, webhook.Config{URL: srv.URL, BatchWait: time.Hour})
	for range 3 {
		s.Send(webhook.Event{Type: webhook.TypePresenceJoined, OrganizationID: "o1", UserID: "u1"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Delivered != 3 {
		t.Fatalf("after Close: %+v, want the queued batch delivered without waiting for BatchWait", st)
	}
	if s.Send(webhook.Event{Type: webhook.TypePresenceJoined}) {
		t.Fatal("Send after Close accepted")
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"events":[]}`)
	now := time.Unix(1_800_000_000, 0)
	h := webhook.Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify(secret, h, body, 0, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// With a second signature (a rotated secret), either may match.
	if err := webhook.Verify(secret, "v1=00,"+h, body, 0, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{"tampered body", secret, h, []byte(`{"events":[{}]}`), now, webhook.ErrBadSignature},
		{"other secret", "another-secret-0123", h, body, now, webhook.ErrBadSignature},
		{"replayed later", secret, h, body, now.Add(6 * time.Minute), webhook.ErrStaleSignature},
		{"from the future", secret, h, body, now.Add(-6 * time.Minute), webhook.ErrStaleSignature},
		{"no signature", secret, "t=1800000000", body, now, webhook.ErrMalformedSignature},
		{"garbage", secret, "nonsense", body, now, webhook.ErrMalformedSignature},
	} {
		if err := webhook.Verify(tc.secret, tc.header, tc.body, 0, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []webhook.Config{
		{URL: "", Secret: secret},
		{URL: "ftp://x/y", Secret: secret},
		{URL: "http://x/y", Secret: "short"},
	} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// BenchmarkObserve is what webhooks add to a connection and its
// disconnection (queueing two events; the receiver answers at once).
func BenchmarkObserve(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	s, err := webhook.New(webhook.Config{URL: srv.URL, Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	}()
	c := gateway.Connection{SocketID: "sid", UserID: "u1", OrganizationID: "o1", Transport: "websocket", ConnectedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		s.Connected(c)
		s.Disconnected(c, "transport close")
	}
}
