package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/socketio"
)

// The Admin UI's events (@socket.io/admin-ui 0.5.1, lib/typed-events.ts).
const (
	// Server → UI.
	uiSession            = "session"             // (sessionId)
	uiConfig             = "config"              // ({supportedFeatures})
	uiServerStats        = "server_stats"        // (stats)
	uiAllSockets         = "all_sockets"         // (sockets)
	uiSocketConnected    = "socket_connected"    // (socket, timestamp)
	uiSocketUpdated      = "socket_updated"      // (partial socket)
	uiSocketDisconnected = "socket_disconnected" // (nsp, id, reason, timestamp)
	uiRoomJoined         = "room_joined"         // (nsp, room, id, timestamp)
	uiRoomLeft           = "room_left"           // (nsp, room, id, timestamp)
	uiEventReceived      = "event_received"      // (nsp, id, args, timestamp)
	uiEventSent          = "event_sent"          // (nsp, id, args, timestamp)
	// UI → server.
	uiDisconnect = "_disconnect" // (nsp, close, filter)
	uiLeave      = "leave"       // (nsp, room, filter?)
)

// The UI's features (its Feature enum). EMIT, JOIN and MJOIN are never
// offered: they would let the UI send any event to any socket, or put a
// socket in another organization's room, around the publish API's
// validation and the tenancy rooms.
const (
	featureDisconnect       = "DISCONNECT"
	featureMultiDisconnect  = "MDISCONNECT"
	featureLeave            = "LEAVE"
	featureMultiLeave       = "MLEAVE"
	featureAggregatedEvents = "AGGREGATED_EVENTS"
	featureAllEvents        = "ALL_EVENTS"
)

// errInvalidCredentials is the refusal the UI recognizes (it shows its
// own "invalid credentials" message and the login form).
var errInvalidCredentials = &socketio.ConnectError{Message: "invalid credentials"}

// adminSession is an admin socket's data: the session id to hand out
// when it logged in with its password.
type adminSession struct{ newSession string }

// authenticate is the admin namespace's CONNECT middleware: a session id
// this configuration issued, or the username and password.
func (a *Admin) authenticate(_ context.Context, s *socketio.Socket) error {
	if a.ui == nil {
		return &socketio.ConnectError{Message: "Invalid namespace"}
	}
	h := s.Handshake()
	var login struct {
		Username  string `json:"username"`
		Password  string `json:"password"`
		SessionID string `json:"sessionId"`
	}
	_ = json.Unmarshal(h.Auth, &login) // anything else is an empty login
	// The password must not stay in memory for the socket's life.
	h.Auth = json.RawMessage("{}")
	now := time.Now()
	if login.SessionID != "" && a.ui.validSession(login.SessionID, now) {
		s.SetData(adminSession{})
		return nil
	}
	ok, err := a.ui.check(login.Username, login.Password)
	if err != nil {
		a.refused("admin: login refused: too many attempts", s)
		return &socketio.ConnectError{Message: err.Error()}
	}
	if !ok {
		a.refused("admin: login refused: invalid credentials", s)
		return errInvalidCredentials
	}
	s.SetData(adminSession{newSession: a.ui.newSession(now)})
	return nil
}

// refused logs a refusal, at most one a second (bursts of five): anyone can
// cause them.
func (a *Admin) refused(msg string, s *socketio.Socket) {
	if a.refusalLog.Allow() {
		a.log.Warn(msg, "address", s.Handshake().Address)
	}
}

func (a *Admin) features() []string {
	f := []string{featureAggregatedEvents, featureAllEvents}
	if a.uiCfg.Operations {
		f = append(f, featureDisconnect, featureMultiDisconnect, featureLeave, featureMultiLeave)
	}
	return f
}

// onAdminConnection greets a UI: its session id (after a password login),
// the features, and the sockets of the cluster; and makes every node watch.
func (a *Admin) onAdminConnection(s *socketio.Socket) {
	if sess, _ := s.Data().(adminSession); sess.newSession != "" {
		_ = s.Emit(uiSession, sess.newSession)
		s.SetData(adminSession{})
	}
	_ = s.Emit(uiConfig, map[string]any{"supportedFeatures": a.features()})
	a.localAdmins.Add(1)
	a.log.Info("admin: UI connected", "sid", s.ID(), "address", s.Handshake().Address, "transport", s.Transport())
	go func() {
		ctx, cancel := context.WithTimeout(s.Context(), a.timeout)
		defer cancel()
		// Every node watches before it lists its sockets (the requests
		// of one channel are handled in order): a socket connecting
		// meanwhile is either listed or told as it connects.
		a.extendLease(time.Now())
		a.poke()
		if err := a.nsp.ServerSideEmit(ctx, sseWatch); err != nil {
			a.log.Warn("admin: asking the other nodes to watch", "error", err)
		}
		sockets, complete := a.allSockets(ctx)
		if !complete {
			a.log.Warn("admin: some nodes did not list their sockets in time", "timeout", a.timeout.String())
		}
		// The UI knows the namespaces its sockets are in, and selects the
		// first it knows when the list arrives: with no socket connected
		// yet it would select none, and show nothing of the sockets that
		// connect later. An update of no socket makes it know the
		// namespace (Node's never lacks one: it lists the UI's own socket).
		_ = s.Emit(uiSocketUpdated, map[string]string{"id": "", "nsp": a.events.Name()})
		_ = s.Emit(uiAllSockets, sockets)
	}()
}

func (a *Admin) onAdminDisconnect(s *socketio.Socket, reason socketio.DisconnectReason) {
	if _, ok := s.Data().(adminSession); !ok {
		return // never connected
	}
	a.localAdmins.Add(-1)
	a.log.Info("admin: UI disconnected", "sid", s.ID(), "reason", string(reason))
}

// onDisconnectRequest is the UI's _disconnect(nsp, close, filter): the
// sockets whose id or room is filter are disconnected, on every node.
// Without a filter (every socket of the namespace) it is refused.
func (a *Admin) onDisconnectRequest(s *socketio.Socket, ev *socketio.Event) {
	var (
		nsp, filter string
		closeConn   bool
	)
	_ = ev.Args.Decode(0, &nsp)
	_ = ev.Args.Decode(1, &closeConn)
	_ = ev.Args.Decode(2, &filter)
	if nsp != a.events.Name() || filter == "" {
		a.log.Warn("admin: disconnect refused: only the sockets of one room or id of the events namespace", "namespace", nsp, "filter", filter)
		return
	}
	a.log.Info("admin: disconnect", "filter", filter, "close", closeConn, "by", s.Handshake().Address)
	go a.operate("disconnect", func(ctx context.Context) error {
		return a.events.In(filter).DisconnectSockets(ctx, closeConn)
	})
}

// onLeaveRequest is the UI's leave(nsp, room, filter?): the sockets whose
// id or room is filter (every socket, without one) leave room, on every
// node.
func (a *Admin) onLeaveRequest(s *socketio.Socket, ev *socketio.Event) {
	var nsp, room, filter string
	_ = ev.Args.Decode(0, &nsp)
	_ = ev.Args.Decode(1, &room)
	_ = ev.Args.Decode(2, &filter)
	if nsp != a.events.Name() || room == "" {
		a.log.Warn("admin: leave refused: only a room of the events namespace", "namespace", nsp, "room", room)
		return
	}
	a.log.Info("admin: leave", "room", room, "filter", filter, "by", s.Handshake().Address)
	op := a.events.In(room)
	if filter != "" {
		op = a.events.In(filter)
	}
	go a.operate("leave", func(ctx context.Context) error { return op.SocketsLeave(ctx, room) })
}

func (a *Admin) operate(what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	if err := f(ctx); err != nil {
		a.log.Error("admin: "+what+" failed", "error", err)
	}
}

// uiSocket is a socket as the UI shows it (instrument()'s serialize).
type uiSocket struct {
	ID        string          `json:"id"`
	ClientID  string          `json:"clientId"`
	Transport string          `json:"transport"`
	Nsp       string          `json:"nsp"`
	Data      json.RawMessage `json:"data"`
	Handshake uiHandshake     `json:"handshake"`
	Rooms     []string        `json:"rooms"`
}

type uiHandshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
	Issued  int64             `json:"issued"` // unix milliseconds
	Secure  bool              `json:"secure"`
	Time    string            `json:"time"`
	URL     string            `json:"url"`
	XDomain bool              `json:"xdomain"`
}

// hiddenHeaders are never shown, whatever a connection kept: credentials.
var hiddenHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true,
}

// serialize describes a local socket for the UI. Nothing that
// authenticates is shown: the gateway drops the token from a connected
// socket's handshake, and whatever credential a header or the query could
// still hold is hidden or redacted here too.
func serialize(s *socketio.Socket) uiSocket {
	h := s.Handshake()
	address, ok := gateway.ClientAddressOf(s)
	if !ok {
		address = h.Address
	}
	headers := make(map[string]string, len(h.Header)/2)
	for i := 0; i+1 < len(h.Header); i += 2 {
		name := strings.ToLower(h.Header[i])
		if hiddenHeaders[name] {
			continue
		}
		if v, dup := headers[name]; dup {
			headers[name] = v + ", " + h.Header[i+1]
		} else {
			headers[name] = h.Header[i+1]
		}
	}
	u := auth.RedactURL(h.URL)
	query := map[string]string{}
	if _, raw, ok := strings.Cut(u, "?"); ok {
		if q, err := url.ParseQuery(raw); err == nil {
			for k, v := range q {
				query[k] = strings.Join(v, ",")
			}
		}
	}
	return uiSocket{
		ID:        s.ID(),
		ClientID:  clientID(s),
		Transport: s.Transport(),
		Nsp:       s.Namespace().Name(),
		Data:      socketData(s),
		Handshake: uiHandshake{
			Address: address,
			Headers: headers,
			Query:   query,
			Issued:  h.Time.UnixMilli(),
			Secure:  h.Secure,
			Time:    h.Time.UTC().Format(time.RFC1123),
			URL:     u,
			XDomain: h.XDomain,
		},
		Rooms: s.Rooms(),
	}
}

// clientID names a socket's connection, as the UI groups sockets by it: a
// digest of the Engine.IO id, which itself authenticates polling requests.
func clientID(s *socketio.Socket) string {
	d := sha256.Sum256([]byte(s.ConnectionID()))
	return hex.EncodeToString(d[:6])
}

// socketData is the socket's data as JSON: for the gateway's sockets, the
// user, organization and subscriptions (never the token).
func socketData(s *socketio.Socket) json.RawMessage {
	if d := s.Data(); d != nil {
		if b, err := json.Marshal(d); err == nil && len(b) > 0 && b[0] == '{' {
			return b
		}
	}
	return json.RawMessage("{}")
}

// allSockets lists the watched namespace's sockets of every node, at most
// MaxSockets each; complete is false when some node did not answer in time.
func (a *Admin) allSockets(ctx context.Context) (sockets []uiSocket, complete bool) {
	sockets = a.localSockets()
	answers, err := a.nsp.ServerSideEmitWithAck(ctx, sseSockets)
	for _, ans := range answers {
		var list []uiSocket
		if ans.Decode(0, &list) == nil {
			sockets = append(sockets, list...)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Log(ctx, slog.LevelDebug, "admin: listing the sockets of other nodes", "error", err)
	}
	return sockets, err == nil
}

func (a *Admin) localSockets() []uiSocket {
	local := a.events.Sockets()
	limit := a.uiCfg.MaxSockets
	if limit <= 0 {
		limit = DefaultMaxSockets
	}
	if len(local) > limit {
		local = local[:limit]
	}
	out := make([]uiSocket, 0, len(local))
	for _, s := range local {
		out = append(out, serialize(s))
	}
	return out
}

// onSocketsRequest answers another node's sseSockets request.
func (a *Admin) onSocketsRequest(_ socketio.Args, ack func(args ...any)) {
	if ack != nil {
		ack(a.localSockets())
	}
}
