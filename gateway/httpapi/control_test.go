package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/operate/realtime/gateway/httpapi"
)

// TestControlDisabled: without a Controller, the control routes answer
// 404 control_disabled (after the API key), never a panic.
func TestControlDisabled(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{})
	for _, path := range []string{"/api/v1/users/u1/disconnect", "/api/v1/revocations", "/api/v1/organizations/o/users/u/leave"} {
		req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+key1)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"control_disabled"`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}
