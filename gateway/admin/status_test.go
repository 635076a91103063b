package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// getStatus requests the status with the given Authorization header (none
// when empty) and returns the status code and body.
func getStatus(t *testing.T, url, authorization string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, body
}

func status(t *testing.T, n *node, query string) admin.Status {
	t.Helper()
	code, _, body := getStatus(t, n.url+admin.StatusPath+query, "Bearer "+adminKey)
	if code != http.StatusOK {
		t.Fatalf("status: %d %s", code, body)
	}
	var st admin.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status: %v: %s", err, body)
	}
	return st
}

// TestStatusRefusedWithoutKey: no key, a wrong key, another scheme: 401
// with a JSON body, and nothing of the status.
func TestStatusRefusedWithoutKey(t *testing.T) {
	n := startNode(t, nodeOptions{key: adminKey})
	for _, authorization := range []string{"", "Bearer wrong-key-0123456789abcdef", "Basic " + adminKey, adminKey, "Bearer"} {
		code, h, body := getStatus(t, n.url+admin.StatusPath, authorization)
		var e struct{ Code, Message string }
		if code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Code != "unauthorized" || e.Message == "" {
			t.Errorf("Authorization %q: %d %s", authorization, code, body)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: headers %v", authorization, h)
		}
	}
	res, err := http.Post(n.url+admin.StatusPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	if code, _, body := getStatus(t, n.url+admin.StatusPath+"?top=0", "Bearer "+adminKey); code != http.StatusBadRequest {
		t.Errorf("top=0: %d %s", code, body)
	}
}

// TestStatus: one node's connections by transport, its busiest
// organizations, and the rate of the events published.
func TestStatus(t *testing.T) {
	n := startNode(t, nodeOptions{id: "solo", key: adminKey})
	d := sioclient.Start(t)
	tokens := []string{}
	for _, u := range []struct{ org, user string }{{"org_a", "u1"}, {"org_a", "u2"}, {"org_a", "u3"}, {"org_b", "u4"}, {"org_c", "u5"}} {
		tok := token(t, u.org, u.user)
		tokens = append(tokens, tok)
		o := sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}}
		if u.user == "u5" {
			o.Transports = []string{"polling"}
		}
		join(t, d, n, u.org, u.user, o)
	}
	svc := events.NewEventsService(n.gw)
	for range 3 {
		if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org_a", InvoiceID: "inv-1"}); err != nil {
			t.Fatal(err)
		}
	}

	code, _, body := getStatus(t, n.url+admin.StatusPath+"?top=2", "bearer "+adminKey)
	if code != http.StatusOK {
		t.Fatalf("status: %d %s", code, body)
	}
	for _, secret := range append(tokens, adminKey, testSecret) {
		if strings.Contains(string(body), secret) {
			t.Fatalf("the status shows a secret: %s", body)
		}
	}
	var st admin.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	c := st.Cluster
	if st.Node != "solo" || c.Mode != "single" || c.Nodes != 1 || !c.Complete || c.Connections != 5 ||
		c.Transports["websocket"] != 4 || c.Transports["polling"] != 1 || c.Organizations != 3 {
		t.Errorf("cluster %+v (node %s)", c, st.Node)
	}
	want := []admin.OrganizationCount{{OrganizationID: "org_a", Connections: 3}, {OrganizationID: "org_b", Connections: 1}}
	if !slices.Equal(st.Organizations, want) {
		t.Errorf("busiest %v, want %v", st.Organizations, want)
	}
	if len(st.Nodes) != 1 {
		t.Fatalf("nodes %+v", st.Nodes)
	}
	node := st.Nodes[0]
	if node.ID != "solo" || node.Connections != 5 || node.EngineSessions != 5 || node.Organizations != 3 || node.Redis != nil || node.UptimeSeconds <= 0 {
		t.Errorf("node %+v", node)
	}
	for _, w := range []string{"1m", "5m"} {
		r := node.Rates[w]
		if r.WindowSeconds <= 0 || r.EventsPublished <= 0 || r.ByEvent["invoice:paid"] != r.EventsPublished ||
			r.ConnectionsAccepted <= 0 || r.PacketsOut <= 0 || r.BytesOut <= 0 {
			t.Errorf("rates %s: %+v", w, r)
		}
		if c.Rates[w].EventsPublished != r.EventsPublished {
			t.Errorf("cluster rates %s: %+v, node's %+v", w, c.Rates[w], r)
		}
	}
}
