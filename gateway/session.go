package gateway

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/filter"
	"github.com/operate/realtime/socketio"
)

// Identity is who a socket is connected as.
type Identity struct {
	UserID         string
	OrganizationID string
	// Role and Email are informational copies of the token's claims
	// (updated by a refresh); grant nothing on them alone.
	Role  string
	Email string
	// ExpiresAt is the current token's exp, zero when it has none.
	ExpiresAt time.Time
	// TokenSource says where the connection token was found.
	TokenSource auth.Source
}

// IdentityOf returns the identity of a socket of the gateway's namespace;
// ok is false for any other socket.
func IdentityOf(s *socketio.Socket) (id Identity, ok bool) {
	sess, ok := s.Data().(*session)
	if !ok {
		return Identity{}, false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return Identity{
		UserID:         sess.userID,
		OrganizationID: sess.orgID,
		Role:           sess.role,
		Email:          sess.email,
		ExpiresAt:      unixTime(sess.expiresAt),
		TokenSource:    sess.source,
	}, true
}

// session is the gateway's state of one socket, stored as its data. Every
// idle connection holds one, so it is kept small (192 bytes): times are
// Unix nanoseconds (0: none), the request budget is allocated on the first
// request, and the token's expiry waits in the gateway's expiryQueue
// rather than on a timer of its own.
type session struct {
	// Static after construction.
	userID      string
	orgID       string
	address     string // the client's, counted against the caps
	catalog     *catalogIndex
	connectedAt int64

	// subs is what the socket receives; nil means every catalog event,
	// unfiltered (it never subscribed). Read lock-free by the delivery
	// filter on every broadcast; replaced, never modified, under mu.
	subs atomic.Pointer[subscriptions]

	// Guarded by the gateway's expiryQueue lock.
	dueAt  int64 // on the queue's clock
	dueIdx int32 // 1 + index in the queue's heap, 0 when not queued

	counted atomic.Bool // the caps count this socket (from its connection on)

	mu         sync.Mutex
	sock       *socketio.Socket
	role       string
	email      string
	expiresAt  int64 // token exp; 0: none
	validUntil int64 // when the token stops passing verification; 0: never
	// The current token's jti and iat, what revocations match.
	tokenID  string
	issuedAt int64

	budget *requestBudget // from the first request on

	// The small fields last, packed together (source is static).
	source  auth.Source
	phase   timerPhase // what is scheduled in the expiry queue
	warned  bool       // EventAuthExpiring sent for the current token
	expired bool       // EventAuthExpired sent: refreshes are too late
	closed  bool       // the socket disconnected
	revoked bool       // EventSessionRevoked sent: being disconnected
}

// requestBudget is a session's request rate limit and its refusals.
type requestBudget struct {
	limiter *rate.Limiter
	// refused requests since refusedSince, within abuseWindow.
	refused      int
	refusedSince time.Time
}

// unixNano returns t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// unixTime is the reverse of unixNano.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func newSession(c *auth.Claims, src auth.Source, validUntil time.Time, address string, catalog *catalogIndex) *session {
	return &session{
		userID:      c.UserID,
		orgID:       c.OrganizationID,
		address:     address,
		source:      src,
		connectedAt: time.Now().UnixNano(),
		catalog:     catalog,
		role:        c.Role,
		email:       c.Email,
		expiresAt:   unixNano(c.ExpiresAt),
		validUntil:  unixNano(validUntil),
		tokenID:     c.TokenID,
		issuedAt:    unixNano(c.IssuedAt),
	}
}

func sessionOf(s *socketio.Socket) *session {
	sess, _ := s.Data().(*session)
	return sess
}

// storedSession is what a session keeps of itself when its socket's state
// leaves the process: an adapter that stores sessions outside it (the Redis
// streams adapter, for recovery on another server) stores the socket data
// as JSON, and fetchSockets shows it to the other servers. It names the
// identity the session belongs to and what it subscribed to, nothing that
// authenticates: a recovered socket is authenticated again.
type storedSession struct {
	UserID         string `json:"userId"`
	OrganizationID string `json:"organizationId"`
	// Subscriptions are event names; absent when the socket never
	// subscribed (it receives every event), empty when it unsubscribed
	// from everything.
	Subscriptions *[]events.Name `json:"subscriptions,omitempty"`
	// Filters are the payload filters of subscribed events (their CEL
	// source), by event.
	Filters map[events.Name]string `json:"filters,omitempty"`
}

// MarshalJSON renders the session as a storedSession.
func (s *session) MarshalJSON() ([]byte, error) {
	st := storedSession{UserID: s.userID, OrganizationID: s.orgID}
	if subs := s.subs.Load(); subs != nil && s.catalog != nil {
		names := s.catalog.list(subs.events)
		st.Subscriptions = &names
		for _, n := range names {
			if p := subs.filterOf(s.catalog.bit[string(n)]); p != nil {
				if st.Filters == nil {
					st.Filters = make(map[events.Name]string)
				}
				st.Filters[n] = p.Expression()
			}
		}
	}
	return json.Marshal(st)
}

// restoredSession reads the data of a recovered socket: the session itself
// (the memory adapter keeps it as it was), or its stored form (read back
// from Redis), whose filters are compiled again. ok is false for anything
// else, and for filters that no longer compile (the catalog changed): the
// client then starts afresh rather than receive what it had filtered out.
func (g *Gateway) restoredSession(data any) (userID, orgID string, subs *subscriptions, ok bool) {
	c := &g.catalog
	switch d := data.(type) {
	case *session:
		return d.userID, d.orgID, d.subs.Load(), true
	case json.RawMessage:
		var st storedSession
		if json.Unmarshal(d, &st) != nil || st.UserID == "" || st.OrganizationID == "" {
			return "", "", nil, false
		}
		if st.Subscriptions != nil {
			subs = &subscriptions{events: c.emptySet()}
			for _, n := range *st.Subscriptions {
				bit, known := c.bit[string(n)]
				if !known { // a name a newer catalog dropped is ignored
					continue
				}
				subs.events.set(bit, true)
				if expr, filtered := st.Filters[n]; filtered {
					p, err := g.filters.Compile(expr, n)
					if err != nil {
						return "", "", nil, false
					}
					if subs.filters == nil {
						subs.filters = make([]*filter.Program, len(c.names))
					}
					subs.filters[bit] = p
				}
			}
		}
		return st.UserID, st.OrganizationID, subs, true
	}
	return "", "", nil, false
}
