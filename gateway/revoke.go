package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/gateway/auth"
)

// CodeTokenRevoked is the code of a connection or refresh refused because
// its token was revoked (by its jti, or as one of a user's tokens issued
// before a time), and of the EventSessionRevoked sent to a connected socket
// whose token was revoked.
const CodeTokenRevoked auth.Code = "TOKEN_REVOKED"

const msgTokenRevoked = "Unauthorized: Token revoked"

// DefaultMaxTokenLifetime is the longest lifetime (exp - iat) of the tokens
// the gateway is expected to accept, when Config.MaxTokenLifetime is zero:
// a revocation is kept that long (plus the leeway), after which every token
// it names has expired anyway.
const DefaultMaxTokenLifetime = 24 * time.Hour

// DefaultRevocationSync is how often a gateway with a RevocationStore reads
// every revocation back from it, when Config.RevocationSync is zero.
const DefaultRevocationSync = 10 * time.Second

// Revocation revokes tokens: one token by its id (TokenID, the "jti" claim),
// or every token of a user (within one organization, or in all of them)
// issued before a time (the "iat" claim). A revoked token is refused at
// connect and at refresh, and the sockets connected with it are
// disconnected, on every node.
type Revocation struct {
	// TokenID is the jti of the revoked token. Exclusive with UserID.
	TokenID string `json:"jti,omitempty"`
	// UserID revokes that user's tokens issued before IssuedBefore; within
	// OrganizationID only when it is set. A token without iat counts as
	// issued before any time.
	UserID         string    `json:"userId,omitempty"`
	OrganizationID string    `json:"organizationId,omitempty"`
	IssuedBefore   time.Time `json:"issuedBefore,omitzero"`
	// Until is when the revocation can be forgotten: no token it names
	// passes verification any more. Revoke computes it.
	Until time.Time `json:"until"`
}

// RevocationStore keeps revocations beyond one node's memory, so that a
// node that starts, or that missed the notification of a revocation, learns
// it (package gateway/control keeps them in Redis). Each revocation is kept
// until its Until.
type RevocationStore interface {
	SaveRevocation(ctx context.Context, r Revocation) error
	// LoadRevocations returns every revocation still kept.
	LoadRevocations(ctx context.Context) ([]Revocation, error)
}

// ErrInvalidRevocation is wrapped by the errors of a revocation that names
// nothing, or that sets fields that do not go together.
var ErrInvalidRevocation = errors.New("gateway: invalid revocation")

// normalize checks r and fills IssuedBefore (default now) and Until.
// tokenExp is the revoked token's exp when the caller knows it (zero: not
// known): the revocation is then kept only until that token expires.
func (r *Revocation) normalize(now time.Time, tokenExp time.Time, maxLifetime, leeway time.Duration) error {
	switch {
	case r.TokenID != "" && (r.UserID != "" || r.OrganizationID != "" || !r.IssuedBefore.IsZero()):
		return fmt.Errorf("%w: a token id revokes one token; userId, organizationId and issuedBefore go with a user revocation", ErrInvalidRevocation)
	case r.TokenID != "":
		r.Until = now.Add(maxLifetime + leeway)
		if !tokenExp.IsZero() && tokenExp.Add(leeway).Before(r.Until) {
			r.Until = tokenExp.Add(leeway)
		}
		return nil
	case r.UserID == "":
		return fmt.Errorf("%w: name a token id (jti) or a user", ErrInvalidRevocation)
	case !tokenExp.IsZero():
		return fmt.Errorf("%w: expiresAt goes with a token id", ErrInvalidRevocation)
	}
	if r.IssuedBefore.IsZero() {
		r.IssuedBefore = now
	}
	if r.IssuedBefore.After(now.Add(leeway)) {
		return fmt.Errorf("%w: issuedBefore is in the future", ErrInvalidRevocation)
	}
	// Tokens issued before IssuedBefore expire by IssuedBefore +
	// the longest lifetime, and pass verification until the leeway more.
	r.Until = r.IssuedBefore.Add(maxLifetime + leeway)
	return nil
}

type revokedUser struct{ org, user string } // org "": every organization

type userRevocation struct {
	before, until time.Time
}

// revocations is a node's set of revocations, read at every connect and
// refresh: a map lookup or two under a read lock, nothing when the set is
// empty. It holds only revocations that are still in force.
type revocations struct {
	size atomic.Int64 // entries; zero lets checks skip the lock

	mu        sync.RWMutex
	tokens    map[string]time.Time // jti → until
	users     map[revokedUser]userRevocation
	lastPrune time.Time
}

func newRevocations() *revocations {
	return &revocations{tokens: make(map[string]time.Time), users: make(map[revokedUser]userRevocation)}
}

// add records r; it reports whether that revoked anything more than was
// already revoked.
func (rs *revocations) add(r Revocation, now time.Time) bool {
	if !r.Until.After(now) {
		return false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if now.Sub(rs.lastPrune) > time.Minute {
		rs.pruneLocked(now)
	}
	if r.TokenID != "" {
		if until, ok := rs.tokens[r.TokenID]; ok && !until.Before(r.Until) {
			return false
		}
		rs.tokens[r.TokenID] = r.Until
		rs.size.Store(int64(len(rs.tokens) + len(rs.users)))
		return true
	}
	k := revokedUser{r.OrganizationID, r.UserID}
	cur, ok := rs.users[k]
	if ok && cur.until.After(now) && !cur.before.Before(r.IssuedBefore) {
		return false
	}
	rs.users[k] = userRevocation{before: r.IssuedBefore, until: r.Until}
	rs.size.Store(int64(len(rs.tokens) + len(rs.users)))
	return true
}

func (rs *revocations) pruneLocked(now time.Time) {
	rs.lastPrune = now
	for id, until := range rs.tokens {
		if !until.After(now) {
			delete(rs.tokens, id)
		}
	}
	for k, u := range rs.users {
		if !u.until.After(now) {
			delete(rs.users, k)
		}
	}
	rs.size.Store(int64(len(rs.tokens) + len(rs.users)))
}

// len returns the number of revocations kept (some may have just expired).
func (rs *revocations) len() int { return int(rs.size.Load()) }

// revoked reports whether a token with these claims is revoked.
func (rs *revocations) revoked(org, user, jti string, iat, now time.Time) bool {
	if rs.size.Load() == 0 {
		return false
	}
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if jti != "" {
		if until, ok := rs.tokens[jti]; ok && until.After(now) {
			return true
		}
	}
	for _, k := range [2]revokedUser{{org, user}, {"", user}} {
		if u, ok := rs.users[k]; ok && u.until.After(now) && (iat.IsZero() || iat.Before(u.before)) {
			return true
		}
	}
	return false
}

// matches reports whether r revokes a token with these claims.
func (r *Revocation) matches(org, user, jti string, iat time.Time) bool {
	if r.TokenID != "" {
		return jti == r.TokenID
	}
	return user == r.UserID && (r.OrganizationID == "" || r.OrganizationID == org) &&
		(iat.IsZero() || iat.Before(r.IssuedBefore))
}

// syncRevocations reads the store's revocations every interval until ctx
// ends, applying those this node did not know (a notification it missed, or
// revocations made before it started).
func (g *Gateway) syncRevocations(ctx context.Context, store RevocationStore, every time.Duration) {
	defer close(g.syncDone)
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		lctx, cancel := context.WithTimeout(ctx, every)
		list, err := store.LoadRevocations(lctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			g.stats.revocationSyncFailed.Add(1)
			if !failing { // one line per outage, not per attempt
				g.log.Warn("gateway: reading revocations failed; retrying", "error", err, "every", every.String())
			}
			failing = true
		default:
			if failing {
				g.log.Info("gateway: reading revocations works again", "revocations", len(list))
			}
			failing = false
			for _, r := range list {
				g.applyRevocation(r)
			}
			g.revLoaded.Store(true)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
