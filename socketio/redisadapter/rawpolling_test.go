package redisadapter_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// rawPolling is a bare long-polling Engine.IO client: it shows the packets
// in the order the server sent them (socket.io-client reorders events
// received before the CONNECT reply), and it can stop polling without a
// word, a drop the server notices only at its ping timeout.
type rawPolling struct {
	t      *testing.T
	base   string
	client *http.Client
}

// dialPolling performs a polling handshake with the server at baseURL.
func dialPolling(t *testing.T, baseURL string) *rawPolling {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &rawPolling{t: t, base: baseURL + "/socket.io/?EIO=4&transport=polling", client: &http.Client{Transport: tr, Timeout: waitTimeout}}
	body := c.do(http.MethodGet, "")
	var open struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(body, "0{") || json.Unmarshal([]byte(body[1:]), &open) != nil {
		t.Fatalf("handshake %q", body)
	}
	c.base += "&sid=" + url.QueryEscape(open.SID)
	return c
}

func (c *rawPolling) do(method, body string) string {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		if b, err = io.ReadAll(resp.Body); err == nil && resp.StatusCode != http.StatusOK {
			err = errors.New(resp.Status + ": " + string(b))
		}
		if err == nil {
			return string(b)
		}
	}
	c.t.Fatalf("polling %s: %v", method, err)
	return ""
}

// poll returns the packets of one GET.
func (c *rawPolling) poll() []string { return strings.Split(c.do(http.MethodGet, ""), "\x1e") }

// post sends packets.
func (c *rawPolling) post(pkts ...string) { c.do(http.MethodPost, strings.Join(pkts, "\x1e")) }

// connect sends CONNECT to "/" with auth and returns the packets polled
// until the CONNECT reply included.
func (c *rawPolling) connect(auth string) []string {
	c.t.Helper()
	c.post("40" + auth)
	var pkts []string
	for !slices.ContainsFunc(pkts, func(p string) bool { return strings.HasPrefix(p, "40") || strings.HasPrefix(p, "44") }) {
		pkts = append(pkts, c.poll()...)
	}
	return pkts
}

// connectReply decodes a CONNECT reply 40{"sid","pid"}.
func connectReply(t *testing.T, pkt string) (sid, pid string) {
	t.Helper()
	var v struct{ SID, PID string }
	if !strings.HasPrefix(pkt, "40{") || json.Unmarshal([]byte(pkt[2:]), &v) != nil || len(v.SID) != 20 {
		t.Fatalf("packet %q, want a CONNECT reply", pkt)
	}
	return v.SID, v.PID
}

// eventOffset checks that pkt is the event name and returns its offset
// (its last argument).
func eventOffset(t *testing.T, pkt, name string) string {
	t.Helper()
	var args []any
	if !strings.HasPrefix(pkt, "42") || json.Unmarshal([]byte(pkt[2:]), &args) != nil || len(args) < 2 || args[0] != name {
		t.Fatalf("packet %q, want the event %s with an offset", pkt, name)
	}
	off, _ := args[len(args)-1].(string)
	return off
}
