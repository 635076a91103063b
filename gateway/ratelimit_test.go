package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// TestClientRequestRateLimit: each connection has its own request budget;
// beyond it requests are refused in their own answer format, and a client
// that keeps sending is disconnected.
func TestClientRequestRateLimit(t *testing.T) {
	// A burst of 3 and practically no refill: the test does not depend on
	// timing.
	e := newEnv(t, envOptions{eventRate: 0.0001, eventBurst: 3})
	c := e.join("org-1", "user-1", sioclient.Options{})
	sub := map[string]any{"events": []string{"invoice:*"}}
	for i := range 3 {
		var r subscribeResult
		ack(t, c, gateway.EventSubscribe, sub, &r)
		if !r.Success {
			t.Fatalf("request %d within the budget: %+v", i+1, r)
		}
	}
	var r subscribeResult
	ack(t, c, gateway.EventUnsubscribe, sub, &r)
	if r.Success || r.Code != gateway.CodeRateLimited || !strings.Contains(r.Error, "too many requests") {
		t.Errorf("unsubscribe beyond the budget: %+v", r)
	}
	var refresh struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	ack(t, c, gateway.EventAuthRefresh, map[string]any{"token": e.token("org-1", "user-1", time.Hour)}, &refresh)
	if refresh.OK || refresh.Code != string(gateway.CodeRefreshRateLimited) {
		t.Errorf("auth:refresh beyond the budget: %+v", refresh)
	}
	ack(t, c, "ping-me", nil, &r)
	if r.Code != gateway.CodeRateLimited {
		t.Errorf("other event beyond the budget: %+v", r)
	}

	// Another connection has its own budget.
	other := e.join("org-1", "user-2", sioclient.Options{})
	var ok subscribeResult
	ack(t, other, gateway.EventSubscribe, sub, &ok)
	if !ok.Success {
		t.Errorf("another connection: %+v", ok)
	}

	// Keeping on: after 100 refusals in a row the server disconnects it.
	for range 100 {
		c.Emit(gateway.EventSubscribe, sub)
	}
	if reason := c.WaitDisconnect(); reason != "io server disconnect" {
		t.Errorf("disconnect reason %q, want io server disconnect; log:\n%s", reason, e.logs.String())
	}
	if got := e.gw.Stats().RateLimited; got != 100 {
		t.Errorf("Stats().RateLimited = %d, want 100", got)
	}
	wait.For(t, "the warning", func() bool {
		return strings.Contains(e.logs.String(), "client disconnected for sending too many requests")
	})
	wait.For(t, "the other connection only", func() bool { return e.gw.ConnectionCount() == 1 })
}

// TestAbuseCountedOverAWindow: a client sending faster than its budget
// refills, so that a request passes every few, is still disconnected once
// 100 were refused within a minute. (Counted in a row, each refill reset
// the count and such a client was never cut off.)
func TestAbuseCountedOverAWindow(t *testing.T) {
	e := newEnv(t, envOptions{eventRate: 100, eventBurst: 1})
	c := e.join("org-1", "user-1", sioclient.Options{})
	sub := map[string]any{"events": []string{"invoice:*"}}
	for range 1000 { // each emit is a round trip to the driver: well under 100 a refill
		c.Emit(gateway.EventSubscribe, sub)
		if e.gw.ConnectionCount() == 0 {
			break
		}
	}
	if info := c.WaitDisconnectInfo(); info.Reason != "io server disconnect" {
		t.Errorf("disconnect %+v, want io server disconnect", info)
	}
	if got := e.gw.Stats().RateLimited; got != 100 {
		t.Errorf("Stats().RateLimited = %d, want 100", got)
	}
}
