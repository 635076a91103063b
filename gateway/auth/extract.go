package auth

import (
	"net/url"
	"strings"
)

// Source tells where ExtractToken found the token; the gateway logs it and
// may refuse query tokens in stricter deployments (they end up in proxy logs).
type Source uint8

// Token sources, in precedence order.
const (
	SourceNone   Source = iota // no token anywhere
	SourceAuth                 // Socket.IO CONNECT packet auth.token
	SourceHeader               // Authorization: Bearer handshake header
	SourceQuery                // ?token= on the handshake URL
)

// String returns "none", "auth", "header" or "query".
func (s Source) String() string {
	switch s {
	case SourceAuth:
		return "auth"
	case SourceHeader:
		return "header"
	case SourceQuery:
		return "query"
	default:
		return "none"
	}
}

// ExtractToken picks the token from the places a Socket.IO client can put it:
// the CONNECT auth.token, then an "Authorization: Bearer" handshake header,
// then the "token" query parameter. The first non-empty one wins; the others
// are ignored, not cross-checked, as the NestJS gateway did.
//
// It is lenient the way production clients need: surrounding spaces are
// trimmed, the "Bearer" scheme is matched case-insensitively, and an auth.token
// or query value that itself starts with "Bearer " is unwrapped (some clients
// send the header value there). An Authorization header with another scheme
// (Basic, ...) is not a token and falls through to the query.
func ExtractToken(authToken string, authorizationHeader string, query url.Values) (token string, source Source) {
	if t := unwrapBearer(authToken); t != "" {
		return t, SourceAuth
	}
	if t, ok := bearerToken(authorizationHeader); ok && t != "" {
		return t, SourceHeader
	}
	// A repeated ?token= yields its first value. Get is nil-safe.
	if t := unwrapBearer(query.Get("token")); t != "" {
		return t, SourceQuery
	}
	return "", SourceNone
}

// bearerToken parses an Authorization header value. ok is false when the
// header does not use the Bearer scheme.
func bearerToken(h string) (token string, ok bool) {
	h = strings.TrimSpace(h)
	const scheme = "bearer"
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	rest := h[len(scheme):]
	if rest == "" {
		return "", true // "Bearer" with nothing after it: Bearer scheme, no token
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "BearerXYZ" is some other scheme
	}
	return strings.TrimSpace(rest), true
}

// unwrapBearer trims v and removes an optional leading "Bearer " scheme.
func unwrapBearer(v string) string {
	v = strings.TrimSpace(v)
	if t, ok := bearerToken(v); ok {
		return t
	}
	return v
}
