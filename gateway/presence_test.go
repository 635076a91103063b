package gateway_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// observer records what a gateway.Observer is told.
type observer struct {
	mu  sync.Mutex
	log []string
	got []gateway.Connection
}

func (o *observer) Connected(c gateway.Connection) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, "connected "+c.OrganizationID+"/"+c.UserID)
	o.got = append(o.got, c)
}

func (o *observer) Disconnected(c gateway.Connection, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, "disconnected "+c.OrganizationID+"/"+c.UserID+" "+reason)
}

func (o *observer) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.log)
}

type presenceAck struct {
	Success  bool   `json:"success"`
	Code     string `json:"code"`
	Error    string `json:"error"`
	Watching bool   `json:"watching"`
	apiclient.Presence
}

func TestPresenceEvent(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	obs := &observer{}
	e := newEnv(t, envOptions{observers: []gateway.Observer{obs}, presence: func(_ context.Context, org string) (apiclient.Presence, error) {
		mu.Lock()
		asked = append(asked, org)
		mu.Unlock()
		return apiclient.Presence{OrganizationID: org, Users: []apiclient.PresenceUser{{UserID: "u1", Connections: 1, Since: "2026-12-02T16:00:00.000Z"}}}, nil
	}})
	c := e.join("o1", "u1", sioclient.Options{})
	other := e.join("o2", "u2", sioclient.Options{})

	var a presenceAck
	ack(t, c, gateway.EventPresence, map[string]any{}, &a)
	if !a.Success || a.OrganizationID != "o1" || a.Watching || len(a.Users) != 1 || a.Users[0].UserID != "u1" {
		t.Fatalf("presence ack %+v", a)
	}
	mu.Lock()
	if !slices.Equal(asked, []string{"o1"}) {
		t.Fatalf("asked for %q, want the socket's own organization only", asked)
	}
	mu.Unlock()

	// Watching: changes of its organization arrive; another's do not, nor
	// an o2 payload sent to o1's presence room (the tenancy check).
	ack(t, c, gateway.EventPresence, map[string]any{"watch": true}, &a)
	if !a.Watching {
		t.Fatalf("watch: %+v", a)
	}
	ack(t, other, gateway.EventPresence, map[string]any{"watch": true}, &a)
	publish := func(ev, org, user string) {
		t.Helper()
		if err := e.gw.PublishPresence(context.Background(), gateway.PresenceChange{Event: ev, OrganizationID: org, UserID: user, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	publish(gateway.EventPresenceJoined, "o1", "u9")
	var p struct{ OrganizationID, UserID, Timestamp string }
	decodeArg(t, c.Next(gateway.EventPresenceJoined), 0, &p)
	if p.OrganizationID != "o1" || p.UserID != "u9" || p.Timestamp == "" {
		t.Fatalf("presence:joined %+v", p)
	}
	if err := e.gw.Namespace().To(gateway.PresenceRoom("o1")).Emit(gateway.EventPresenceLeft, map[string]string{"organizationId": "o2", "userId": "u2"}); err != nil {
		t.Fatal(err)
	}
	publish(gateway.EventPresenceLeft, "o2", "u8")
	decodeArg(t, other.Next(gateway.EventPresenceLeft), 0, &p)
	if p.OrganizationID != "o2" || p.UserID != "u8" {
		t.Fatalf("o2's watcher got %+v", p)
	}
	settle(t, c)
	c.NoEvent(gateway.EventPresenceLeft, 0)

	// Unwatch: nothing more.
	ack(t, c, gateway.EventPresence, map[string]any{"watch": false}, &a)
	if a.Watching {
		t.Fatalf("unwatch: %+v", a)
	}
	publish(gateway.EventPresenceJoined, "o1", "u7")
	settle(t, c)
	c.NoEvent(gateway.EventPresenceJoined, 0)

	// Bad requests: a clear refusal, nothing changed.
	for _, tc := range []struct {
		arg  any
		code string
	}{
		{map[string]any{"watch": "yes"}, gateway.CodeInvalidRequest},
		{map[string]any{"organizationId": "o2"}, gateway.CodeUnknownField},
		{"o2", gateway.CodeInvalidRequest},
	} {
		var r presenceAck
		ack(t, c, gateway.EventPresence, tc.arg, &r)
		if r.Success || r.Code != tc.code || r.Error == "" {
			t.Errorf("presence %v: %+v, want code %s", tc.arg, r, tc.code)
		}
	}

	// The observer saw both connections, and a disconnection with its reason.
	other.Close()
	wait.For(t, "the disconnection observed", func() bool { return len(obs.lines()) == 3 })
	if got := obs.lines(); !slices.Equal(got, []string{"connected o1/u1", "connected o2/u2", "disconnected o2/u2 client namespace disconnect"}) &&
		!slices.Equal(got, []string{"connected o1/u1", "connected o2/u2", "disconnected o2/u2 transport close"}) {
		t.Fatalf("observer: %q", got)
	}
	obs.mu.Lock()
	first := obs.got[0]
	obs.mu.Unlock()
	if first.SocketID == "" || first.Transport == "" || first.Address == "" || first.ConnectedAt.IsZero() {
		t.Fatalf("connection %+v", first)
	}
}

func TestPresenceEventOff(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.join("o1", "u1", sioclient.Options{})
	var a presenceAck
	ack(t, c, gateway.EventPresence, map[string]any{}, &a)
	if a.Success || a.Code != gateway.CodeUnsupportedEvent {
		t.Fatalf("presence without a tracker: %+v, want unsupported_event", a)
	}
}
