package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/socketio"
)

// CodeIdentityMismatch is the code of a refresh whose token is valid but
// belongs to another user or organization than the connection.
const CodeIdentityMismatch auth.Code = "IDENTITY_MISMATCH"

const msgIdentityMismatch = "Unauthorized: Token belongs to another user or organization"

// expiryPayload is the payload of EventAuthExpiring and EventAuthExpired.
type expiryPayload struct {
	Message   string    `json:"message"`
	Code      auth.Code `json:"code,omitempty"`
	ExpiresAt string    `json:"expiresAt,omitempty"`
}

// refreshAck is the acknowledgement of EventAuthRefresh.
type refreshAck struct {
	OK        bool      `json:"ok"`
	ExpiresAt *string   `json:"expiresAt,omitempty"` // null when the new token has no exp
	Error     string    `json:"error,omitempty"`
	Code      auth.Code `json:"code,omitempty"`
}

type timerPhase uint8

const (
	phaseNone   timerPhase = iota // nothing scheduled
	phaseWarn                     // send EventAuthExpiring
	phaseExpire                   // send EventAuthExpired and disconnect
)

// armLocked (re)schedules the session's expiry for its current token: first
// the warning, if enabled and not sent yet, then the expiry. sess.mu must
// be held.
func (g *Gateway) armLocked(s *socketio.Socket, sess *session) {
	sess.sock = s
	if sess.closed || sess.expired || sess.validUntil == 0 {
		g.stopLocked(sess)
		return
	}
	validUntil := unixTime(sess.validUntil)
	at, phase := validUntil, phaseExpire
	if g.warning > 0 && !sess.warned {
		if w := min(g.warning, time.Until(validUntil)/2); w > 0 {
			at, phase = validUntil.Add(-w), phaseWarn
		}
	}
	sess.phase = phase
	g.expiries.schedule(sess, at)
}

// stopLocked cancels the session's scheduled expiry; a firing already
// under way sees phaseNone and does nothing. sess.mu must be held.
func (g *Gateway) stopLocked(sess *session) {
	sess.phase = phaseNone
	g.expiries.remove(sess)
}

// fire runs on the expiry queue's goroutine once sess is due.
func (g *Gateway) fire(sess *session) {
	sess.mu.Lock()
	// Between the queue taking sess out and this, it may have been stopped
	// (phaseNone) or scheduled again (queued, for a refreshed token): then
	// this firing is stale.
	phase, s := sess.phase, sess.sock
	if phase == phaseNone || sess.closed || sess.expired || g.expiries.queued(sess) {
		sess.mu.Unlock()
		return
	}
	expiresAt := jsTime(unixTime(sess.expiresAt))
	if phase == phaseWarn {
		sess.warned = true
		g.armLocked(s, sess)
		sess.mu.Unlock()
		// Unlogged, as the other notices about this connection's token:
		// replayed to a recovered connection, which presented a token of
		// its own, it would warn of an expiry that no longer applies.
		_ = s.EmitUnlogged(EventAuthExpiring, expiryPayload{
			Message:   "Token expires soon: send " + EventAuthRefresh + " with a new token to stay connected",
			ExpiresAt: expiresAt,
		})
		g.log.Debug("gateway: token expiring, client warned", "sid", s.ID(), "userId", sess.userID, "expiresAt", expiresAt)
		return
	}
	// From here on a refresh is too late: the socket is being disconnected.
	sess.expired = true
	g.stopLocked(sess)
	sess.mu.Unlock()

	_ = s.EmitUnlogged(EventAuthExpired, expiryPayload{
		Message:   auth.CodeTokenExpired.Message(),
		Code:      auth.CodeTokenExpired,
		ExpiresAt: expiresAt,
	})
	// A namespace disconnect ("io server disconnect"): socket.io-client does
	// not reconnect on its own, so it cannot loop on the expired token.
	s.Disconnect(false)
	g.stats.expired.Add(1)
	g.log.Info("gateway: token expired, client disconnected",
		"sid", s.ID(), "userId", sess.userID, "organizationId", sess.orgID)
}

// onRefresh handles EventAuthRefresh: {token} (or the token as a string).
func (g *Gateway) onRefresh(s *socketio.Socket, ev *socketio.Event) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	token, malformed := refreshToken(ev.Args)
	var (
		claims *auth.Claims
		err    error
	)
	switch {
	case malformed:
		err = &auth.Error{Code: auth.CodeInvalidToken, Message: auth.CodeInvalidToken.Message(),
			Err: errors.New(EventAuthRefresh + " token is not a string")}
	default:
		token, _ = auth.ExtractToken(token, "", nil) // trims, unwraps "Bearer "
		ctx, cancel := context.WithTimeout(s.Context(), g.authTimeout)
		claims, err = g.verifier.Verify(ctx, token)
		cancel()
	}
	if err == nil && (claims.UserID != sess.userID || claims.OrganizationID != sess.orgID) {
		err = &auth.Error{Code: CodeIdentityMismatch, Message: msgIdentityMismatch,
			Err: errors.New("refresh token of user " + claims.UserID + " in organization " + claims.OrganizationID)}
	}
	if err == nil && g.TokenRevoked(claims) {
		err = &auth.Error{Code: CodeTokenRevoked, Message: msgTokenRevoked, Err: errors.New("refresh token is revoked")}
	}

	var ack refreshAck
	if err == nil {
		sess.mu.Lock()
		if sess.expired || sess.closed || sess.revoked {
			err = &auth.Error{Code: auth.CodeTokenExpired, Message: auth.CodeTokenExpired.Message(),
				Err: errors.New("refresh arrived after the connection's token expired")}
		} else {
			sess.role, sess.email = claims.Role, claims.Email
			sess.expiresAt = unixNano(claims.ExpiresAt)
			sess.tokenID, sess.issuedAt = claims.TokenID, unixNano(claims.IssuedAt)
			sess.validUntil = unixNano(g.verifier.ValidUntil(claims))
			sess.warned = false
			g.armLocked(s, sess)
			ack.OK = true
			if !claims.ExpiresAt.IsZero() {
				exp := jsTime(claims.ExpiresAt)
				ack.ExpiresAt = &exp
			}
		}
		sess.mu.Unlock()
	}
	if err != nil {
		code := auth.CodeOf(err)
		if code == "" {
			code = auth.CodeInvalidToken
		}
		ack = refreshAck{Error: auth.MessageOf(err), Code: code}
		g.stats.refreshRefused.Add(1)
		g.log.Info("gateway: token refresh refused",
			"sid", s.ID(), "userId", sess.userID, "organizationId", sess.orgID,
			"code", string(code), "reason", err.Error())
	} else {
		g.stats.refreshed.Add(1)
		g.log.Debug("gateway: token refreshed", "sid", s.ID(), "userId", sess.userID, "expiresAt", jsTime(claims.ExpiresAt))
	}
	_ = ev.Ack(ack)
}

// refreshToken reads the token of an EventAuthRefresh: {token: "..."} or
// "...". Anything else with a token in it is malformed; no token at all
// is "" (verification then answers NO_TOKEN).
func refreshToken(args socketio.Args) (token string, malformed bool) {
	raw := args.Raw(0)
	if raw == nil {
		return "", false
	}
	if err := json.Unmarshal(raw, &token); err == nil {
		return token, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return "", true
	}
	return authToken(raw)
}
