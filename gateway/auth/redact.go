package auth

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// redactKeep is how many leading characters Redact keeps. Six characters of a
// JWT are always "eyJhbG" (the encoded `{"alg`), so they say "this was a JWT"
// without revealing anything.
const redactKeep = 6

// Redact returns a log-safe stand-in for a token: its first six characters
// followed by "…", or just "…" for a token too short for that to be safe
// (a short value could be a whole secret). It returns "" for "".
func Redact(token string) string {
	if token == "" {
		return ""
	}
	if utf8.RuneCountInString(token) < 2*redactKeep {
		return "…"
	}
	i, n := 0, 0
	for i < len(token) && n < redactKeep {
		_, size := utf8.DecodeRuneInString(token[i:])
		i += size
		n++
	}
	return token[:i] + "…"
}

// isSecretParam reports whether a query parameter name carries a credential.
// Only names are compared (case-insensitively, since intermediaries and
// clients are inconsistent about case).
func isSecretParam(name string) bool {
	switch strings.ToLower(name) {
	case "token", "access_token", "id_token", "refresh_token":
		return true
	}
	return false
}

// RedactURL returns u with the values of its token, access_token, id_token and
// refresh_token query parameters replaced by Redact(value), for request logs.
// It accepts absolute URLs and request URIs ("/socket.io/?EIO=4&token=...")
// and rewrites only those values, leaving parameter order and encoding of
// everything else untouched so the log line still matches what was received.
// A string that is not a URL is handled the same way (everything after the
// first '?' is treated as the query) rather than being logged unredacted.
func RedactURL(u string) string {
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	end := len(u)
	if h := strings.IndexByte(u[q:], '#'); h >= 0 {
		end = q + h
	}
	query := u[q+1 : end]
	if query == "" {
		return u
	}

	var b strings.Builder
	changed := false
	for i, part := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, value, hasValue := strings.Cut(part, "=")
		unescapedName, err := url.QueryUnescape(name)
		if err != nil {
			unescapedName = name
		}
		if !hasValue || value == "" || !isSecretParam(unescapedName) {
			b.WriteString(part)
			continue
		}
		// Redact the raw (still escaped) value: its prefix cannot contain a
		// '&' or '#' that would change how the logged URL reads.
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(Redact(value))
		changed = true
	}
	if !changed {
		return u
	}
	return u[:q+1] + b.String() + u[end:]
}
