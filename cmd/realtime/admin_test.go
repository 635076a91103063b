package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestAdmin: ADMIN_KEY and ADMIN_UI_PASSWORD turn on the status endpoint
// and the Admin UI's namespace; without them, neither exists.
func TestAdmin(t *testing.T) {
	const (
		secret   = "admin-binary-secret-0123456789abcdef"
		key      = "admin-binary-key-0123456789abcdef"
		password = "admin-binary-password-0123"
	)
	srv := startServer(t, baseEnv("JWT_SECRET", secret, "ADMIN_KEY", key, "ADMIN_UI_PASSWORD", password))
	srv.waitLog(`"msg":"admin","status":true,"ui":true`, `"namespace":"/admin","operations":false,"events":false`)

	tok, err := auth.Mint(secret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1"}, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := sioclient.Start(t)
	c := d.Connect(srv.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}})
	c.WaitConnect()
	c.Next("connected")

	if code, body := get(t, srv.url+admin.StatusPath); code != http.StatusUnauthorized || !strings.Contains(body, `"code": "unauthorized"`) {
		t.Errorf("status without the key: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.url+admin.StatusPath, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || st.Cluster.Mode != "single" || st.Cluster.Connections != 1 ||
		len(st.Organizations) != 1 || st.Organizations[0].OrganizationID != "org-1" {
		t.Errorf("status: %d %+v %v", res.StatusCode, st, err)
	}

	ui := d.Connect(srv.url+"/admin", sioclient.Options{Auth: map[string]any{"username": "admin", "password": password}, Reconnection: new(false)})
	ui.WaitConnect()
	if ev := ui.Next("all_sockets"); !strings.Contains(string(ev.Args[0]), `"organizationId":"org-1"`) {
		t.Errorf("all_sockets %s", ev)
	}
	ui.Close()
	c.Close()
	srv.stop()
	if out := srv.output(); strings.Contains(out, password) || strings.Contains(out, key) {
		t.Errorf("a credential reached the logs:\n%s", out)
	}

	// Not configured: no status, no namespace.
	plain := startServer(t, baseEnv("JWT_SECRET", secret))
	if code, _ := get(t, plain.url+admin.StatusPath); code != http.StatusNotFound {
		t.Errorf("status without ADMIN_KEY: %d, want 404", code)
	}
	refused := d.Connect(plain.url+"/admin", sioclient.Options{Auth: map[string]any{"username": "admin", "password": password}, Reconnection: new(false)})
	if got := refused.WaitConnectError().Message; got != "Invalid namespace" {
		t.Errorf("admin namespace without configuration: %q", got)
	}
	plain.stop()
}
