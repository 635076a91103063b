package main

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Frames as Centrifugo v6 writes them with its JSON protocol: several
// replies and pushes in one WebSocket frame, separated by newlines.

func TestCentrifugoFrameSplitsIntoMessages(t *testing.T) {
	frame := []byte(`{"push":{"channel":"org:org_00001","pub":{"data":{"event":"invoice:created","payload":{"sentAt":"1700000000000000001"}}}}}` + "\n" +
		`{}` + "\n" +
		`{"push":{"channel":"org:org_00001","pub":{"data":{"event":"invoice:created","payload":{"sentAt":"1700000000000000002"}},"offset":7}}}`)
	var kinds []cfKind
	var sent []int64
	for msg := range cfMessages(frame) {
		m := parseCentrifugo(msg)
		kinds = append(kinds, m.kind)
		if m.kind == cfPub {
			if m.channel != "org:org_00001" {
				t.Errorf("channel %q", m.channel)
			}
			i := strings.Index(string(m.data), string(sentAtMark))
			if i < 0 {
				t.Fatalf("no sentAt in %q", m.data)
			}
			n, ok := parseNanos(m.data[i+len(sentAtMark):])
			if !ok {
				t.Fatalf("sentAt of %q", m.data)
			}
			sent = append(sent, n)
		}
	}
	if want := []cfKind{cfPub, cfPing, cfPub}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if want := []int64{1700000000000000001, 1700000000000000002}; !slices.Equal(sent, want) {
		t.Fatalf("sentAt %v, want %v", sent, want)
	}
}

func TestCentrifugoFrameToleratesEmptyLinesAndTrailingNewline(t *testing.T) {
	n := 0
	for msg := range cfMessages([]byte("{}\n\n{}\n")) {
		if parseCentrifugo(msg).kind != cfPing {
			t.Fatalf("%q is not a ping", msg)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

func TestCentrifugoReplies(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want cfMsg
	}{
		{`{"id":1,"connect":{"client":"5d7b…","version":"6.9.1","subs":{"org:org_00003":{}},"ping":10,"pong":true}}`,
			cfMsg{kind: cfConnected, id: 1, ping: 10}},
		{`{"id":1,"error":{"code":109,"message":"token expired"}}`, cfMsg{kind: cfError, id: 1, err: "109 token expired"}},
		{`{"push":{"disconnect":{"code":3501,"reason":"bad request"}}}`, cfMsg{kind: cfDisconnect, err: "3501 bad request"}},
		{`{"push":{"channel":"org:org_00003","join":{"info":{"user":"u3"}}}}`, cfMsg{kind: cfOther}},
		{`{"id":2,"publish":{}}`, cfMsg{kind: cfOther, id: 2}},
		{`{ }`, cfMsg{kind: cfPing}},
		{`not json`, cfMsg{kind: cfMalformed}},
		{`{"push":{"channel":"org:x","pub":`, cfMsg{kind: cfMalformed}}, // cut short
	} {
		got := parseCentrifugo([]byte(tc.msg))
		if got.kind != tc.want.kind || got.id != tc.want.id || got.err != tc.want.err || got.ping != tc.want.ping || got.data != nil {
			t.Errorf("%s: got %+v, want %+v", tc.msg, got, tc.want)
		}
	}
}

// A publication whose fields come in another order than the encoder's (or
// with an id first) is still a publication: the slow path decodes it.
func TestCentrifugoPublicationInAnotherLayout(t *testing.T) {
	m := parseCentrifugo([]byte(`{"push":{"pub":{"offset":3,"data":{"payload":{"sentAt":"42"}}},"channel":"org:org_00000"}}`))
	if m.kind != cfPub || m.channel != "org:org_00000" || !strings.Contains(string(m.data), `"sentAt":"42"`) {
		t.Fatalf("got %+v (%s)", m, m.data)
	}
}

// The worker counts each publication of a frame once and records its
// latency; pings are not publications.
func TestCentrifugoCountsPublications(t *testing.T) {
	w := &worker{}
	cl := &client{g: 3}
	now := time.Now().UnixNano()
	frame := `{"push":{"channel":"org:org_00000","pub":{"data":{"payload":{"sentAt":"` + strconv.FormatInt(now, 10) + `"}}}}}` + "\n{}\n" +
		`{"push":{"channel":"org:org_00000","pub":{"data":{"payload":{"sentAt":"` + strconv.FormatInt(now, 10) + `"}}}}}` + "\n[1,2]"
	for msg := range cfMessages([]byte(frame)) {
		w.count(cl, parseCentrifugo(msg))
	}
	if w.received.Load() != 2 || w.malformed.Load() != 1 {
		t.Fatalf("received %d, malformed %d; want 2, 1", w.received.Load(), w.malformed.Load())
	}
	if h := w.latency.snapshot(); h.count() != 2 {
		t.Fatalf("%d latencies recorded, want 2", h.count())
	}
}

// The connect command carries the token; the token carries the
// organization's channel, which Centrifugo subscribes the connection to.
func TestCentrifugoSetupMintsChannelsClaim(t *testing.T) {
	w := &worker{}
	if r := w.do(Cmd{Op: "setup", Secret: "s3cret-0123456789abcdef", Event: "invoice:created", Targets: []string{"127.0.0.1:1"},
		Sources: []string{"127.0.0.1"}, First: 10, Count: 3, Orgs: 4, UpgradePercent: 100, Protocol: protoCentrifugo}); r.Err != "" {
		t.Fatal(r.Err)
	}
	for i, cl := range w.clients {
		if cl.transport != transportWebSocket {
			t.Errorf("client %d: transport %v, want WebSocket (Centrifugo has no polling)", i, cl.transport)
		}
		var cmd struct {
			ID      int `json:"id"`
			Connect struct {
				Token string `json:"token"`
			} `json:"connect"`
		}
		if err := json.Unmarshal(cl.connect, &cmd); err != nil || cmd.ID != 1 {
			t.Fatalf("connect command %s: %v", cl.connect, err)
		}
		parts := strings.Split(cmd.Connect.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("token %q", cmd.Connect.Token)
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Sub      string   `json:"sub"`
			Channels []string `json:"channels"`
			Exp      int64    `json:"exp"`
		}
		if err := json.Unmarshal(raw, &claims); err != nil {
			t.Fatal(err)
		}
		g := 10 + i
		if claims.Sub != User(g) || !slices.Equal(claims.Channels, []string{orgChannel(g % 4)}) || claims.Exp <= time.Now().Unix() {
			t.Errorf("client %d: claims %+v", g, claims)
		}
	}
}

func TestCentrifugoConfig(t *testing.T) {
	b, err := centrifugoConfig(serverSpec{secret: "sec", apiKey: "key", pingInterval: 10 * time.Second, redisURL: "redis://127.0.0.1:7000"}, "127.0.0.1", 9000)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		HTTPServer struct {
			Address string `json:"address"`
			Port    int    `json:"port"`
		} `json:"http_server"`
		Client struct {
			Token struct {
				HMAC string `json:"hmac_secret_key"`
			} `json:"token"`
			PingInterval string `json:"ping_interval"`
			PongTimeout  string `json:"pong_timeout"`
		} `json:"client"`
		Channel struct {
			Namespaces []map[string]any `json:"namespaces"`
		} `json:"channel"`
		HTTPAPI struct {
			Key string `json:"key"`
		} `json:"http_api"`
		Health struct {
			Enabled bool `json:"enabled"`
		} `json:"health"`
		Engine struct {
			Type  string `json:"type"`
			Redis struct {
				Address []string `json:"address"`
			} `json:"redis"`
		} `json:"engine"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPServer.Port != 9000 || c.HTTPServer.Address != "127.0.0.1" || c.Client.Token.HMAC != "sec" || c.HTTPAPI.Key != "key" ||
		!c.Health.Enabled || c.Client.PingInterval != "10s" || c.Client.PongTimeout != "8s" ||
		len(c.Channel.Namespaces) != 1 || c.Channel.Namespaces[0]["name"] != "org" ||
		c.Engine.Type != "redis" || !slices.Equal(c.Engine.Redis.Address, []string{"redis://127.0.0.1:7000"}) {
		t.Fatalf("config:\n%s", b)
	}
	if got := centrifugoPongTimeout(5 * time.Second); got != 2500*time.Millisecond {
		t.Fatalf("pong timeout for a 5 s ping interval: %v (must stay below it)", got)
	}
}

func TestCentrifugoBatchBodyAndErrors(t *testing.T) {
	p := newPublisher(kindCentrifugo, "127.0.0.1:1", "k", "invoice:created", 1)
	var body struct {
		Commands []struct {
			Publish struct {
				Channel string `json:"channel"`
				Data    struct {
					Event   string `json:"event"`
					Payload struct {
						OrganizationID string `json:"organizationId"`
						SentAt         string `json:"sentAt"`
					} `json:"payload"`
				} `json:"data"`
			} `json:"publish"`
		} `json:"commands"`
	}
	raw := p.batchBody(2, 3, 123)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if len(body.Commands) != 3 {
		t.Fatalf("%d commands: %s", len(body.Commands), raw)
	}
	for _, c := range body.Commands {
		if c.Publish.Channel != orgChannel(2) || c.Publish.Data.Event != "invoice:created" ||
			c.Publish.Data.Payload.OrganizationID != Org(2) || c.Publish.Data.Payload.SentAt != "123" {
			t.Fatalf("command %+v", c)
		}
	}
	if err := cfBatchError([]byte(`{"replies":[{"publish":{}},{"publish":{}}]}`)); err != nil {
		t.Fatal(err)
	}
	err := cfBatchError([]byte(`{"replies":[{"publish":{}},{"error":{"code":102,"message":"unknown channel"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "1 of 2 publish commands refused: 102 unknown channel") {
		t.Fatalf("error %v", err)
	}
	if cfBatchError([]byte(`<html>`)) == nil {
		t.Fatal("a body that is not a batch response passed")
	}
	// Ours keeps its JSON array.
	if got := string(newPublisher(kindOurs, "x", "k", "e", 1).batchBody(0, 2, 1)); !strings.HasPrefix(got, `[{"event":"e"`) || !strings.HasSuffix(got, `}]`) {
		t.Fatalf("ours' batch %s", got)
	}
}

// With both peers the report has a column per server and ours' ratio to
// each; issue 14's targets are checked against Centrifugo.
func TestReportShowsBothRatios(t *testing.T) {
	results := []Result{
		{Scenario: "storm", Server: kindNode, Rep: 1, M: map[string]float64{"storm_per_sec": 1000, "storm_cpu_us": 800}},
		{Scenario: "storm", Server: kindCentrifugo, Rep: 1, M: map[string]float64{"storm_per_sec": 5000, "storm_cpu_us": 225}},
		{Scenario: "storm", Server: kindOurs, Rep: 1, M: map[string]float64{"storm_per_sec": 4000, "storm_cpu_us": 250}},
	}
	rep := buildReport(resultsFile{Repeat: 1, Machine: machineInfo{Centrifugo: "github.com/centrifugal/centrifugo/v6 v6.9.1, go1.26.8"}, Results: results})
	for _, want := range []string{
		"# realtime-bench: ours vs Node socket.io 4.8.4 and Centrifugo v6.9.1",
		"| metric | ours | Node | Centrifugo | ours/Node | ours/Centrifugo |",
		"| reconnection rate (JWT verified) (/s) | 4,000 | 1,000 | 5,000 | 4.00× | 0.80× |",
		"| server CPU per handshake (µs) | 250 | 800 | 225 | 3.20× | 0.90× |",
		"## Targets (issue 14)",
		"| reconnection storm rate ≥ 1.5× Centrifugo's | 4,000 /s | 5,000 /s | ≥ 1.5× | 0.80× | 0.8× | **MISSED** |",
		"| server CPU per JWT handshake (storm) ≤ 0.2 ms | 250 µs | 225 µs |",
		"Centrifugo's clients all connect over WebSocket",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q\n%s", want, rep)
		}
	}
	// A run without Centrifugo keeps the two-server table.
	rep = buildReport(resultsFile{Repeat: 1, Results: results[0:1:1]})
	if strings.Contains(rep, "Centrifugo |") || strings.Contains(rep, "issue 14") {
		t.Errorf("a Node-only report mentions Centrifugo\n%s", rep)
	}
}
