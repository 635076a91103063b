package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDevEndpointsRefuseForeignHosts: a development server on loopback
// answers /dev/token and /dev/publish only for a Host naming this machine:
// a page of another site, whose name was rebound to 127.0.0.1, sends its
// own name and gets a 403 with a JSON error.
func TestDevEndpointsRefuseForeignHosts(t *testing.T) {
	srv := startServer(t, baseEnv())
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	post := func(path, host, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const token = `{"organizationId":"o","userId":"u"}`
	const batch = `[{"event":"invoice:created","payload":{"organizationId":"o","invoiceId":"inv_1"}}]`
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port, "localhost.evil.example:" + port} {
		for _, c := range []struct{ path, body string }{{"/dev/token", token}, {"/dev/publish", batch}} {
			code, body := post(c.path, host, c.body)
			var e struct{ Code, Message string }
			if code != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Code != "forbidden_host" {
				t.Errorf("POST %s with Host %s: %d %s, want 403 forbidden_host", c.path, host, code, body)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "localhost", "[::1]:" + port, "app.localhost:" + port} {
		if code, body := post("/dev/token", host, token); code != http.StatusOK {
			t.Errorf("POST /dev/token with Host %s: %d %s, want 200", host, code, body)
		}
	}
	// The page itself is static: served whatever the Host.
	req, _ := http.NewRequest(http.MethodGet, srv.url+"/", nil)
	req.Host = "evil.example:" + port
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / with a foreign Host: %d", resp.StatusCode)
	}
}

func TestIsLocalHost(t *testing.T) {
	local := []string{"localhost", "LOCALHOST:3000", "localhost.", "a.localhost:1", "127.0.0.1", "127.0.0.1:3000",
		"127.1.2.3:80", "[::1]", "[::1]:3000", "[::ffff:127.0.0.1]:3000"}
	foreign := []string{"", "evil.example", "evil.example:3000", "localhost.evil.example", "127.0.0.1.nip.io",
		"10.0.0.1:3000", "[2001:db8::1]:3000", "0.0.0.0"}
	for _, host := range local {
		if !isLocalHost(host) {
			t.Errorf("isLocalHost(%q) = false, want true", host)
		}
	}
	for _, host := range foreign {
		if isLocalHost(host) {
			t.Errorf("isLocalHost(%q) = true, want false", host)
		}
	}
}
