package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// secret is a configured key or plain password, kept as its SHA-256 digest
// so that comparing takes the same time whatever the lengths.
type secret struct {
	digest [sha256.Size]byte
	set    bool
}

func newSecret(s string) secret { return secret{digest: sha256.Sum256([]byte(s)), set: true} }

// matches reports whether presented is the secret, in constant time.
func (s secret) matches(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	return s.set && subtle.ConstantTimeCompare(d[:], s.digest[:]) == 1
}

// uiAuth checks the Admin UI's logins and sessions.
type uiAuth struct {
	username secret
	// Exactly one of plain and hash is set.
	plain secret
	hash  []byte
	// sessionKey signs session ids: derived from the login, so that every
	// node with the same configuration accepts the same sessions, and a
	// changed password ends them all.
	sessionKey []byte
	sessionTTL time.Duration
	// logins bounds the password checks per second on this node: guessing
	// is slow, and bcrypt checks cannot eat the CPU.
	logins *rate.Limiter
}

// loginRate and loginBurst bound password checks on one node.
const (
	loginRate  = 2
	loginBurst = 10
)

func newUIAuth(username, password string, ttl time.Duration) (*uiAuth, error) {
	a := &uiAuth{username: newSecret(username), sessionTTL: ttl, logins: rate.NewLimiter(loginRate, loginBurst)}
	switch {
	case isBcrypt(password):
		if _, err := bcrypt.Cost([]byte(password)); err != nil {
			return nil, fmt.Errorf("admin: the UI password looks like a bcrypt hash but is not a valid one: %w", err)
		}
		a.hash = []byte(password)
	case len(password) < MinSecretLength:
		return nil, fmt.Errorf("admin: the UI password is %d characters long, need at least %d (or a bcrypt hash)", len(password), MinSecretLength)
	default:
		a.plain = newSecret(password)
	}
	mac := hmac.New(sha256.New, []byte("operate-realtime admin-ui session v1"))
	mac.Write([]byte(username))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	a.sessionKey = mac.Sum(nil)
	return a, nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// errTooManyLogins refuses a login beyond the node's login budget.
var errTooManyLogins = errors.New("too many login attempts, try again in a few seconds")

// check verifies a login. Every call spends the login budget.
func (a *uiAuth) check(username, password string) (bool, error) {
	if !a.logins.Allow() {
		return false, errTooManyLogins
	}
	userOK := a.username.matches(username)
	var passOK bool
	if a.hash != nil {
		passOK = bcrypt.CompareHashAndPassword(a.hash, []byte(password)) == nil
	} else {
		passOK = a.plain.matches(password)
	}
	return userOK && passOK, nil
}

// session ids are "v1.<expiry, unix seconds>.<HMAC of both>".
const sessionPrefix = "v1."

// newSession returns a session id valid until now + the TTL.
func (a *uiAuth) newSession(now time.Time) string {
	body := sessionPrefix + strconv.FormatInt(now.Add(a.sessionTTL).Unix(), 10)
	return body + "." + a.sign(body)
}

// validSession reports whether id is a session this configuration issued
// that has not expired.
func (a *uiAuth) validSession(id string, now time.Time) bool {
	body, sig, ok := cutLast(id, ".")
	if !ok || !strings.HasPrefix(body, sessionPrefix) {
		return false
	}
	if !hmac.Equal([]byte(sig), []byte(a.sign(body))) {
		return false
	}
	exp, err := strconv.ParseInt(strings.TrimPrefix(body, sessionPrefix), 10, 64)
	return err == nil && now.Unix() < exp
}

func (a *uiAuth) sign(body string) string {
	mac := hmac.New(sha256.New, a.sessionKey)
	mac.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
