package gateway

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/socketio"
)

// CodeRateLimited is the code of a subscribe or unsubscribe refused
// because the connection sent too many requests; CodeRefreshRateLimited
// is the same refusal in auth:refresh's code family.
const (
	CodeRateLimited        = "rate_limited"
	CodeRefreshRateLimited = auth.Code("RATE_LIMITED")
)

// Defaults of Config.ClientEventRate and ClientEventBurst: far above what
// a client does (a few subscriptions, one refresh per token lifetime),
// far below what would cost the server (each refresh verifies a JWT).
const (
	DefaultClientEventRate  = 10
	DefaultClientEventBurst = 30
)

// A client that keeps sending after it was told to slow down is
// disconnected: maxRefused refusals within abuseWindow, whatever requests
// were allowed in between. (Counting refusals in a row instead let a client
// sending above the budget go on for ever: each refill of its budget reset
// the count.)
const (
	maxRefused  = 100
	abuseWindow = time.Minute
)

// rateLimited wraps a client event handler with the connection's request
// budget: beyond it the request is answered with refusal (when it asks for
// an answer) and not handled.
func (g *Gateway) rateLimited(h socketio.EventHandler, refusal func(ev *socketio.Event) any) socketio.EventHandler {
	if g.eventRate == rate.Inf {
		return h
	}
	return func(s *socketio.Socket, ev *socketio.Event) {
		if g.allowEvent(s) {
			h(s, ev)
			return
		}
		if ev.WantsAck() {
			_ = ev.Ack(refusal(ev))
		}
	}
}

// allowEvent takes one request from the socket's budget. The limiter is
// created on a socket's first request: most sockets send one or two in
// their life, and idle ones should not pay for it.
func (g *Gateway) allowEvent(s *socketio.Socket) bool {
	sess := sessionOf(s)
	if sess == nil {
		return true
	}
	sess.mu.Lock()
	if sess.budget == nil {
		sess.budget = &requestBudget{limiter: rate.NewLimiter(g.eventRate, g.eventBurst)}
	}
	b := sess.budget
	if b.limiter.Allow() {
		sess.mu.Unlock()
		return true
	}
	if now := time.Now(); now.Sub(b.refusedSince) > abuseWindow {
		b.refusedSince, b.refused = now, 0
	}
	b.refused++
	cutOff := b.refused == maxRefused
	sess.mu.Unlock()

	g.stats.rateLimited.Add(1)
	if cutOff {
		g.log.Warn("gateway: client disconnected for sending too many requests",
			"sid", s.ID(), "userId", sess.userID, "organizationId", sess.orgID, "refused", maxRefused, "within", abuseWindow.String())
		s.Disconnect(false) // "io server disconnect": the client does not come back on its own
	}
	return false
}

func rateLimitMessage(event string) string {
	return fmt.Sprintf("too many requests: %s refused, slow down", event)
}

func subscribeRateLimited(ev *socketio.Event) any {
	return errorAck{Error: rateLimitMessage(ev.Name), Code: CodeRateLimited}
}

func refreshRateLimited(ev *socketio.Event) any {
	return refreshAck{Error: rateLimitMessage(ev.Name), Code: CodeRefreshRateLimited}
}
