package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/client"
)

// TestRefreshThroughSeveralExpiries: a token source minting 3 s tokens
// keeps one connection alive for four token lifetimes: the client answers
// every auth:expiring with auth:refresh, the socket never changes, and
// events published long after the first token expired arrive.
func TestRefreshThroughSeveralExpiries(t *testing.T) {
	s := startServer(t, serverOptions{})
	const ttl = 3 * time.Second
	src := &tokenSource{t: t, org: "org_rf", user: "u1", ttl: ttl}
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportPolling} {
		t.Run(tr.String(), func(t *testing.T) {
			src.calls.Store(0)
			c := newClient(t, client.Config{URL: s.url, TokenSource: src.get, Transport: tr})
			r := record(c, "invoice:paid", "auth:expiring")
			connect(t, c)
			sid := c.SocketID()
			start := time.Now()
			for i := 1; time.Since(start) < 4*ttl; i++ {
				emitSeq(t, s, "org_rf", i)
				time.Sleep(500 * time.Millisecond)
			}
			r.waitFor(t, "four refreshes", func(r *recorder) bool { return len(r.events["auth:expiring"]) >= 4 })
			r.mu.Lock()
			log := slices.Clone(r.log)
			r.mu.Unlock()
			if slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, "disconnect") || l == "error" }) {
				t.Fatalf("the connection did not live through the expiries: %q", log)
			}
			if c.SocketID() != sid || !c.Connected() {
				t.Fatalf("socket %q (connected %v), was %q", c.SocketID(), c.Connected(), sid)
			}
			if n := src.calls.Load(); n < 5 {
				t.Errorf("token source called %d times: once to connect and once per refresh expected", n)
			}
			seqs := r.seqs(t, "invoice:paid")
			if !consecutive(seqs, 1, len(seqs)) || len(seqs) < 20 {
				t.Errorf("received %v", seqs)
			}
		})
	}
	if refreshed := s.gw.Stats().Refreshes; refreshed < 8 {
		t.Errorf("the gateway counted %d refreshes", refreshed)
	}
}

// TestRefreshToken: an explicit refresh returns the new expiry; a token of
// another user is refused and leaves the connection as it was.
func TestRefreshToken(t *testing.T) {
	s := startServer(t, serverOptions{})
	var user atomic.Value
	user.Store("u1")
	src := func(ctx context.Context) (string, error) {
		return token(t, "org_rt", user.Load().(string), time.Hour), nil
	}
	c := newClient(t, client.Config{URL: s.url, TokenSource: src})
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := c.RefreshToken(ctx)
	if err != nil || time.Until(res.ExpiresAt) < 50*time.Minute {
		t.Fatalf("RefreshToken = %+v, %v", res, err)
	}
	user.Store("u2")
	_, err = c.RefreshToken(ctx)
	var re *client.RequestError
	if !errors.As(err, &re) || re.Code != "IDENTITY_MISMATCH" || re.Event != "auth:refresh" {
		t.Fatalf("RefreshToken with another user's token = %v", err)
	}
	if !c.Connected() {
		t.Fatal("a refused refresh disconnected the client")
	}

	static := newClient(t, client.Config{URL: s.url, Token: token(t, "org_rt", "u1", time.Hour)})
	connect(t, static)
	if _, err := static.RefreshToken(ctx); err == nil {
		t.Fatal("RefreshToken without a TokenSource succeeded")
	}
}

// TestExpiredTokenReconnectsFromTheSource: with refreshes off, the gateway
// ends the connection when the token expires (auth:expired, then a server
// disconnect); the client reconnects at once with a new token from the
// source, where socket.io-client would stay disconnected.
func TestExpiredTokenReconnectsFromTheSource(t *testing.T) {
	s := startServer(t, serverOptions{})
	src := &tokenSource{t: t, org: "org_ex", user: "u1", ttl: 2 * time.Second}
	c := newClient(t, client.Config{URL: s.url, TokenSource: src.get, DisableRefresh: true,
		Backoff: client.Backoff{Initial: time.Minute}}) // a reconnection after expiry must not wait
	r := record(c, "invoice:paid", "auth:expired")
	connect(t, c)
	r.waitFor(t, "two expiries and reconnections", func(r *recorder) bool {
		return len(r.events["auth:expired"]) >= 2 && len(r.connects) >= 3
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.log, "disconnect io server disconnect") {
		t.Errorf("handlers saw %q", r.log)
	}
	if c.Err() != nil {
		t.Errorf("Err = %v", c.Err())
	}
}

// TestExpiredStaticTokenStops: a fixed token that expires cannot be
// replaced: the client stops with TOKEN_EXPIRED instead of reconnecting
// with it in a loop.
func TestExpiredStaticTokenStops(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_st", "u1", 2*time.Second)})
	r := record(c)
	connect(t, c)
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the client did not stop after its token expired")
	}
	var ce *client.ConnectError
	if !errors.As(c.Err(), &ce) || ce.Code != client.CodeTokenExpired {
		t.Fatalf("Err = %v, want TOKEN_EXPIRED", c.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []string{"connect", "disconnect io server disconnect"}; !slices.Equal(r.log, want) {
		t.Errorf("handlers saw %q, want %q", r.log, want)
	}
}

// TestTokenSourceFailuresAreRetried: a source that fails (the identity
// provider is down) is asked again after a backoff delay.
func TestTokenSourceFailuresAreRetried(t *testing.T) {
	s := startServer(t, serverOptions{})
	var calls atomic.Int64
	src := func(ctx context.Context) (string, error) {
		if calls.Add(1) <= 3 {
			return "", errors.New("identity provider unavailable")
		}
		return token(t, "org_ts", "u1", time.Hour), nil
	}
	c := newClient(t, client.Config{URL: s.url, TokenSource: src})
	r := record(c)
	connect(t, c)
	r.waitFor(t, "OnConnect", func(r *recorder) bool { return len(r.connects) == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) != 3 || !strings.Contains(r.errs[0].Error(), "identity provider unavailable") {
		t.Errorf("errors %v, want the source's three failures", r.errs)
	}
}

// TestMaxAttempts: the client gives up after MaxAttempts failures in a row.
func TestMaxAttempts(t *testing.T) {
	s := startServer(t, serverOptions{})
	p := newProxy(t, s.addr())
	p.Refuse(time.Hour)
	c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, "o", "u", time.Hour), MaxAttempts: 3})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := c.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("Connect = %v", err)
	}
	if got := p.Stats().Refused.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
}
