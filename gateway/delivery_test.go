package gateway_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

const apiKey = "gateway-test-api-key-0123456789"

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: from the clock)")

// withAPI serves the HTTP publish API of e's gateway and returns a client
// for it.
func (e *env) withAPI() *apiclient.Client {
	e.t.Helper()
	h, err := httpapi.New(httpapi.Config{Emitter: e.gw, APIKeys: []string{apiKey}})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	return apiclient.New(srv.URL, apiKey)
}

// TestPayloadFixturesCoverCatalog keeps requiredFields complete: every
// catalog event gets a valid payload from it.
func TestPayloadFixturesCoverCatalog(t *testing.T) {
	for _, info := range events.Events() {
		if _, err := events.Validate(string(info.Name), payload(t, info.Name, "o", "", 0)); err != nil {
			t.Errorf("%s: %v", info.Name, err)
		}
	}
}

// TestTenantIsolation is randomized: clients of several organizations and
// users (one user in two organizations), on every transport, and events of
// every domain published in process (EventsService) and over HTTP, with
// every kind of target, including users of another organization than the
// payload's. Each client must receive exactly the events of its own
// organization meant for it (its organization, its user, or everyone), in
// publication order, and nothing else: the payload's organization bounds
// delivery whatever the target. The seed is logged; set it with -seed to
// replay a failure.
func TestTenantIsolation(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	e := newEnv(t, envOptions{})
	api := e.withAPI()
	ctx := context.Background()

	type member struct{ org, user string }
	var members []member
	for o := range 4 {
		for u := range 4 {
			members = append(members, member{fmt.Sprintf("org-%d", o), fmt.Sprintf("user-%d-%d", o, u)})
		}
	}
	members = append(members, member{"org-1", "user-0-0"}) // user-0-0 also belongs to org-1

	type client struct {
		member
		c    *sioclient.Client
		want []int // seqs, in order
	}
	transports := [][]string{{"websocket"}, {"polling"}, nil}
	var clients []*client
	for i, m := range members {
		for k := range 1 + rng.IntN(2) {
			c := e.join(m.org, m.user, sioclient.Options{
				Name:       fmt.Sprintf("%s@%s#%d", m.user, m.org, k),
				Transports: transports[(i+k)%len(transports)],
			})
			clients = append(clients, &client{member: m, c: c})
		}
	}

	catalog := events.Events()
	usersOf := func(org string) []string {
		var out []string
		for _, m := range members {
			if m.org == org {
				out = append(out, m.user)
			}
		}
		return out
	}
	const total = 600
	viaHTTP := 0
	for seq := range total {
		info := catalog[seq%len(catalog)] // every event, then again
		if seq >= len(catalog) {
			info = catalog[rng.IntN(len(catalog))]
		}
		org := fmt.Sprintf("org-%d", rng.IntN(5)) // org-4 has nobody connected
		user := ""
		if users := usersOf(org); len(users) > 0 && rng.IntN(2) == 0 {
			user = users[rng.IntN(len(users))]
		}
		p := payload(t, info.Name, org, user, seq)
		var target events.Target
		switch r := rng.IntN(20); {
		case r == 0:
			target = events.Target{All: true}
		case r == 1:
			// A user of another organization (or of several): what a
			// publisher with the wrong user id, or an attacker, would send.
			target = events.Target{UserID: members[rng.IntN(len(members))].user}
		case r < 4 && user != "":
			target = events.Target{UserID: user}
		case r < 7 && user != "":
			target = events.Target{OrganizationID: org, UserID: user}
		case r < 9:
			target = events.Target{OrganizationID: org}
		}
		effective := target
		if target.IsZero() {
			var err error
			if effective, err = events.DefaultTarget(info.Name, p); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(2) == 0 {
			viaHTTP++
			req := apiclient.PublishRequest{Event: string(info.Name), Payload: p}
			if !target.IsZero() {
				req.Target = &target
			}
			if _, err := api.Send(ctx, req, ""); err != nil {
				t.Fatalf("HTTP publish %d: %v", seq, err)
			}
		} else if _, err := e.svc.Emit(ctx, info.Name, p, target); err != nil {
			t.Fatalf("publish %d: %v", seq, err)
		}
		for _, c := range clients {
			if c.org == org && (effective.All || effective.OrganizationID == c.org || effective.UserID == c.user) {
				c.want = append(c.want, seq)
			}
		}
	}
	t.Logf("%d events (%d over HTTP) to %d clients", total, viaHTTP, len(clients))

	for _, c := range clients {
		settle(t, c.c)
		got := make([]int, 0, len(c.want))
		for range c.want {
			got = append(got, seqOf(t, c.c.NextAny()))
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("%s received %v, want %v", c.c.Name(), got, c.want)
		}
		noMoreEvents(t, c.c)
		if len(c.want) == 0 {
			t.Errorf("%s was sent nothing: the test does not test it", c.c.Name())
		}
	}
	if e.gw.Stats().CrossTenantRefused == 0 {
		t.Error("no delivery to another organization was attempted: the test does not test the tenancy check")
	}
}

// TestEventsServiceDeliversEveryEvent calls every typed Emit<Event> method
// of an EventsService on the gateway (found by reflection: a new catalog
// event is covered without editing this test) and checks that a client
// receives each event, in order, with its payload.
func TestEventsServiceDeliversEveryEvent(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.join("org-1", "user-1", sioclient.Options{Transports: []string{"websocket"}})
	other := e.join("org-2", "user-2", sioclient.Options{})

	sv := reflect.ValueOf(e.svc)
	var sent []events.Name
	for i := 0; i < sv.NumMethod(); i++ {
		m := sv.Type().Method(i)
		if !strings.HasPrefix(m.Name, "Emit") || m.Name == "Emit" {
			continue
		}
		p := fillRequired(t, m.Type.In(2))
		out := sv.Method(i).Call([]reflect.Value{reflect.ValueOf(context.Background()), p})
		if err, _ := out[1].Interface().(error); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		// Which event the method published: the one whose typed method it is.
		name := eventOfMethod(t, m.Name)
		sent = append(sent, name)
	}
	if len(sent) != len(events.Events()) {
		t.Fatalf("%d typed methods, %d catalog events", len(sent), len(events.Events()))
	}
	settle(t, c)
	for _, want := range sent {
		ev := c.NextAny()
		var p map[string]any
		decodeArg(t, ev, 0, &p)
		ts, _ := p["timestamp"].(string)
		if ev.Name != string(want) || p["organizationId"] != "org-1" || p["userId"] != "user-1" || len(ts) != len("2006-01-02T15:04:05.000Z") {
			t.Fatalf("received %s, want %s with organizationId, userId and a timestamp", ev, want)
		}
	}
	noMoreEvents(t, c)
	expectNames(t, other) // another tenant received none of them
}

// eventOfMethod maps EmitInvoiceCreated to invoice:created, by matching the
// method name against the generated constants' names.
func eventOfMethod(t *testing.T, method string) events.Name {
	t.Helper()
	for _, info := range events.Events() {
		var b strings.Builder
		for _, part := range strings.FieldsFunc(string(info.Name), func(r rune) bool { return r == ':' || r == '_' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
		if strings.EqualFold("Emit"+b.String(), method) {
			return info.Name
		}
	}
	t.Fatalf("no catalog event for %s", method)
	return ""
}

// fillRequired builds a generated payload struct with its required fields
// (JSON tags without omitempty), organizationId org-1 and userId user-1.
func fillRequired(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "organizationId":
			v.Field(i).SetString("org-1")
		case name == "userId":
			v.Field(i).SetString("user-1")
		case opts != "":
		case f.Type == reflect.TypeFor[events.NotificationType]():
			v.Field(i).SetString(string(events.NotificationTypeSuccess))
		case f.Type.Kind() == reflect.String:
			v.Field(i).SetString("test-" + name)
		default:
			t.Fatalf("%s.%s: no test value for required %s", typ.Name(), f.Name, f.Type)
		}
	}
	return v
}

// TestPublish covers the Emitter directly: everyone (of the payload's
// organization), refusals.
func TestPublish(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.join("org-1", "user-1", sioclient.Options{})
	a2 := e.join("org-1", "user-3", sioclient.Options{})
	b := e.join("org-2", "user-2", sioclient.Options{})
	ctx := context.Background()
	p := payload(t, events.InvoiceCreated, "org-1", "", 7)
	if err := e.gw.Publish(ctx, events.Event{ID: "x", Name: events.InvoiceCreated, Payload: p, Target: events.Target{All: true}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*sioclient.Client{a, a2} {
		ev := c.Next(string(events.InvoiceCreated))
		if string(ev.Args[0]) != string(p) {
			t.Errorf("%s: payload %s, want it byte for byte: %s", c.Name(), ev.Args[0], p)
		}
	}
	expectNames(t, b) // all, but of org-1: not org-2's socket
	for _, tc := range []struct {
		name string
		ev   events.Event
		want string
	}{
		{"no target", events.Event{Name: events.InvoiceCreated, Payload: p}, "no target"},
		{"control event", events.Event{Name: gateway.EventAuthExpired, Payload: p, Target: events.Target{All: true}}, "not a catalog event"},
		{"invalid JSON", events.Event{Name: events.InvoiceCreated, Payload: json.RawMessage(`{`), Target: events.Target{All: true}}, "invalid"},
	} {
		if err := e.gw.Publish(ctx, tc.ev); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	expectNames(t, a)
	expectNames(t, a2)
	expectNames(t, b)
}

// TestShutdown: clients are disconnected with a reason that makes them
// reconnect, the gateway stops being ready, and new connections fail.
func TestShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	ws := e.join("org-1", "user-1", sioclient.Options{Transports: []string{"websocket"}, Reconnection: ptr(true), ReconnectionDelay: 50})
	polling := e.join("org-1", "user-2", sioclient.Options{Transports: []string{"polling"}, Reconnection: ptr(true), ReconnectionDelay: 50})
	if err := e.gw.Ready(); err != nil {
		t.Fatalf("not ready before shutdown: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*sioclient.Client{ws, polling} {
		// A WebSocket client gets the Engine.IO close packet ("transport
		// close"). A polling client gets it only if a GET is pending at that
		// moment; otherwise its next GET finds no session ("transport
		// error"). socket.io-client reconnects after both, unlike after
		// "io server disconnect".
		reason := c.WaitDisconnect()
		if reason != "transport close" && (c != polling || reason != "transport error") {
			t.Errorf("%s: disconnect reason %q, want \"transport close\"", c.Name(), reason)
		}
		if !c.State().Active {
			t.Errorf("%s: not reconnecting", c.Name())
		}
		c.Close()
	}
	if e.gw.Ready() == nil || e.gw.ConnectionCount() != 0 {
		t.Errorf("after shutdown: ready %v, %d connections", e.gw.Ready(), e.gw.ConnectionCount())
	}
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "user-1", time.Hour)}})
	if ce := c.WaitConnectError(); ce.Message == "" {
		t.Error("connected after shutdown")
	}
}

// TestConcurrentPublishAndSubscribe exercises the delivery filter against
// subscription changes under the race detector.
func TestConcurrentPublishAndSubscribe(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.join("org-1", "user-1", sioclient.Options{Transports: []string{"websocket"}})
	ctx := context.Background()
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 100 {
				name := events.Events()[(g*100+i)%len(events.Events())].Name
				if _, err := e.svc.Emit(ctx, name, payload(t, name, "org-1", "user-1", i), events.Target{}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := range 20 {
		var r subscribeResult
		event := gateway.EventSubscribe
		if i%2 == 1 {
			event = gateway.EventUnsubscribe
		}
		ack(t, c, event, map[string]any{"events": []string{"invoice:*", "bank:sync_error"}}, &r)
		if !r.Success {
			t.Fatalf("%s: %+v", event, r)
		}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var r subscribeResult
	ack(t, c, gateway.EventSubscribe, map[string]any{"events": []string{"*"}}, &r)
	if !r.Success || !c.State().Connected {
		t.Fatalf("subscribe to everything: %+v", r)
	}
	publishProbes(t, e)
	settle(t, c)
	// The probes are the last events queued; skip everything before them.
	var last []string
	for {
		ev := c.NextAny()
		last = append(last, ev.Name)
		if seqOf(t, ev) == len(probes)-1 && ev.Name == string(probes[len(probes)-1]) {
			break
		}
	}
	got := last[len(last)-len(probes):]
	for i, p := range probes {
		if got[i] != string(p) {
			t.Fatalf("last events %v, want the probes %v", got, probes)
		}
	}
}
