package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/logbudget"
	"github.com/operate/realtime/protocol/sio"
	"github.com/operate/realtime/socketio"
)

// connectErrorData is the data of a refused connection's connect_error:
// clients switch on code (refresh the token on TOKEN_EXPIRED, retry later
// on AUTH_UNAVAILABLE, back to the login page otherwise).
type connectErrorData struct {
	Code auth.Code `json:"code"`
}

// errMalformedAuthToken is the detailed reason (for logs) of an auth.token
// that is neither a string nor null.
var errMalformedAuthToken = errors.New("CONNECT auth.token is not a string")

// authenticate is the namespace's CONNECT middleware: it runs before the
// socket is connected, so a socket without a valid token never joins a room
// and never receives anything.
func (g *Gateway) authenticate(ctx context.Context, s *socketio.Socket) error {
	h := s.Handshake()
	authTok, malformed := authToken(h.Auth)
	token, src := auth.ExtractToken(authTok, h.Header.Get("Authorization"), nil)
	if src == auth.SourceNone {
		// The query, last in precedence, is parsed only when needed.
		token, src = auth.ExtractToken("", "", h.Query())
	}

	var (
		claims *auth.Claims
		err    error
	)
	if malformed {
		err = &auth.Error{Code: auth.CodeInvalidToken, Message: auth.CodeInvalidToken.Message(), Err: errMalformedAuthToken}
		src = auth.SourceAuth
	} else if g.verifier.MayBlock() {
		vctx, cancel := context.WithTimeout(ctx, g.authTimeout)
		claims, err = g.verifier.Verify(vctx, token)
		cancel()
	} else {
		// A secret or a PEM key never waits: no deadline (and its timer)
		// to set up on every handshake.
		claims, err = g.verifier.Verify(ctx, token)
	}
	if err != nil {
		code := auth.CodeOf(err)
		if code == "" {
			code = auth.CodeInvalidToken
		}
		g.refusalLog.Log(g.log, slog.LevelInfo, "gateway: connection refused",
			"code", string(code),
			"reason", logbudget.Clip(err.Error()), // the detailed cause; never contains the token
			"tokenSource", src.String(),
			"address", clientAddress(h, g.trustedProxies),
			"url", logbudget.Clip(auth.RedactURL(h.URL)),
		)
		g.stats.refuse(code)
		return &socketio.ConnectError{Message: auth.MessageOf(err), Data: connectErrorData{Code: code}}
	}

	addr := clientAddress(h, g.trustedProxies)
	if g.TokenRevoked(claims) {
		g.refusalLog.Log(g.log, slog.LevelInfo, "gateway: connection refused",
			"code", string(CodeTokenRevoked), "userId", logbudget.Clip(claims.UserID),
			"organizationId", logbudget.Clip(claims.OrganizationID), "tokenSource", src.String(), "address", addr)
		g.stats.refuse(CodeTokenRevoked)
		return &socketio.ConnectError{Message: msgTokenRevoked, Data: connectErrorData{Code: CodeTokenRevoked}}
	}
	if full := g.caps.full(addr, claims.OrganizationID, claims.UserID); full != "" {
		g.refusalLog.Log(g.log, slog.LevelWarn, "gateway: connection refused: too many connections",
			"per", full, "userId", logbudget.Clip(claims.UserID), "organizationId", logbudget.Clip(claims.OrganizationID), "address", addr)
		g.stats.refuse(CodeTooManyConnections)
		return &socketio.ConnectError{Message: "Too many connections, try again later", Data: connectErrorData{Code: CodeTooManyConnections}}
	}
	sess := newSession(claims, src, g.verifier.ValidUntil(claims), addr, &g.catalog)
	if s.Recovered() {
		// The session and the events missed since belong to the identity
		// that disconnected; a client that kept its session id across a
		// change of user starts afresh instead. The session was kept in
		// memory, or stored as JSON by an adapter (another server's).
		user, org, subs, ok := g.restoredSession(s.Data())
		if !ok || user != claims.UserID || org != claims.OrganizationID {
			g.refusalLog.Log(g.log, slog.LevelInfo, "gateway: recovery declined: the token names another user or organization",
				"sid", s.ID(), "address", clientAddress(h, g.trustedProxies))
			g.stats.recoveryDeclined.Add(1)
			return socketio.ErrDeclineRecovery
		}
		sess.subs.Store(subs)
	}
	s.SetData(sess)
	s.Join(events.OrgRoom(claims.OrganizationID), events.UserRoom(claims.UserID))
	// A socket lives for days: it should not carry its bearer token in
	// memory all that time, nor show it to FetchSockets across the cluster;
	// nor whatever else a client chose to put in its CONNECT payload
	// beyond a few fields.
	h.Auth = withoutToken(h.Auth)
	if len(h.Auth) > maxKeptAuth {
		h.Auth = json.RawMessage("{}")
	}
	h.URL = auth.RedactURL(h.URL)
	h.Header = withoutHeader(h.Header, "Authorization")
	return nil
}

// maxKeptAuth bounds the CONNECT payload a socket keeps once authenticated
// (its token removed): application fields such as a client version fit,
// a client padding its payload does not get to pin memory for its life.
const maxKeptAuth = 1024

// withoutHeader returns h without the named header (a copy; h is shared
// with the Engine.IO session).
func withoutHeader(h engineio.Header, name string) engineio.Header {
	if h.Get(name) == "" {
		return h
	}
	out := make(engineio.Header, 0, len(h))
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] != name {
			out = append(out, h[i], h[i+1])
		}
	}
	return out
}

// withoutToken returns the CONNECT payload without its "token" member.
func withoutToken(raw json.RawMessage) json.RawMessage {
	if _, ok := onlyToken(raw); ok {
		return json.RawMessage("{}")
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	if _, ok := m["token"]; !ok {
		return raw
	}
	delete(m, "token")
	if len(m) == 0 {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// authToken reads the "token" member of the CONNECT payload. A token that is
// present but neither a string nor null is malformed: it is refused as an
// invalid token rather than ignored in favour of a header or query token.
func authToken(raw json.RawMessage) (token string, malformed bool) {
	if t, ok := onlyToken(raw); ok {
		return string(t), false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return "", false // not an object: no auth token
	}
	v, ok := m["token"]
	if !ok || string(v) == "null" {
		return "", false
	}
	if json.Unmarshal(v, &token) != nil {
		return "", true
	}
	return token, false
}

// onlyToken recognizes the CONNECT payload of nearly every client,
// {"token":"…"} with nothing else and a token that needs no unescaping,
// and returns the token without decoding JSON; ok is false for any other
// payload, which is then decoded.
func onlyToken(raw []byte) (token []byte, ok bool) {
	const prefix, suffix = `{"token":"`, `"}`
	if len(raw) < len(prefix)+len(suffix) || string(raw[:len(prefix)]) != prefix || string(raw[len(raw)-len(suffix):]) != suffix {
		return nil, false
	}
	t := raw[len(prefix) : len(raw)-len(suffix)]
	for _, c := range t {
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			return nil, false
		}
	}
	return t, true
}

// historyGapPayload is the EventHistoryGap payload.
type historyGapPayload struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	From    string `json:"from"`
}

// connectedPayload is the EventConnected payload.
type connectedPayload struct {
	Message        string `json:"message"`
	UserID         string `json:"userId"`
	OrganizationID string `json:"organizationId"`
	ExpiresAt      string `json:"expiresAt,omitempty"`
}

func (g *Gateway) onConnection(s *socketio.Socket) {
	sess := sessionOf(s)
	if sess == nil { // cannot happen: authenticate sets it
		s.Disconnect(false)
		return
	}
	// The socket may already be gone: it is connected before this handler
	// runs, and disconnectSockets (an operator, another node) can end it in
	// between, running onDisconnect first. Checked under the session's
	// lock, with the count taken under it too, so that whichever runs
	// second sees what the first did: the count is taken once and released
	// once, or neither.
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		g.stats.accepted.Add(1)
		return
	}
	g.armLocked(s, sess)
	expiresAt := unixTime(sess.expiresAt)
	g.caps.add(sess.address, sess.orgID, sess.userID, 1)
	sess.counted.Store(true)
	sess.mu.Unlock()
	g.stats.accepted.Add(1)
	if s.Recovered() {
		g.stats.recovered.Add(1)
		g.stats.eventsReplayed.Add(int64(s.ReplayedEvents()))
	}

	if err := s.EmitPositioned(EventConnected, connectedJSON(sess.userID, sess.orgID, expiresAt)); err != nil && !errors.Is(err, socketio.ErrNotConnected) {
		g.log.Warn("gateway: sending connected event", "sid", s.ID(), "error", err)
	}
	if from, failure := s.NotRecovered(); failure != "" {
		// Never silently: a client that lost events is told, and reloads.
		// Unlogged: a notice about this connection, which a later recovery
		// of this session must not replay (the client would reload again).
		g.stats.gap(failure)
		if err := s.EmitUnlogged(EventHistoryGap, historyGapPayload{Message: HistoryGapMessage, Reason: string(failure), From: from}); err != nil &&
			!errors.Is(err, socketio.ErrNotConnected) {
			g.log.Warn("gateway: sending history gap event", "sid", s.ID(), "error", err)
		}
	}
	if len(g.observers) > 0 {
		c := g.connection(s, sess)
		for _, o := range g.observers {
			o.Connected(c)
		}
	}
	if g.log.Enabled(context.Background(), slog.LevelInfo) {
		// Attributes rather than key-value arguments: no value is boxed.
		g.log.LogAttrs(context.Background(), slog.LevelInfo, "gateway: client connected",
			slog.String("sid", s.ID()),
			slog.String("userId", sess.userID),
			slog.String("organizationId", sess.orgID),
			slog.String("tokenSource", sess.source.String()),
			slog.Bool("recovered", s.Recovered()),
			slog.String("transport", s.Transport()),
			slog.String("address", sess.address),
		)
	}
}

// connectedJSON encodes the EventConnected payload (connectedPayload) by
// hand: it is sent on every connection, and encoding/json's reflection
// was a visible part of a handshake.
func connectedJSON(userID, orgID string, expiresAt time.Time) json.RawMessage {
	b := make([]byte, 0, 128+len(userID)+len(orgID))
	b = append(b, `{"message":`...)
	b = sio.AppendString(b, ConnectedMessage)
	b = append(b, `,"userId":`...)
	b = sio.AppendString(b, userID)
	b = append(b, `,"organizationId":`...)
	b = sio.AppendString(b, orgID)
	if !expiresAt.IsZero() {
		b = append(b, `,"expiresAt":"`...)
		b = expiresAt.UTC().AppendFormat(b, jsTimeLayout)
		b = append(b, '"')
	}
	return append(b, '}')
}

func (g *Gateway) onDisconnect(s *socketio.Socket, reason socketio.DisconnectReason) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	sess.mu.Lock()
	sess.closed = true
	g.stopLocked(sess)
	sess.mu.Unlock()
	if sess.counted.Swap(false) {
		g.caps.add(sess.address, sess.orgID, sess.userID, -1)
		if len(g.observers) > 0 {
			c := g.connection(s, sess)
			for _, o := range g.observers {
				o.Disconnected(c, string(reason))
			}
		}
	}
	g.log.Info("gateway: client disconnected",
		"sid", s.ID(),
		"userId", sess.userID,
		"organizationId", sess.orgID,
		"reason", string(reason),
		"duration", time.Since(unixTime(sess.connectedAt)).Round(time.Millisecond).String(),
	)
}

// jsTimeLayout formats like JavaScript's Date.prototype.toISOString().
const jsTimeLayout = "2006-01-02T15:04:05.000Z"

// jsTime formats t as toISOString does, "" for the zero time.
func jsTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(jsTimeLayout)
}
