package engineio

import (
	"net/http"
	"net/textproto"
	"sort"
)

// Header is a compact, read-only set of HTTP headers: what a session keeps
// of its handshake for as long as it lives. It holds name/value pairs in
// one slice (names canonical, a name repeated for each of its values),
// about a tenth of the memory of an http.Header map for a few headers.
type Header []string

// NewHeader copies h, in name order.
func NewHeader(h http.Header) Header {
	names := make([]string, 0, len(h))
	n := 0
	for k, v := range h {
		names = append(names, k)
		n += len(v)
	}
	sort.Strings(names)
	out := make(Header, 0, 2*n)
	for _, k := range names {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		for _, v := range h[k] {
			out = append(out, ck, v)
		}
	}
	return out
}

// Get returns the first value of the named header, "" when absent.
func (h Header) Get(name string) string {
	name = textproto.CanonicalMIMEHeaderKey(name)
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] == name {
			return h[i+1]
		}
	}
	return ""
}

// Values returns every value of the named header.
func (h Header) Values(name string) []string {
	name = textproto.CanonicalMIMEHeaderKey(name)
	var out []string
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] == name {
			out = append(out, h[i+1])
		}
	}
	return out
}

// HTTP returns the headers as a new http.Header.
func (h Header) HTTP() http.Header {
	out := make(http.Header, len(h)/2)
	for i := 0; i+1 < len(h); i += 2 {
		out[h[i]] = append(out[h[i]], h[i+1])
	}
	return out
}

// headerHasToken reports whether a comma-separated header (Connection,
// Upgrade) holds token, compared without case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for len(v) > 0 {
			var part string
			if i := indexComma(v); i >= 0 {
				part, v = v[:i], v[i+1:]
			} else {
				part, v = v, ""
			}
			if equalFoldTrim(part, token) {
				return true
			}
		}
	}
	return false
}

func indexComma(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return i
		}
	}
	return -1
}

func equalFoldTrim(s, token string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(token) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], token[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
