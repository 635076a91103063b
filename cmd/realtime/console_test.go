package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsole: the development console (gateway/console) is served at / in
// development mode only, and publishes through the API without a key from
// the page.
func TestConsole(t *testing.T) {
	dev := startServer(t, baseEnv())
	dev.waitLog("Console    http://localhost:")
	code, body := get(t, dev.url+"/")
	if code != http.StatusOK || !strings.Contains(body, "/console/console.js") {
		t.Fatalf("dev GET /: %d %s", code, body)
	}
	if code, _ := get(t, dev.url+"/console/console.js"); code != http.StatusOK {
		t.Errorf("dev GET /console/console.js: %d", code)
	}
	resp, err := http.Post(dev.url+"/dev/publish", "application/json",
		strings.NewReader(`[{"event":"invoice:created","payload":{"organizationId":"org_demo","invoiceId":"inv_1"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("dev POST /dev/publish: %d", resp.StatusCode)
	}

	prod := startServer(t, baseEnv("JWT_SECRET", "production-secret-0123456789abcdef", "API_KEYS", "production-key-0123456789abcdef"))
	if code, body := get(t, prod.url+"/"); code != http.StatusNotFound || strings.Contains(body, "console") {
		t.Errorf("production GET /: %d %s", code, body)
	}
	resp, err = http.Post(prod.url+"/dev/publish", "application/json", strings.NewReader(`[]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("production POST /dev/publish: %d", resp.StatusCode)
	}
}
