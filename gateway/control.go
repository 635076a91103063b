package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/socketio"
)

// EventSessionRevoked (server → client) is sent right before the server
// disconnects a socket on purpose — an operator's disconnect, or a revoked
// token — so that the application can tell "you were removed" from a
// network drop: {message, code, reason?}. code is CodeSessionRevoked or
// CodeTokenRevoked; reason is the operator's text, when given. The
// disconnect that follows is "io server disconnect": socket.io-client does
// not reconnect by itself, and the session is not kept for recovery. It
// carries no recovery offset and is never replayed.
const EventSessionRevoked = "session:revoked"

// CodeSessionRevoked is the EventSessionRevoked code of a socket an
// operator disconnected (its token stays valid: the client may connect
// again).
const CodeSessionRevoked auth.Code = "SESSION_REVOKED"

const msgSessionRevoked = "Disconnected by the server"

// MaxReasonLength bounds the reason of a disconnect, in bytes.
const MaxReasonLength = 256

// ControlNamespace is the namespace the gateway's nodes use among
// themselves for control operations (server-side events through the
// adapter); clients cannot connect to it.
const ControlNamespace = "/_gateway_control"

// Server-side events of the control namespace.
const (
	sseDisconnect = "gateway:disconnect"
	sseRevoke     = "gateway:revoke"
	sseRoom       = "gateway:room"
)

// Selector picks the sockets a control operation acts on, on every node:
// one socket (SocketID), a user's sockets (UserID, within OrganizationID
// when it is set) or an organization's (OrganizationID alone).
type Selector struct {
	SocketID       string `json:"socketId,omitempty"`
	UserID         string `json:"userId,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
}

// ErrInvalidSelector is wrapped by the errors of a selector that selects
// nothing, or mixes a socket id with a user or organization.
var ErrInvalidSelector = errors.New("gateway: invalid selector")

func (sel Selector) check() error {
	switch {
	case sel.SocketID != "" && (sel.UserID != "" || sel.OrganizationID != ""):
		return fmt.Errorf("%w: a socket id selects one socket, without a user or organization", ErrInvalidSelector)
	case sel.SocketID == "" && sel.UserID == "" && sel.OrganizationID == "":
		return fmt.Errorf("%w: name a socket, a user or an organization", ErrInvalidSelector)
	}
	return nil
}

func (sel Selector) matches(s *socketio.Socket, sess *session) bool {
	if sel.SocketID != "" {
		return s.ID() == sel.SocketID
	}
	return (sel.UserID == "" || sess.userID == sel.UserID) &&
		(sel.OrganizationID == "" || sess.orgID == sel.OrganizationID)
}

// ControlResult says what a control operation did across the cluster.
type ControlResult struct {
	// Sockets counts the sockets it acted on (disconnected, or moved in or
	// out of a room), on every node that answered.
	Sockets int `json:"sockets"`
	// Nodes counts the nodes that answered, this one included.
	Nodes int `json:"nodes"`
	// Complete is false when some node did not answer in time (or the
	// cluster could not be reached): its sockets may not have been acted
	// on. A revocation reaches such a node later, from the store.
	Complete bool `json:"complete"`
}

// revokedPayload is the EventSessionRevoked payload.
type revokedPayload struct {
	Message string    `json:"message"`
	Code    auth.Code `json:"code"`
	Reason  string    `json:"reason,omitempty"`
}

// disconnectRequest is the sseDisconnect payload.
type disconnectRequest struct {
	Selector Selector `json:"selector"`
	Reason   string   `json:"reason,omitempty"`
}

// roomRequest is the sseRoom payload.
type roomRequest struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	Join           bool   `json:"join"`
}

// nodeAnswer is what each node answers to a control event.
type nodeAnswer struct {
	Sockets int `json:"sockets"`
}

// setupControl creates the control namespace and its handlers.
func (g *Gateway) setupControl() {
	nsp := g.srv.Of(ControlNamespace)
	nsp.Use(refuseNamespace)
	nsp.OnServerSideEmit(sseDisconnect, func(args socketio.Args, ack func(...any)) {
		var req disconnectRequest
		if args.Decode(0, &req) != nil || req.Selector.check() != nil {
			return
		}
		n := g.disconnectLocal(req.Selector, revokedPayload{Message: msgSessionRevoked, Code: CodeSessionRevoked, Reason: clipReason(req.Reason)})
		if ack != nil {
			ack(nodeAnswer{Sockets: n})
		}
	})
	nsp.OnServerSideEmit(sseRevoke, func(args socketio.Args, ack func(...any)) {
		var r Revocation
		if args.Decode(0, &r) != nil || (r.TokenID == "" && r.UserID == "") {
			return
		}
		n := g.applyRevocation(r)
		if ack != nil {
			ack(nodeAnswer{Sockets: n})
		}
	})
	nsp.OnServerSideEmit(sseRoom, func(args socketio.Args, ack func(...any)) {
		var req roomRequest
		if args.Decode(0, &req) != nil || req.OrganizationID == "" || req.UserID == "" {
			return
		}
		n := g.roomLocal(req)
		if ack != nil {
			ack(nodeAnswer{Sockets: n})
		}
	})
	g.control = nsp
}

// cluster runs a control event on the other nodes and adds their answers
// to local, this node's count.
func (g *Gateway) cluster(ctx context.Context, event string, arg any, local int) (ControlResult, error) {
	res := ControlResult{Sockets: local, Nodes: 1, Complete: true}
	answers, err := g.control.ServerSideEmitWithAck(ctx, event, arg)
	for _, a := range answers {
		var ans nodeAnswer
		if a.Decode(0, &ans) == nil {
			res.Sockets += ans.Sockets
			res.Nodes++
		}
	}
	if err != nil {
		res.Complete = false
		return res, fmt.Errorf("gateway: %s reached %d node(s): %w: %w", event, res.Nodes, events.ErrClusterUnavailable, err)
	}
	return res, nil
}

// Disconnect disconnects the sockets sel selects, on every node: each is
// sent EventSessionRevoked {message, code: SESSION_REVOKED, reason} and
// disconnected ("io server disconnect"), and its session is not kept for
// connection state recovery. The tokens stay valid: to keep the user out,
// revoke them too (Revoke). reason is cut to MaxReasonLength bytes.
func (g *Gateway) Disconnect(ctx context.Context, sel Selector, reason string) (ControlResult, error) {
	if err := sel.check(); err != nil {
		return ControlResult{}, err
	}
	reason = clipReason(reason)
	n := g.disconnectLocal(sel, revokedPayload{Message: msgSessionRevoked, Code: CodeSessionRevoked, Reason: reason})
	res, err := g.cluster(ctx, sseDisconnect, disconnectRequest{Selector: sel, Reason: reason}, n)
	g.log.Info("gateway: control: disconnect", "socketId", sel.SocketID, "userId", sel.UserID, "organizationId", sel.OrganizationID,
		"reason", reason, "sockets", res.Sockets, "nodes", res.Nodes, "complete", res.Complete)
	return res, err
}

// Revoke revokes tokens on every node (see Revocation): they are refused
// at connect and at refresh with TOKEN_REVOKED, and the sockets connected
// with one are sent EventSessionRevoked {code: TOKEN_REVOKED} and
// disconnected. tokenExp, for a token id, is the token's exp when known
// (zero otherwise): the revocation is then forgotten once the token
// expired, instead of after Config.MaxTokenLifetime. The revocation is
// saved in the RevocationStore (when there is one) before the nodes are
// told; a node that is not told learns it from the store within
// Config.RevocationSync.
func (g *Gateway) Revoke(ctx context.Context, r Revocation, tokenExp time.Time) (ControlResult, Revocation, error) {
	if err := r.normalize(time.Now(), tokenExp, g.maxLifetime, g.verifier.Leeway()); err != nil {
		return ControlResult{}, r, err
	}
	var storeErr error
	if g.revStore != nil {
		if err := g.revStore.SaveRevocation(ctx, r); err != nil {
			storeErr = fmt.Errorf("gateway: saving the revocation: %w: %w", events.ErrClusterUnavailable, err)
		}
	}
	n := g.applyRevocation(r)
	res, err := g.cluster(ctx, sseRevoke, r, n)
	if storeErr != nil {
		res.Complete = false
		err = errors.Join(storeErr, err)
	}
	g.log.Info("gateway: control: revoke", "jti", r.TokenID, "userId", r.UserID, "organizationId", r.OrganizationID,
		"issuedBefore", jsTime(r.IssuedBefore), "until", jsTime(r.Until), "sockets", res.Sockets, "nodes", res.Nodes, "complete", res.Complete)
	return res, r, err
}

// SetOrganizationRoom makes the sockets of user connected under org leave
// (join false) or join again (join true) the room of org, on every node:
// the user then stops, or starts again, receiving the organization-wide
// events, while still receiving those sent to the user. Only a socket's own
// organization's room can be joined, by construction: joining another's
// would deliver nothing anyway, since delivery checks every event's
// organization against the socket's. It acts on the sockets connected now;
// a socket that connects later joins its organization's room as always.
func (g *Gateway) SetOrganizationRoom(ctx context.Context, org, user string, join bool) (ControlResult, error) {
	if org == "" || user == "" {
		return ControlResult{}, fmt.Errorf("%w: name an organization and a user", ErrInvalidSelector)
	}
	req := roomRequest{OrganizationID: org, UserID: user, Join: join}
	res, err := g.cluster(ctx, sseRoom, req, g.roomLocal(req))
	g.log.Info("gateway: control: organization room", "organizationId", org, "userId", user, "join", join,
		"sockets", res.Sockets, "nodes", res.Nodes, "complete", res.Complete)
	return res, err
}

// disconnectLocal disconnects this node's sockets that sel selects. It
// walks every socket of the node: rooms are no index here (an operator can
// make a socket leave its rooms), and operators' requests are rare.
func (g *Gateway) disconnectLocal(sel Selector, p revokedPayload) int {
	if sel.SocketID != "" {
		s, ok := g.nsp.Socket(sel.SocketID)
		if !ok {
			return 0
		}
		if sess := sessionOf(s); sess != nil && g.revokeSocket(s, sess, p) {
			return 1
		}
		return 0
	}
	n := 0
	for _, s := range g.nsp.Sockets() {
		if sess := sessionOf(s); sess != nil && sel.matches(s, sess) && g.revokeSocket(s, sess, p) {
			n++
		}
	}
	return n
}

// applyRevocation adds r to this node's revocations and disconnects the
// local sockets whose token it revokes; it returns how many.
func (g *Gateway) applyRevocation(r Revocation) int {
	now := time.Now()
	if !g.revoked.add(r, now) {
		return 0
	}
	p := revokedPayload{Message: msgTokenRevoked, Code: CodeTokenRevoked}
	n := 0
	for _, s := range g.nsp.Sockets() {
		sess := sessionOf(s)
		if sess == nil {
			continue
		}
		sess.mu.Lock()
		jti, iat := sess.tokenID, unixTime(sess.issuedAt)
		sess.mu.Unlock()
		if r.matches(sess.orgID, sess.userID, jti, iat) && g.revokeSocket(s, sess, p) {
			n++
		}
	}
	return n
}

// roomLocal moves this node's sockets of a user in an organization in or
// out of that organization's room.
func (g *Gateway) roomLocal(req roomRequest) int {
	room := events.OrgRoom(req.OrganizationID)
	n := 0
	for _, s := range g.nsp.Sockets() {
		sess := sessionOf(s)
		if sess == nil || sess.orgID != req.OrganizationID || sess.userID != req.UserID || s.In(room) == req.Join {
			continue
		}
		if req.Join {
			s.Join(room)
		} else {
			s.Leave(room)
		}
		n++
	}
	g.stats.roomChanges.Add(int64(n))
	return n
}

// revokeSocket tells a socket why and disconnects it; false when it was
// already going.
func (g *Gateway) revokeSocket(s *socketio.Socket, sess *session, p revokedPayload) bool {
	sess.mu.Lock()
	if sess.closed || sess.revoked {
		sess.mu.Unlock()
		return false
	}
	sess.revoked = true
	g.stopLocked(sess)
	sess.mu.Unlock()
	// Counted before the client can see it, so that the figures agree
	// with what a client (or a test) has observed.
	g.stats.revoke(p.Code)
	// Unlogged: a notice about this connection, never to be replayed to a
	// later one that recovers the session.
	if err := s.EmitUnlogged(EventSessionRevoked, p); err != nil && !errors.Is(err, socketio.ErrNotConnected) {
		g.log.Warn("gateway: sending "+EventSessionRevoked, "sid", s.ID(), "error", err)
	}
	// A namespace disconnect: socket.io-client does not reconnect by itself,
	// and the reason is not one connection state recovery restores from.
	s.Disconnect(false)
	g.log.Info("gateway: client disconnected by control",
		"sid", s.ID(), "userId", sess.userID, "organizationId", sess.orgID, "code", string(p.Code))
	return true
}

// TokenRevoked reports whether this node holds a token with these claims
// as revoked (what a connect or a refresh checks).
func (g *Gateway) TokenRevoked(c *auth.Claims) bool {
	return g.revoked.revoked(c.OrganizationID, c.UserID, c.TokenID, c.IssuedAt, time.Now())
}

// Revocations returns how many revocations this node holds.
func (g *Gateway) Revocations() int { return g.revoked.len() }

// clipReason cuts an operator's reason to MaxReasonLength bytes, on a rune
// boundary.
func clipReason(s string) string {
	if len(s) <= MaxReasonLength {
		return s
	}
	s = s[:MaxReasonLength]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
