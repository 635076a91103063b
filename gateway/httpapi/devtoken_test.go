package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/httpapi"
)

// TestDevToken: the endpoint exists only when configured, and mints tokens
// the gateway's verifier accepts.
func TestDevToken(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{})
	r := do(t, http.MethodPost, url+httpapi.PathDevToken, strings.NewReader(`{"organizationId":"o","userId":"u"}`))
	if e := r.errorBody(t); r.status != http.StatusNotFound || e.Code != httpapi.CodeNotFound {
		t.Fatalf("without DevTokens: %d %s", r.status, r.body)
	}

	const secret = "dev-secret-0123456789abcdef0123456789"
	url, _ = newAPI(t, httpapi.Config{DevTokens: &httpapi.DevTokens{Secret: secret}})
	c := apiclient.New(url, "")
	resp, err := c.DevToken(context.Background(), apiclient.DevTokenRequest{OrganizationID: "org-1", UserID: "user-1", Role: "admin", TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), resp.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != "user-1" || claims.OrganizationID != "org-1" || claims.Role != "admin" ||
		time.Until(claims.ExpiresAt) > 10*time.Minute || time.Until(claims.ExpiresAt) < 9*time.Minute ||
		resp.ExpiresAt != claims.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("claims %+v, answer %+v", claims, resp)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"userId":"u"}`, "organizationId"},
		{`{"organizationId":"o"}`, "userId"},
		{`{"organizationId":"o","userId":"u","ttl":"forever"}`, "ttl"},
		{`{"organizationId":"o","userId":"u","ttl":"48h"}`, "ttl"},
		{`{"organizationId":"o","userId":"u","admin":true}`, ""},
		{`{"organizationId":"o","userId":"u"} {}`, ""},
		{`nope`, ""},
	} {
		r := do(t, http.MethodPost, url+httpapi.PathDevToken, strings.NewReader(tc.body))
		if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Field != tc.field {
			t.Errorf("%s: %d %s, want 400 field %q", tc.body, r.status, r.body, tc.field)
		}
	}
	if r := do(t, http.MethodGet, url+httpapi.PathDevToken, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /dev/token: %d", r.status)
	}
}
