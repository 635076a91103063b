package auth

import (
	"net/url"
	"testing"
)

func TestExtractToken(t *testing.T) {
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name       string
		auth, hdr  string
		query      url.Values
		wantToken  string
		wantSource Source
	}{
		{"nothing", "", "", nil, "", SourceNone},
		{"empty query", "", "", q(), "", SourceNone},
		{"auth only", "a.b.c", "", nil, "a.b.c", SourceAuth},
		{"header only", "", "Bearer h.h.h", nil, "h.h.h", SourceHeader},
		{"query only", "", "", q("token", "q.q.q"), "q.q.q", SourceQuery},
		{"auth beats header and query", "a.a.a", "Bearer h.h.h", q("token", "q.q.q"), "a.a.a", SourceAuth},
		{"header beats query", "", "Bearer h.h.h", q("token", "q.q.q"), "h.h.h", SourceHeader},
		{"blank auth falls through", "   ", "Bearer h.h.h", nil, "h.h.h", SourceHeader},
		{"auth is trimmed", "  a.a.a \n", "", nil, "a.a.a", SourceAuth},
		{"auth with Bearer prefix is unwrapped", "Bearer a.a.a", "", nil, "a.a.a", SourceAuth},
		{"bearer is case-insensitive", "", "bEaReR h.h.h", nil, "h.h.h", SourceHeader},
		{"BEARER upper case", "", "BEARER h.h.h", nil, "h.h.h", SourceHeader},
		{"header spaces trimmed", "", "  Bearer    h.h.h  ", nil, "h.h.h", SourceHeader},
		{"tab after scheme", "", "Bearer\th.h.h", nil, "h.h.h", SourceHeader},
		{"Basic header is not a token", "", "Basic dXNlcjpwYXNz", nil, "", SourceNone},
		{"Basic header falls through to query", "", "Basic dXNlcjpwYXNz", q("token", "q.q.q"), "q.q.q", SourceQuery},
		{"scheme-less header is not a token", "", "h.h.h", nil, "", SourceNone},
		{"BearerX is another scheme", "", "Bearerh.h.h", nil, "", SourceNone},
		{"Bearer without token", "", "Bearer", q("token", "q.q.q"), "q.q.q", SourceQuery},
		{"Bearer with only spaces", "", "Bearer    ", nil, "", SourceNone},
		{"query trimmed", "", "", q("token", " q.q.q "), "q.q.q", SourceQuery},
		{"query empty value", "", "", q("token", ""), "", SourceNone},
		{"first query value wins", "", "", q("token", "one", "token", "two"), "one", SourceQuery},
		{"access_token is not read", "", "", q("access_token", "x.y.z"), "", SourceNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, src := ExtractToken(tt.auth, tt.hdr, tt.query)
			if tok != tt.wantToken || src != tt.wantSource {
				t.Errorf("ExtractToken = (%q, %v), want (%q, %v)", tok, src, tt.wantToken, tt.wantSource)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceNone: "none", SourceAuth: "auth", SourceHeader: "header", SourceQuery: "query", Source(42): "none"} {
		if got := s.String(); got != want {
			t.Errorf("Source(%d).String() = %q, want %q", s, got, want)
		}
	}
}
