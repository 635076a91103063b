package client_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/faultproxy"
)

var allTransports = []client.Transport{client.TransportWebSocket, client.TransportPolling, client.TransportUpgrade}

// TestCutReconnectsAndRecovers cuts every connection (a network switch)
// while events are published before, during and after: the client
// reconnects by itself, recovers its session, and has every event once, in
// order.
func TestCutReconnectsAndRecovers(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(tr.String(), func(t *testing.T) {
			s := startServer(t, serverOptions{recovery: true})
			p := newProxy(t, s.addr())
			org := "org_cut_" + tr.String()
			c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, org, "u1", time.Hour), Transport: tr})
			r := record(c, "invoice:paid")
			connect(t, c)
			if tr == client.TransportUpgrade {
				waitTransport(t, c, "websocket")
			}
			for i := 1; i <= 50; i++ {
				emitSeq(t, s, org, i)
			}
			r.waitFor(t, "the first 50 events", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 50 })

			for round := range 3 {
				cutUntilDisconnected(t, p, r, round+1)
				base := 50 * (round + 1)
				for i := base + 1; i <= base+50; i++ { // while the client is away
					emitSeq(t, s, org, i)
				}
				r.waitFor(t, "a recovered reconnection", func(r *recorder) bool {
					return len(r.connects) == round+2 && r.connects[round+1].Recovered
				})
				r.waitFor(t, "every event", func(r *recorder) bool { return len(r.events["invoice:paid"]) >= base+50 })
			}
			if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, 200) {
				t.Fatalf("received %d events, not 1..200 once each in order: %v", len(seqs), seqs)
			}
			if !c.Recovered() {
				t.Error("Recovered() = false after recovering")
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.gaps) != 0 {
				t.Errorf("history gaps after recovered reconnections: %+v", r.gaps)
			}
		})
	}
}

// TestStallIsAPingTimeout: a connection that goes silent without closing (a
// laptop lid, a dead zone) is noticed by the client at ping interval + ping
// timeout, and the client reconnects and recovers.
func TestStallIsAPingTimeout(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(tr.String(), func(t *testing.T) {
			s := startServer(t, serverOptions{recovery: true, pingInterval: 300 * time.Millisecond, pingTimeout: 400 * time.Millisecond})
			p := newProxy(t, s.addr())
			org := "org_stall_" + tr.String()
			c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, org, "u1", time.Hour), Transport: tr})
			r := record(c, "invoice:paid")
			connect(t, c)
			if tr == client.TransportUpgrade {
				waitTransport(t, c, "websocket")
			}
			emitSeq(t, s, org, 1)
			r.waitFor(t, "the first event", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })
			if n := p.Stall(p.Conns(), 5*time.Second); n == 0 {
				t.Fatal("Stall found no connection")
			}
			emitSeq(t, s, org, 2)
			r.waitFor(t, "a ping timeout then a recovered connection", func(r *recorder) bool {
				return slices.Contains(r.log, "disconnect ping timeout") && len(r.connects) == 2
			})
			emitSeq(t, s, org, 3)
			r.waitFor(t, "events 2 and 3", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 3 })
			if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, 3) {
				t.Fatalf("received %v", seqs)
			}
			// The server may notice the stalled connection after the client
			// came back: then the session is taken over, and recovered.
			r.mu.Lock()
			defer r.mu.Unlock()
			if !r.connects[1].Recovered {
				t.Errorf("second connection not recovered: %+v (log %q)", r.connects[1], r.log)
			}
		})
	}
}

// TestRefusedConnectionsBackOff: while the server cannot be reached, the
// client retries with growing delays, not in a loop, and comes back when
// it can.
func TestRefusedConnectionsBackOff(t *testing.T) {
	s := startServer(t, serverOptions{recovery: true})
	p := newProxy(t, s.addr())
	c := newClient(t, client.Config{
		URL: "http://" + p.Addr(), Token: token(t, "org_refuse", "u1", time.Hour),
		Backoff: client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
	})
	r := record(c, "invoice:paid", "connected")
	connect(t, c)
	// The connected event brings the first offset: a connection cut before
	// any event cannot name where to recover from (socket.io-client's
	// behaviour, and the server's: it then starts afresh).
	r.waitFor(t, "the connected event", func(r *recorder) bool { return len(r.events["connected"]) == 1 })
	const outage = 3 * time.Second
	p.Refuse(outage)
	p.Cut()
	refusedFrom := time.Now()
	emitSeq(t, s, "org_refuse", 1)
	r.waitFor(t, "a recovered reconnection", func(r *recorder) bool { return len(r.connects) == 2 })
	if since := time.Since(refusedFrom); since < outage-200*time.Millisecond {
		t.Fatalf("reconnected %v after the outage began, before it ended (%v)", since, outage)
	}
	r.waitFor(t, "the event published during the outage", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	// Attempts at about 0.1, 0.3, 0.7, 1.5, 2.5, 3.5 s (±50%): without
	// backoff a loop would make hundreds.
	failed := len(r.errs)
	if failed < 2 || failed > 12 {
		t.Errorf("%d failed attempts during a %v outage, want a handful (log %q)", failed, outage, r.log)
	}
	if refused := p.Stats().Refused.Load(); refused != int64(failed) {
		t.Errorf("the proxy refused %d connections, the client reported %d failed attempts", refused, failed)
	}
	if !r.connects[1].Recovered {
		t.Errorf("not recovered after the outage: %+v", r.connects[1])
	}
}

// TestHistoryGapAfterARestart: the server restarts (same address, no
// memory of the session): the client reconnects, is told of the gap, and
// gets its subscriptions back on the new socket.
func TestHistoryGapAfterARestart(t *testing.T) {
	first := startServer(t, serverOptions{recovery: true})
	addr := first.addr()
	c := newClient(t, client.Config{URL: first.url, Token: token(t, "org_gap", "u1", time.Hour)})
	r := record(c, "invoice:paid", "expense:created")
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, []string{"invoice:paid"}); err != nil {
		t.Fatal(err)
	}
	emitSeq(t, first, "org_gap", 1)
	r.waitFor(t, "the first event", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })

	first.stop()
	second := startServerAt(t, addr, serverOptions{recovery: true})
	r.waitFor(t, "the history gap", func(r *recorder) bool { return len(r.gaps) == 1 })
	r.mu.Lock()
	gap, second2 := r.gaps[0], r.connects[1]
	r.mu.Unlock()
	if gap.Reason != "unavailable" || gap.From == "" || gap.Message != gateway.HistoryGapMessage {
		t.Errorf("history gap %+v", gap)
	}
	if second2.Recovered || c.Recovered() {
		t.Errorf("recovered from a restarted server: %+v", second2)
	}
	// The subscription is restored on the new socket.
	if _, err := second.svc.Emit(ctx, "expense:created", []byte(`{"organizationId":"org_gap","expenseId":"e1"}`), events.Target{}); err != nil {
		t.Fatal(err)
	}
	emitSeq(t, second, "org_gap", 2)
	r.waitFor(t, "the event after the restart", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 2 })
	if n := r.count("expense:created"); n != 0 {
		t.Fatalf("%d expense:created received: the subscription was not restored", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, j := slices.Index(r.log, "connect"), slices.Index(r.log, "gap unavailable")
	if j < 0 || !slices.Contains(r.log[:j], "disconnect transport close") && !slices.Contains(r.log[:j], "disconnect transport error") || i > j {
		t.Errorf("handlers saw %q", r.log)
	}
}

// TestSubscriptionsRestoredWithoutRecovery: with recovery off, every
// reconnection is a new socket, which receives everything until the client
// has restored its subscriptions; the client restores them and delivers
// nothing it did not subscribe to.
func TestSubscriptionsRestoredWithoutRecovery(t *testing.T) {
	s := startServer(t, serverOptions{})
	p := newProxy(t, s.addr())
	c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, "org_rs", "u1", time.Hour)})
	r := record(c, "invoice:paid", "expense:created")
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, []string{"invoice:*"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var published atomic.Int64
	go func() { // expense events all along: none may get through
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.svc.Emit(context.Background(), "expense:created", []byte(`{"organizationId":"org_rs","expenseId":"e"}`), events.Target{})
			published.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for round := range 3 {
		p.Cut()
		r.waitFor(t, "a reconnection", func(r *recorder) bool { return len(r.connects) == round+2 })
		// Subscribe waits for the restored subscriptions: once it is
		// answered, the new socket filters.
		if _, err := c.Subscribe(ctx, []string{"invoice:paid"}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	emitSeq(t, s, "org_rs", 1)
	r.waitFor(t, "invoice:paid", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })
	if n := r.count("expense:created"); n != 0 || published.Load() == 0 {
		t.Fatalf("%d of %d expense:created delivered to a client subscribed to invoice:* only", n, published.Load())
	}
}

// TestSubscribeWhileDisconnected: a Subscribe made while the client is
// away waits for the next connection.
func TestSubscribeWhileDisconnected(t *testing.T) {
	s := startServer(t, serverOptions{recovery: true})
	p := newProxy(t, s.addr())
	c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, "org_sw", "u1", time.Hour),
		Backoff: client.Backoff{Initial: 300 * time.Millisecond, Max: 300 * time.Millisecond}})
	r := record(c, "invoice:paid", "expense:created")
	connect(t, c)
	p.Refuse(time.Second)
	p.Cut()
	r.waitFor(t, "the disconnection", func(r *recorder) bool { return len(r.log) >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, []string{"expense:*"}); err != nil {
		t.Fatal(err)
	}
	emitSeq(t, s, "org_sw", 1)
	if _, err := s.svc.Emit(ctx, "expense:created", []byte(`{"organizationId":"org_sw","expenseId":"e1"}`), events.Target{}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "expense:created", func(r *recorder) bool { return len(r.events["expense:created"]) == 1 })
	if n := r.count("invoice:paid"); n != 0 {
		t.Fatalf("%d invoice:paid received after subscribing to expense:* only", n)
	}
}

// cutUntilDisconnected cuts every connection until the client has seen its
// nth disconnection. Over long-polling a cut only ends the session when it
// hits a request in flight: one that falls between two requests hits idle
// keep-alive connections, and the session goes on, rightly, on new ones.
func cutUntilDisconnected(t *testing.T, p *faultproxy.Proxy, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		p.Cut()
		r.mu.Lock()
		var seen int
		for _, l := range r.log {
			if strings.HasPrefix(l, "disconnect ") {
				seen++
			}
		}
		r.mu.Unlock()
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disconnection %d after cutting for %v", n, waitTimeout)
		}
		select {
		case <-r.changed:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitTransport(t *testing.T, c *client.Client, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for c.Transport() != want {
		if time.Now().After(deadline) {
			t.Fatalf("transport %q after %v, want %s", c.Transport(), waitTimeout, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServerAt starts a gateway listening on addr (a restarted server).
func startServerAt(t *testing.T, addr string, o serverOptions) *server {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(waitTimeout)
	for {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listening on %s again: %v", addr, err)
	}
	s := startServer(t, o)
	// Serve the same gateway on the old address too.
	srv := &http.Server{Handler: s.gw}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.url = "http://" + addr
	return s
}
