package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/socketio"
)

// Presence events. Who is online is kept by a presence tracker outside this
// package (gateway/presence); the gateway answers the client event with
// Config.Presence and delivers the changes the tracker reports.
const (
	// EventPresence (client → server) {watch?: boolean}, acknowledged
	// {success: true, organizationId, users: [{userId, connections, since}],
	// watching} with the presence of the socket's own organization, or
	// {success: false, error, code}. watch: true makes the socket receive
	// EventPresenceJoined and EventPresenceLeft for its organization,
	// watch: false stops them; without watch, that stays as it was.
	EventPresence = "presence"
	// EventPresenceJoined (server → client, to watching sockets) says a user
	// came online in the organization: {organizationId, userId, timestamp}.
	EventPresenceJoined = "presence:joined"
	// EventPresenceLeft (server → client, to watching sockets) says a user's
	// last connection in the organization is gone (and did not come back
	// within the tracker's grace period): {organizationId, userId,
	// timestamp}.
	EventPresenceLeft = "presence:left"
)

// CodePresenceUnavailable is the code of a presence request that could not
// be answered (the cluster's presence cannot be read).
const CodePresenceUnavailable = apiclient.CodePresenceUnavailable

// presenceTimeout bounds reading an organization's presence for a client.
const presenceTimeout = 5 * time.Second

// PresenceFunc returns the presence of an organization, across the
// cluster.
type PresenceFunc func(ctx context.Context, organizationID string) (apiclient.Presence, error)

// Observer is told of the sockets of the gateway's namespace that connect
// and disconnect (presence, webhooks). Its methods run on the socket's own
// goroutine, in order for one socket: they must return at once, leaving
// any I/O to a goroutine of their own.
type Observer interface {
	// Connected is called once a socket is connected (recovered ones
	// included), after its connected event was queued.
	Connected(c Connection)
	// Disconnected is called once for every Connected socket that
	// disconnects, with Socket.IO's reason ("transport close", ...).
	Disconnected(c Connection, reason string)
}

// Connection describes a connected socket to an Observer.
type Connection struct {
	SocketID       string
	UserID         string
	OrganizationID string
	// Transport is "polling" or "websocket" (at the time of the call).
	Transport string
	// Address is the client's address, as the connection caps count it.
	Address     string
	Recovered   bool
	ConnectedAt time.Time
}

func (g *Gateway) connection(s *socketio.Socket, sess *session) Connection {
	return Connection{
		SocketID:       s.ID(),
		UserID:         sess.userID,
		OrganizationID: sess.orgID,
		Transport:      s.Transport(),
		Address:        sess.address,
		Recovered:      s.Recovered(),
		ConnectedAt:    unixTime(sess.connectedAt),
	}
}

// PresenceRoom is the room of the sockets that watch an organization's
// presence (EventPresence with watch: true).
func PresenceRoom(organizationID string) string { return "presence:" + organizationID }

// PresenceChange is a change of an organization's presence, as a tracker
// reports it.
type PresenceChange struct {
	// Event is EventPresenceJoined or EventPresenceLeft.
	Event          string
	OrganizationID string
	UserID         string
	At             time.Time
}

// presenceChangePayload is the payload of EventPresenceJoined and
// EventPresenceLeft.
type presenceChangePayload struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	Timestamp      string `json:"timestamp"`
}

// PublishPresence delivers a presence change to the sockets of its
// organization that watch presence, on every node. A tracker calls it once
// per change for the whole cluster (not once per node).
func (g *Gateway) PublishPresence(ctx context.Context, c PresenceChange) error {
	if c.Event != EventPresenceJoined && c.Event != EventPresenceLeft {
		return fmt.Errorf("gateway: publish presence: %q is not a presence event", c.Event)
	}
	if c.OrganizationID == "" || c.UserID == "" {
		return errors.New("gateway: publish presence: organization and user are required")
	}
	if !g.PresenceWatched(c.OrganizationID) {
		return nil // nobody to tell: no packet to build
	}
	pkt, err := socketio.NewPacket(c.Event, presenceChangePayload{OrganizationID: c.OrganizationID, UserID: c.UserID, Timestamp: jsTime(c.At)})
	if err == nil {
		err = g.nsp.To(PresenceRoom(c.OrganizationID)).EmitPacket(ctx, pkt)
	}
	if err != nil {
		return fmt.Errorf("gateway: publish %s for %s: %w", c.Event, c.OrganizationID, err)
	}
	return nil
}

// PresenceWatched reports whether a presence change of the organization
// may have someone to reach. With a cluster adapter it always may (the
// watchers can be on other nodes); on a single node only while a socket
// watches it: a storm of connections then builds no packet and no
// broadcast for changes nobody receives. A socket that starts watching
// just after is not hurt: its request answers with the presence as it is.
func (g *Gateway) PresenceWatched(organizationID string) bool {
	return !g.singleNode || g.nsp.RoomSize(PresenceRoom(organizationID)) > 0
}

// presenceFilter is the delivery filter of presence changes: like catalog
// events, they reach only sockets of the organization their payload
// names, whatever room they were sent to.
func presenceFilter(p *socketio.Packet) func(*socketio.Socket) bool {
	_, org, ok := payloadOrganization(p.Data)
	if !ok {
		return deliverNowhere
	}
	return func(s *socketio.Socket) bool {
		sess := sessionOf(s)
		return sess != nil && sess.orgID == org
	}
}

// presenceAck is the acknowledgement of EventPresence.
type presenceAck struct {
	Success bool `json:"success"` // always true
	apiclient.Presence
	Watching bool `json:"watching"`
}

// onPresence answers EventPresence with the presence of the socket's own
// organization (never another's: the request names none), and changes
// whether the socket watches it.
func (g *Gateway) onPresence(s *socketio.Socket, ev *socketio.Event) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	usage := EventPresence + " expects {} or {watch: true|false}"
	var req map[string]json.RawMessage
	if raw := ev.Args.Raw(0); raw != nil && string(raw) != "null" {
		if json.Unmarshal(raw, &req) != nil || req == nil {
			_ = ev.Ack(errorAck{Error: usage, Code: CodeInvalidRequest})
			return
		}
	}
	for _, k := range slices.Sorted(maps.Keys(req)) {
		if k != "watch" {
			_ = ev.Ack(errorAck{Error: fmt.Sprintf("%s: unknown field %q: %s", EventPresence, k, usage), Code: CodeUnknownField})
			return
		}
	}
	room := PresenceRoom(sess.orgID)
	if raw, ok := req["watch"]; ok {
		var watch bool
		if json.Unmarshal(raw, &watch) != nil {
			_ = ev.Ack(errorAck{Error: usage + ": watch is not a boolean", Code: CodeInvalidRequest})
			return
		}
		// Watch first, then read: a change between the two reaches the
		// client after the snapshot's acknowledgement is queued, or is
		// already in it; none falls between.
		if watch {
			s.Join(room)
		} else {
			s.Leave(room)
		}
	}
	if !ev.WantsAck() {
		return
	}
	ctx, cancel := context.WithTimeout(s.Context(), presenceTimeout)
	p, err := g.presence(ctx, sess.orgID)
	cancel()
	if err != nil {
		g.log.Debug("gateway: presence unavailable", "sid", s.ID(), "organizationId", sess.orgID, "error", err)
		_ = ev.Ack(errorAck{Error: "presence is unavailable, try again later", Code: CodePresenceUnavailable})
		return
	}
	if p.Users == nil {
		p.Users = []apiclient.PresenceUser{}
	}
	_ = ev.Ack(presenceAck{Success: true, Presence: p, Watching: s.In(room)})
}
