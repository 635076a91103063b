package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/gateway/auth"
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
		ExpiresAt:      sess.expiresAt,
		TokenSource:    sess.source,
	}, true
}

// session is the gateway's state of one socket, stored as its data.
type session struct {
	// Static after construction.
	userID      string
	orgID       string
	source      auth.Source
	connectedAt time.Time

	// subs is what the socket receives; nil means every catalog event,
	// unfiltered (it never subscribed). Read lock-free by the delivery
	// filter on every broadcast; replaced, never modified, under mu.
	subs atomic.Pointer[subscriptions]

	mu         sync.Mutex
	role       string
	email      string
	expiresAt  time.Time // token exp; zero: none
	validUntil time.Time // when the token stops passing verification; zero: never
	timer      *time.Timer
	gen        uint64 // bumped whenever the timer is re-armed or stopped; stale timers do nothing
	warned     bool   // EventAuthExpiring sent for the current token
	expired    bool   // EventAuthExpired sent: refreshes are too late
	closed     bool   // the socket disconnected

	limiter *rate.Limiter // the request budget, from the first request on
	// refused requests since refusedSince, within abuseWindow.
	refused      int
	refusedSince time.Time
}

func newSession(c *auth.Claims, src auth.Source, validUntil time.Time) *session {
	return &session{
		userID:      c.UserID,
		orgID:       c.OrganizationID,
		source:      src,
		connectedAt: time.Now(),
		role:        c.Role,
		email:       c.Email,
		expiresAt:   c.ExpiresAt,
		validUntil:  validUntil,
	}
}

func sessionOf(s *socketio.Socket) *session {
	sess, _ := s.Data().(*session)
	return sess
}
