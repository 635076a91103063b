package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// historyAnswer is the acknowledgement of a history request.
type historyAnswer struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Events  []struct {
		Event   string          `json:"event"`
		Payload json.RawMessage `json:"payload"`
		Offset  string          `json:"offset"`
	} `json:"events"`
	Offset string `json:"offset"`
	More   bool   `json:"more"`
}

// seqs returns the seq field of each event of the answer, and checks that
// each has an offset.
func (h historyAnswer) seqs(t *testing.T) []int {
	t.Helper()
	out := []int{}
	for _, ev := range h.Events {
		var p struct {
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal(ev.Payload, &p); err != nil || ev.Offset == "" {
			t.Fatalf("history event %+v: %v", ev, err)
		}
		out = append(out, p.Seq)
	}
	return out
}

func history(t *testing.T, c *sioclient.Client, req any) historyAnswer {
	t.Helper()
	var h historyAnswer
	ack(t, c, gateway.EventHistory, req, &h)
	return h
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// historyBackends are the setups with a history: one log per namespace
// (recovery only), and per-organization and per-user histories.
var historyBackends = []struct {
	name    string
	history *gateway.HistoryOptions
}{
	{"log", nil},
	{"rooms", &gateway.HistoryOptions{Size: 100, TTL: time.Hour}},
}

func forEachHistoryBackend(t *testing.T, test func(t *testing.T, e *env)) {
	for _, b := range recoveryBackends {
		for _, h := range historyBackends {
			t.Run(b.name+"/"+h.name, func(t *testing.T) {
				adapter, _ := b.adapter(t)
				test(t, newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}, history: h.history, adapter: adapter}))
			})
		}
	}
}

// TestHistoryRequest: a client's history request returns the events of its
// organization and its user after the offset it gives, never another
// organization's (not even its own user's events there), paged by limit,
// narrowed by events and by its subscriptions' filters.
func TestHistoryRequest(t *testing.T) {
	forEachHistoryBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		first := offsetOf(t, a.Next(string(events.InvoiceCreated)))
		emitTo(t, e, events.NotificationNew, "org-1", "user-1", 2)
		emitTo(t, e, events.InvoicePaid, "org-2", "", 3)
		emitTo(t, e, events.NotificationNew, "org-1", "user-9", 4)
		emitTo(t, e, events.NotificationNew, "org-2", "user-1", 5) // user-1's, in another organization
		emitTo(t, e, events.ExpenseCreated, "org-1", "", 6)
		if _, err := e.svc.Emit(t.Context(), events.InvoiceSent, payload(t, events.InvoiceSent, "org-1", "", 7), events.Target{All: true}); err != nil {
			t.Fatal(err)
		}

		all := history(t, a, map[string]any{})
		if !all.Success || !sameInts(all.seqs(t), []int{1, 2, 6, 7}) || all.More {
			t.Fatalf("history {}: %+v", all)
		}
		if all.Events[0].Offset != first {
			t.Errorf("first event's offset %q, live it was %q", all.Events[0].Offset, first)
		}
		if h := history(t, a, map[string]any{"since": first}); !sameInts(h.seqs(t), []int{2, 6, 7}) || h.Offset != all.Offset {
			t.Fatalf("history since the first: %+v (all: offset %s)", h, all.Offset)
		}
		// Paging: limit 2, then on from the page's offset.
		p1 := history(t, a, map[string]any{"limit": 2})
		if !sameInts(p1.seqs(t), []int{1, 2}) || !p1.More || p1.Offset != p1.Events[1].Offset {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := history(t, a, map[string]any{"since": p1.Offset, "limit": 2})
		if !sameInts(p2.seqs(t), []int{6, 7}) || p2.More {
			t.Fatalf("page 2: %+v", p2)
		}
		if h := history(t, a, map[string]any{"since": p2.Offset}); !h.Success || len(h.Events) != 0 || h.Offset != p2.Offset {
			t.Fatalf("after the last: %+v", h)
		}
		if h := history(t, a, map[string]any{"events": []string{"invoice:*", "notification:new"}}); !sameInts(h.seqs(t), []int{1, 2, 7}) {
			t.Fatalf("events invoice:*, notification:new: %+v", h)
		}
		// The socket's subscriptions and filters apply.
		var sub subscribeResult
		ack(t, a, gateway.EventSubscribe, map[string]any{"events": []string{"invoice:*"}, "filter": "event == 'invoice:sent'"}, &sub)
		if !sub.Success {
			t.Fatalf("subscribe: %+v", sub)
		}
		if h := history(t, a, nil); !sameInts(h.seqs(t), []int{7}) {
			t.Fatalf("history through the filter: %+v", h)
		}

		// The other organization's reader sees its own only.
		b := e.join("org-2", "user-1", sioclient.Options{})
		if h := history(t, b, map[string]any{}); !sameInts(h.seqs(t), []int{3, 5}) {
			t.Fatalf("org-2's history: %+v", h)
		}
	})
}

// TestHistoryRequestRefusals: bad requests are refused with a code, and a
// position the history no longer covers with history_gap.
func TestHistoryRequestRefusals(t *testing.T) {
	e := newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	a := e.join("org-1", "user-1", sioclient.Options{})
	for _, c := range []struct {
		req  any
		code string
	}{
		{"since", gateway.CodeInvalidRequest},
		{map[string]any{"limit": 0}, gateway.CodeInvalidRequest},
		{map[string]any{"limit": 501}, gateway.CodeInvalidRequest},
		{map[string]any{"limit": 2.5}, gateway.CodeInvalidRequest},
		{map[string]any{"limit": "10"}, gateway.CodeInvalidRequest},
		{map[string]any{"since": 12}, gateway.CodeInvalidRequest},
		{map[string]any{"events": []string{}}, gateway.CodeInvalidRequest},
		{map[string]any{"events": []string{"nope:x"}}, gateway.CodeUnknownEvent},
		{map[string]any{"sinse": "x"}, gateway.CodeUnknownField},
		{map[string]any{"since": "not-an-offset"}, gateway.CodeHistoryGap},
		{map[string]any{"since": "1795669671091-0"}, gateway.CodeHistoryGap},
	} {
		h := history(t, a, c.req)
		if h.Success || h.Code != c.code || h.Error == "" {
			t.Errorf("history %v: %+v, want code %s", c.req, h, c.code)
		}
	}

	// Without recovery and history, there is none to read.
	plain := newEnv(t, envOptions{})
	b := plain.join("org-1", "user-1", sioclient.Options{})
	if h := history(t, b, nil); h.Success || h.Code != gateway.CodeHistoryUnavailable {
		t.Errorf("history without a log: %+v", h)
	}
}

// smallLogBackends are recoveryBackends whose namespace-wide log is small:
// 5 packets in memory, a stream of MAXLEN ~ 5 in Redis (which trims whole
// nodes of 100 entries), and how many packets of a busy organization
// trim a quiet one's out of it.
var smallLogBackends = []struct {
	name    string
	adapter func(t *testing.T) socketio.AdapterFactory
	busy    int
}{
	{"memory", func(*testing.T) socketio.AdapterFactory { return nil }, 40},
	{"redis-streams", func(t *testing.T) socketio.AdapterFactory {
		r := redistest.Start(t)
		c, err := redisadapter.New(redisadapter.Config{Addr: r.Addr, Mode: redisadapter.Streams, MaxLen: 5, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.WaitSubscribed(t.Context()); err != nil {
			t.Fatal(err)
		}
		return c.Adapter
	}, 300},
}

// TestHistoryQuietOrganizationKept: a busy organization publishes far more
// than the namespace's log keeps while a quiet one's client is away.
// Without per-organization histories the quiet client cannot recover (and
// is told); with them it recovers all it missed. A history trimmed past
// its own offset gives history:gap and history_gap.
func TestHistoryQuietOrganizationKept(t *testing.T) {
	for _, b := range smallLogBackends {
		t.Run(b.name+"/one log", func(t *testing.T) {
			e := newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute, MaxPackets: 5}, adapter: b.adapter(t)})
			quiet := e.join("org-q", "user-q", sioclient.Options{})
			emitTo(t, e, events.InvoiceCreated, "org-q", "", 1)
			quiet.Next(string(events.InvoiceCreated))
			drop(t, e, quiet)
			for i := range b.busy {
				emitTo(t, e, events.InvoiceCreated, "org-busy", "", 100+i)
			}
			quiet.Connect()
			if info := quiet.WaitConnect(); info.Recovered {
				t.Fatalf("recovered although the busy organization trimmed the log: %+v", info)
			}
			quiet.Next(gateway.EventConnected)
			quiet.Next(gateway.EventHistoryGap)
		})
		t.Run(b.name+"/histories", func(t *testing.T) {
			e := newEnv(t, envOptions{
				recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute, MaxPackets: 5},
				history:  &gateway.HistoryOptions{Size: 4, TTL: time.Hour},
				adapter:  b.adapter(t),
			})
			quiet := e.join("org-q", "user-q", sioclient.Options{})
			emitTo(t, e, events.InvoiceCreated, "org-q", "", 1)
			from := offsetOf(t, quiet.Next(string(events.InvoiceCreated)))
			drop(t, e, quiet)
			emitTo(t, e, events.InvoicePaid, "org-q", "", 2)
			for i := range b.busy {
				emitTo(t, e, events.InvoiceCreated, "org-busy", "", 100+i)
			}
			emitTo(t, e, events.NotificationNew, "org-q", "user-q", 3)
			quiet.Connect()
			if info := quiet.WaitConnect(); !info.Recovered {
				t.Fatalf("the quiet organization's client did not recover: %+v", info)
			}
			expectSeqs(t, quiet, []events.Name{events.InvoicePaid, events.NotificationNew}, []int{2, 3})
			if h := history(t, quiet, map[string]any{"since": from}); !sameInts(h.seqs(t), []int{2, 3}) {
				t.Fatalf("history since %s: %+v", from, h)
			}

			// Its own history trimmed past its offset: a gap, said.
			last := history(t, quiet, nil)
			drop(t, e, quiet)
			for i := range 6 {
				emitTo(t, e, events.InvoiceSent, "org-q", "", 10+i)
			}
			quiet.Connect()
			if info := quiet.WaitConnect(); info.Recovered {
				t.Fatalf("recovered past a trimmed history: %+v", info)
			}
			quiet.Next(gateway.EventConnected)
			var gap struct {
				Reason, From string
			}
			decodeArg(t, quiet.Next(gateway.EventHistoryGap), 0, &gap)
			if gap.Reason != "unavailable" || gap.From == "" {
				t.Fatalf("history:gap %+v", gap)
			}
			if h := history(t, quiet, map[string]any{"since": last.Offset}); h.Code != gateway.CodeHistoryGap {
				t.Fatalf("history since a trimmed offset: %+v", h)
			}
			if h := history(t, quiet, nil); !sameInts(h.seqs(t), []int{3, 12, 13, 14, 15}) {
				t.Fatalf("the history kept: %+v", h)
			}
		})
	}
}

// api serves the HTTP API of e's gateway (publish and history) with historyKey.
func (e *env) api(t *testing.T) string {
	t.Helper()
	h, err := httpapi.New(httpapi.Config{Emitter: e.gw, History: e.gw, APIKeys: []string{historyKey}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

const historyKey = "history-test-key-0123456789"

// call makes an HTTP request with the API key (unless key is "") and
// decodes the JSON answer into v.
func call(t *testing.T, method, url, key, body string, v any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
	}
	return resp.StatusCode
}

// TestHistoryHTTP: publishing answers the event's offset, which a backend
// reads the history from: an organization's events, or a user's within one
// organization, never another organization's. Bad requests get a JSON 4xx
// with a code.
func TestHistoryHTTP(t *testing.T) {
	forEachHistoryBackend(t, func(t *testing.T, e *env) {
		base := e.api(t)
		a := e.join("org-1", "user-1", sioclient.Options{})
		publish := func(name events.Name, org, user string, seq int, target string) apiclient.PublishResponse {
			t.Helper()
			body := fmt.Sprintf(`{"event":%q,"payload":%s%s}`, name, payload(t, name, org, user, seq), target)
			var out apiclient.PublishResponse
			if st := call(t, "POST", base+apiclient.PathEvents, historyKey, body, &out); st != http.StatusAccepted || out.ID == "" || out.Offset == "" {
				t.Fatalf("publish: %d %+v", st, out)
			}
			return out
		}
		first := publish(events.InvoiceCreated, "org-1", "", 1, "")
		if got := offsetOf(t, a.Next(string(events.InvoiceCreated))); got != first.Offset {
			t.Fatalf("the client got offset %s, the publisher %s", got, first.Offset)
		}
		publish(events.NotificationNew, "org-1", "user-1", 2, "")
		publish(events.InvoicePaid, "org-2", "", 3, "")
		publish(events.NotificationNew, "org-2", "user-1", 4, "")
		publish(events.ExpenseCreated, "org-1", "", 5, "")
		publish(events.NotificationNew, "org-1", "user-9", 6, "")
		var batch apiclient.BatchResponse
		body := fmt.Sprintf(`[{"event":"invoice:sent","payload":%s},{"event":"notification:read","payload":%s}]`,
			payload(t, events.InvoiceSent, "org-1", "", 7), payload(t, events.NotificationRead, "org-1", "user-1", 8))
		if st := call(t, "POST", base+apiclient.PathBatch, historyKey, body, &batch); st != http.StatusAccepted || len(batch.Offsets) != 2 || batch.Offsets[0] == "" {
			t.Fatalf("batch: %d %+v", st, batch)
		}

		get := func(path string, want []int) events.HistoryPage {
			t.Helper()
			var page historyAnswer
			if st := call(t, "GET", base+path, historyKey, "", &page); st != http.StatusOK || !sameInts(page.seqs(t), want) {
				t.Fatalf("GET %s: %d %+v, want seqs %v", path, st, page, want)
			}
			return events.HistoryPage{Offset: page.Offset, More: page.More}
		}
		get("/api/v1/organizations/org-1/events", []int{1, 5, 7})
		get("/api/v1/organizations/org-1/events?since="+url.QueryEscape(first.Offset), []int{5, 7})
		if p := get("/api/v1/organizations/org-1/events?limit=1", []int{1}); !p.More || p.Offset != first.Offset {
			t.Fatalf("limit 1: %+v", p)
		}
		get("/api/v1/organizations/org-1/events?events=expense:*,invoice:sent", []int{5, 7})
		get("/api/v1/organizations/org-2/events", []int{3})
		get("/api/v1/users/user-1/events?organizationId=org-1", []int{2, 8})
		get("/api/v1/users/user-1/events?organizationId=org-2", []int{4})
		get("/api/v1/users/user-1/events?organizationId=org-1&since="+url.QueryEscape(batch.Offsets[0]), []int{8})

		// The Go client reads the same.
		cl := apiclient.New(base, historyKey)
		page, err := cl.History(t.Context(), events.HistoryQuery{OrganizationID: "org-1", UserID: "user-1", Since: first.Offset, Events: []events.Name{events.NotificationRead}})
		if err != nil || len(page.Events) != 1 || page.Events[0].Event != events.NotificationRead || page.Events[0].Offset != batch.Offsets[1] {
			t.Fatalf("apiclient History: %+v, %v", page, err)
		}
		if _, err := cl.History(t.Context(), events.HistoryQuery{OrganizationID: "org-1", Since: "gone.1"}); !errors.Is(err, events.ErrHistoryGap) {
			t.Fatalf("apiclient History from a position not kept: %v", err)
		}

		for _, c := range []struct {
			path, key string
			status    int
			code      string
		}{
			{"/api/v1/organizations/org-1/events", "", http.StatusUnauthorized, apiclient.CodeUnauthorized},
			{"/api/v1/organizations/org-1/events", "wrong-key-0123456789abcdef", http.StatusForbidden, apiclient.CodeForbidden},
			{"/api/v1/users/user-1/events", historyKey, http.StatusBadRequest, events.CodeMissingField},
			{"/api/v1/organizations/org-1/events?limit=0", historyKey, http.StatusBadRequest, apiclient.CodeInvalidRequest},
			{"/api/v1/organizations/org-1/events?limit=501", historyKey, http.StatusBadRequest, apiclient.CodeInvalidRequest},
			{"/api/v1/organizations/org-1/events?limit=x", historyKey, http.StatusBadRequest, apiclient.CodeInvalidRequest},
			{"/api/v1/organizations/org-1/events?sinse=1", historyKey, http.StatusBadRequest, apiclient.CodeInvalidRequest},
			{"/api/v1/organizations/org-1/events?events=nope:x", historyKey, http.StatusBadRequest, events.CodeUnknownEvent},
			{"/api/v1/organizations/org-1/events?since=not-an-offset", historyKey, http.StatusGone, apiclient.CodeHistoryGap},
		} {
			var body apiclient.ErrorBody
			if st := call(t, "GET", base+c.path, c.key, "", &body); st != c.status || body.Code != c.code || body.Message == "" {
				t.Errorf("GET %s: %d %+v, want %d %s", c.path, st, body, c.status, c.code)
			}
		}
	})
}

// TestHistoryHTTPWithoutHistory: a gateway without recovery or history
// answers 501, and its publish answers keep their old shape.
func TestHistoryHTTPWithoutHistory(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := e.api(t)
	var body apiclient.ErrorBody
	if st := call(t, "GET", base+"/api/v1/organizations/org-1/events", historyKey, "", &body); st != http.StatusNotImplemented || body.Code != apiclient.CodeHistoryUnavailable {
		t.Errorf("GET without history: %d %+v", st, body)
	}
	var out map[string]any
	if st := call(t, "POST", base+apiclient.PathEvents, historyKey, fmt.Sprintf(`{"event":"invoice:paid","payload":%s}`, payload(t, events.InvoicePaid, "org-1", "", 1)), &out); st != http.StatusAccepted || len(out) != 1 || out["id"] == nil {
		t.Errorf("publish without history: %d %v", st, out)
	}
}

// TestInbox: a user's events published while they are not connected at
// all (a closed tab, not a dropped connection) wait in their history, and
// a new connection (a page reload: no session to recover) reads them from
// the last offset the client kept; once they are older than the history's
// TTL, that offset gives history_gap.
func TestInbox(t *testing.T) {
	for _, b := range recoveryBackends {
		t.Run(b.name, func(t *testing.T) {
			// Long enough for the steps before the wait on a loaded machine.
			ttl := 6 * time.Second
			adapter, _ := b.adapter(t)
			e := newEnv(t, envOptions{
				recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
				history:  &gateway.HistoryOptions{Size: 100, TTL: ttl},
				adapter:  adapter,
				// The wait below polls the history faster than the
				// request budget allows.
				eventRate: -1,
			})
			a := e.join("org-1", "user-1", sioclient.Options{})
			emitTo(t, e, events.NotificationNew, "org-1", "user-1", 1)
			last := offsetOf(t, a.Next(string(events.NotificationNew)))
			a.Disconnect()
			a.WaitDisconnect()
			emitTo(t, e, events.NotificationNew, "org-1", "user-1", 2)
			emitTo(t, e, events.NotificationNew, "org-1", "user-2", 3)
			emitTo(t, e, events.NotificationNew, "org-2", "user-1", 4)
			emitTo(t, e, events.InvoicePaid, "org-1", "", 5)
			emitTo(t, e, events.NotificationRead, "org-1", "user-1", 6)

			reloaded := e.join("org-1", "user-1", sioclient.Options{})
			inbox := history(t, reloaded, map[string]any{"since": last, "events": []string{"notification:*"}})
			if !inbox.Success || !sameInts(inbox.seqs(t), []int{2, 6}) {
				t.Fatalf("inbox after a reload: %+v", inbox)
			}
			if h := history(t, reloaded, map[string]any{"since": last}); !sameInts(h.seqs(t), []int{2, 5, 6}) {
				t.Fatalf("everything since the last offset: %+v", h)
			}
			// Past the retention, the offset is a gap, said as such.
			wait.For(t, "the history to expire", func() bool {
				return history(t, reloaded, map[string]any{"since": last}).Code == gateway.CodeHistoryGap
			})
		})
	}
}

// TestHistoryRedisFlushed: when Redis loses the histories (FLUSHALL, a
// restart without persistence), an offset from before is a gap, said as
// such, not an empty page, even once new events are kept again.
func TestHistoryRedisFlushed(t *testing.T) {
	r := redistest.Start(t)
	c, err := redisadapter.New(redisadapter.Config{Addr: r.Addr, Mode: redisadapter.Streams, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitSubscribed(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{
		recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
		history:  &gateway.HistoryOptions{Size: 100, TTL: time.Hour},
		adapter:  c.Adapter,
	})
	a := e.join("org-1", "user-1", sioclient.Options{})
	emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
	from := offsetOf(t, a.Next(string(events.InvoiceCreated)))
	if h := history(t, a, map[string]any{"since": from}); !h.Success {
		t.Fatalf("history before the flush: %+v", h)
	}
	if _, err := r.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	if h := history(t, a, map[string]any{"since": from}); h.Code != gateway.CodeHistoryGap {
		t.Fatalf("history after the flush: %+v", h)
	}
	emitTo(t, e, events.InvoiceCreated, "org-1", "", 2)
	if h := history(t, a, map[string]any{"since": from}); h.Code != gateway.CodeHistoryGap {
		t.Fatalf("history after the flush and a new event: %+v", h)
	}
	if h := history(t, a, nil); !h.Success || !sameInts(h.seqs(t), []int{2}) {
		t.Fatalf("history from the oldest kept: %+v", h)
	}
}
