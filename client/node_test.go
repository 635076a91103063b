package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// The client against Node's socket.io 4.8 (tests/node/gatewaypeer.mjs, the
// gateway's wire contract on Node): what works with our server must work
// with the reference implementation of the protocol too.

const peerAPIKey = "peer_key_0123456789abcdef"

type nodePeer struct {
	url string // http://127.0.0.1:PORT
}

func startNodePeer(t *testing.T, args ...string) *nodePeer {
	t.Helper()
	args = append([]string{"--secret", testSecret, "--api-key", peerAPIKey}, args...)
	return &nodePeer{url: sioclient.StartNodeServer(t, "gatewaypeer.mjs", args...)}
}

func (p *nodePeer) addr() string { return strings.TrimPrefix(p.url, "http://") }

// publish posts an event to the peer's HTTP API, payload as given.
func (p *nodePeer) publish(t testing.TB, event string, payload string) {
	t.Helper()
	body := `{"event":"` + event + `","payload":` + payload + `}`
	req, err := http.NewRequest(http.MethodPost, p.url+"/api/v1/events", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+peerAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish %s: HTTP %d", event, resp.StatusCode)
	}
}

func (p *nodePeer) publishSeq(t testing.TB, org string, seq int) {
	t.Helper()
	p.publish(t, "invoice:paid", `{"organizationId":"`+org+`","invoiceId":"inv_`+strconv.Itoa(seq)+`","seq":`+strconv.Itoa(seq)+`}`)
}

func TestNodePeerTransportsAndSubscriptions(t *testing.T) {
	peer := startNodePeer(t)
	for _, tr := range []client.Transport{client.TransportAuto, client.TransportWebSocket, client.TransportPolling, client.TransportUpgrade} {
		t.Run(tr.String(), func(t *testing.T) {
			org := "org_node_" + tr.String()
			c := newClient(t, client.Config{URL: peer.url, Token: token(t, org, "u1", time.Hour), Transport: tr})
			var paid []events.InvoicePayload
			r := record(c, "invoice:paid", "expense:created", "connected")
			c.OnInvoicePaid(func(p events.InvoicePayload) { r.add("typed", func() { paid = append(paid, p) }) })
			connect(t, c)
			r.waitFor(t, "the connected event", func(r *recorder) bool { return len(r.events["connected"]) == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if _, err := c.Subscribe(ctx, []string{"invoice:*"}); err != nil {
				t.Fatal(err)
			}
			if tr == client.TransportUpgrade {
				waitTransport(t, c, "websocket")
			}
			peer.publish(t, "expense:created", `{"organizationId":"`+org+`","expenseId":"e1"}`)
			for i := 1; i <= 20; i++ {
				peer.publishSeq(t, org, i)
			}
			// The raw and the typed handler of one event run one after the
			// other: wait for both to have seen all twenty.
			r.waitFor(t, "20 events", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 20 && len(paid) == 20 })
			if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, 20) {
				t.Fatalf("received %v", seqs)
			}
			if n := r.count("expense:created"); n != 0 {
				t.Fatalf("%d expense:created received while subscribed to invoice:*", n)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(paid) != 20 || paid[19].InvoiceID != "inv_20" || paid[0].OrganizationID != org || paid[0].Timestamp.IsZero() {
				t.Fatalf("typed handler got %d payloads, last %+v", len(paid), paid[len(paid)-1])
			}
		})
	}
}

func TestNodePeerRefusal(t *testing.T) {
	peer := startNodePeer(t)
	c := newClient(t, client.Config{URL: peer.url, Token: "nope.nope.nope"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var ce *client.ConnectError
	if err := c.Connect(ctx); !errors.As(err, &ce) || ce.Code != client.CodeInvalidToken {
		t.Fatalf("Connect = %v, want INVALID_TOKEN", err)
	}
}

// TestNodePeerCutRecovers: Node's connection state recovery, through cuts.
func TestNodePeerCutRecovers(t *testing.T) {
	peer := startNodePeer(t, "--recovery", "--ping-interval", "300", "--ping-timeout", "300")
	for _, tr := range allTransports {
		t.Run(tr.String(), func(t *testing.T) {
			p := newProxy(t, peer.addr())
			org := "org_nrec_" + tr.String()
			// Node's socket.io recovers a session only once it has noticed
			// that the old connection is gone: it does not take a live
			// socket over as our gateway does. It notices a WebSocket cut at
			// once, a long-polling one only at the ping timeout (600 ms
			// here); a client coming back sooner finds its session in use.
			backoff := client.Backoff{Initial: 500 * time.Millisecond, Max: time.Second}
			if tr == client.TransportPolling {
				backoff = client.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second}
			}
			c := newClient(t, client.Config{URL: "http://" + p.Addr(), Token: token(t, org, "u1", time.Hour), Transport: tr, Backoff: backoff})
			r := record(c, "invoice:paid", "connected")
			connect(t, c)
			r.waitFor(t, "the connected event", func(r *recorder) bool { return len(r.events["connected"]) == 1 })
			if tr == client.TransportUpgrade {
				waitTransport(t, c, "websocket")
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if _, err := c.Subscribe(ctx, []string{"invoice:paid"}); err != nil {
				t.Fatal(err)
			}
			n := 0
			for round := range 3 {
				for range 20 {
					n++
					peer.publishSeq(t, org, n)
				}
				r.waitFor(t, "the events before the cut", func(r *recorder) bool { return len(r.events["invoice:paid"]) == n })
				cutUntilDisconnected(t, p, r, round+1)
				for range 20 { // while the client is away
					n++
					peer.publishSeq(t, org, n)
				}
				r.waitFor(t, "a recovered reconnection", func(r *recorder) bool {
					return len(r.connects) == round+2 && r.connects[round+1].Recovered
				})
			}
			r.waitFor(t, "every event", func(r *recorder) bool { return len(r.events["invoice:paid"]) >= n })
			if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, n) {
				t.Fatalf("received %d events, not 1..%d once each in order: %v", len(seqs), n, seqs)
			}
			// The subscription survived with the session.
			peer.publish(t, "expense:created", `{"organizationId":"`+org+`","expenseId":"e1"}`)
			peer.publishSeq(t, org, n+1)
			r.waitFor(t, "the last event", func(r *recorder) bool { return len(r.events["invoice:paid"]) == n+1 })
			r.mu.Lock()
			defer r.mu.Unlock()
			if slices.ContainsFunc(r.log, func(l string) bool { return strings.HasPrefix(l, "expense:created") }) {
				t.Fatal("expense:created delivered: the recovered session lost its subscription")
			}
		})
	}
}

// TestNodePeerRefresh: the peer's auth:expiring is answered with
// auth:refresh; the connection outlives three token lifetimes.
func TestNodePeerRefresh(t *testing.T) {
	peer := startNodePeer(t, "--warning", "1000")
	src := &tokenSource{t: t, org: "org_nref", user: "u1", ttl: 3 * time.Second}
	c := newClient(t, client.Config{URL: peer.url, TokenSource: src.get})
	r := record(c, "auth:expiring", "auth:expired")
	connect(t, c)
	sid := c.SocketID()
	r.waitFor(t, "three refreshes", func(r *recorder) bool { return len(r.events["auth:expiring"]) >= 3 })
	time.Sleep(time.Second) // past the last answered warning's expiry, were the refresh not taken
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events["auth:expired"]) != 0 || len(r.connects) != 1 || c.SocketID() != sid {
		t.Fatalf("the connection did not outlive its tokens: %q", r.log)
	}
}

// TestUndecodablePayloadGoesToOnError: the peer publishes payloads as
// given; one that does not fit its type reaches OnError, not the typed
// handler, and the events after it are delivered.
func TestUndecodablePayloadGoesToOnError(t *testing.T) {
	peer := startNodePeer(t)
	c := newClient(t, client.Config{URL: peer.url, Token: token(t, "org_bad", "u1", time.Hour)})
	r := record(c, "connected")
	var paid []events.InvoicePayload
	c.OnInvoicePaid(func(p events.InvoicePayload) { r.add("typed", func() { paid = append(paid, p) }) })
	var raw []json.RawMessage
	c.OnEvent("invoice:paid", func(p json.RawMessage) { r.add("raw", func() { raw = append(raw, p) }) })
	connect(t, c)
	r.waitFor(t, "the connected event", func(r *recorder) bool { return len(r.events["connected"]) == 1 })
	peer.publish(t, "invoice:paid", `{"organizationId":"org_bad","invoiceId":"i1","amount":"twelve"}`)
	peer.publish(t, "invoice:paid", `{"organizationId":"org_bad","invoiceId":"i2","amount":12}`)
	r.waitFor(t, "an error and the second event", func(r *recorder) bool { return len(r.errs) == 1 && len(raw) == 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(paid) != 1 || paid[0].InvoiceID != "i2" || *paid[0].Amount != 12 {
		t.Fatalf("typed handler got %+v", paid)
	}
	if err := r.errs[0]; !strings.Contains(err.Error(), "invoice:paid payload") {
		t.Fatalf("error %v", err)
	}
}
