package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/httpapi"
)

func TestPresenceEndpoint(t *testing.T) {
	var asked []string
	url, _ := newAPI(t, httpapi.Config{Presence: func(_ context.Context, org string) (apiclient.Presence, error) {
		asked = append(asked, org)
		if org == "down" {
			return apiclient.Presence{}, errBoom
		}
		return apiclient.Presence{OrganizationID: org, Users: []apiclient.PresenceUser{{UserID: "u1", Connections: 2, Since: "2026-12-02T16:00:00.000Z"}}}, nil
	}})
	auth := []string{"Authorization", "Bearer " + key1}

	r := do(t, http.MethodGet, url+"/api/v1/organizations/org%2F1/presence", nil, auth...)
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var p apiclient.Presence
	r.decode(t, &p)
	if p.OrganizationID != "org/1" || len(p.Users) != 1 || p.Users[0] != (apiclient.PresenceUser{UserID: "u1", Connections: 2, Since: "2026-12-02T16:00:00.000Z"}) {
		t.Fatalf("presence = %+v", p)
	}
	if len(asked) != 1 || asked[0] != "org/1" {
		t.Fatalf("asked for %q, want the path-unescaped id", asked)
	}

	// The Go client reads the same.
	got, err := apiclient.New(url, key1).Presence(context.Background(), "org/1")
	if err != nil || got.OrganizationID != "org/1" || len(got.Users) != 1 {
		t.Fatalf("client: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name, path string
		headers    []string
		status     int
		code       string
	}{
		{"no key", "/api/v1/organizations/o1/presence", nil, 401, httpapi.CodeUnauthorized},
		{"wrong key", "/api/v1/organizations/o1/presence", []string{"Authorization", "Bearer nope-nope-nope-nope-nope"}, 403, httpapi.CodeForbidden},
		{"surrogate", "/api/v1/organizations/o%ED%A0%801/presence", auth, 400, httpapi.CodeInvalidOrganization},
		{"replacement", "/api/v1/organizations/o%EF%BF%BD/presence", auth, 400, httpapi.CodeInvalidOrganization},
		{"control", "/api/v1/organizations/o%0A/presence", auth, 400, httpapi.CodeInvalidOrganization},
		{"unavailable", "/api/v1/organizations/down/presence", auth, 503, httpapi.CodePresenceUnavailable},
	} {
		r := do(t, http.MethodGet, url+tc.path, nil, tc.headers...)
		if e := r.errorBody(t); r.status != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, r.status, e, tc.status, tc.code)
		}
	}
	r = do(t, http.MethodPost, url+"/api/v1/organizations/o1/presence", nil, auth...)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestPresenceEndpointOff(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{})
	r := do(t, http.MethodGet, url+"/api/v1/organizations/o1/presence", nil, "Authorization", "Bearer "+key1)
	if e := r.errorBody(t); r.status != http.StatusNotFound || e.Code != httpapi.CodeNotFound {
		t.Fatalf("without presence: %d %+v, want 404 not_found", r.status, e)
	}
}
