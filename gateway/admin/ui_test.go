package admin_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// TestUIListsSocketsRoomsAndNoToken: a UI that logs in gets a session, the
// read-only features, every socket of the events namespace with its rooms
// and identity (and none of the tokens, whichever way they came), the
// server's stats, and then the sockets that come and go.
func TestUIListsSocketsRoomsAndNoToken(t *testing.T) {
	n := startNode(t, nodeOptions{id: "node-1", ui: uiConfig(nil)})
	d := sioclient.Start(t)
	tokA1, tokA2, tokB := token(t, "org_a", "u1"), token(t, "org_a", "u2"), token(t, "org_b", "u3")
	a1 := join(t, d, n, "org_a", "u1", sioclient.Options{Auth: map[string]any{"token": tokA1, "app": "web"}, Transports: []string{"websocket"},
		ExtraHeaders: map[string]string{"User-Agent": "admin-test/1.0"}})
	join(t, d, n, "org_a", "u2", sioclient.Options{Query: map[string]string{"token": tokA2}, Transports: []string{"polling"}})
	join(t, d, n, "org_b", "u3", sioclient.Options{ExtraHeaders: map[string]string{"Authorization": "Bearer " + tokB}})

	ui := login(d, n, credentials())
	ui.WaitConnect()
	session := str(t, ui.Next("session"), 0)
	if !strings.HasPrefix(session, "v1.") {
		t.Errorf("session id %q", session)
	}
	var cfg struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	decode(t, ui.Next("config"), 0, &cfg)
	if want := []string{"AGGREGATED_EVENTS", "ALL_EVENTS"}; !slices.Equal(cfg.SupportedFeatures, want) {
		t.Errorf("read-only features %v, want %v", cfg.SupportedFeatures, want)
	}

	all := ui.Next("all_sockets")
	raw := string(all.Args[0])
	for _, tok := range []string{tokA1, tokA2, tokB} {
		if strings.Contains(raw, tok) || strings.Contains(raw, tok[20:]) {
			t.Errorf("all_sockets shows a token: %s", raw)
		}
	}
	if strings.Contains(strings.ToLower(raw), "authorization") {
		t.Errorf("all_sockets shows an Authorization header: %s", raw)
	}
	var sockets []shownSocket
	decode(t, all, 0, &sockets)
	if len(sockets) != 3 {
		t.Fatalf("all_sockets lists %d sockets, want 3: %s", len(sockets), raw)
	}
	users := map[string]shownSocket{}
	for _, s := range sockets {
		users[s.Data.UserID] = s
		wantRooms := []string{s.ID, "org:" + s.Data.OrganizationID, "user:" + s.Data.UserID}
		if s.Nsp != "/events" || !slices.Equal(s.Rooms, wantRooms) {
			t.Errorf("socket %s: namespace %s rooms %v, want /events %v", s.ID, s.Nsp, s.Rooms, wantRooms)
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(s.ClientID) || s.Handshake.Address != "127.0.0.1" ||
			time.Since(time.UnixMilli(s.Handshake.Issued)) > time.Minute {
			t.Errorf("socket %s: client %q address %q issued %d", s.ID, s.ClientID, s.Handshake.Address, s.Handshake.Issued)
		}
	}
	if users["u1"].Data.OrganizationID != "org_a" || users["u3"].Data.OrganizationID != "org_b" {
		t.Errorf("identities: %+v", users)
	}
	if users["u2"].Transport != "polling" || users["u1"].Transport != "websocket" {
		t.Errorf("transports: u1 %s, u2 %s", users["u1"].Transport, users["u2"].Transport)
	}
	if got := users["u2"].Handshake.Query["token"]; !strings.HasSuffix(got, "…") || len(got) > 12 {
		t.Errorf("a query token shows as %q, want it redacted", got)
	}
	if users["u1"].Handshake.Headers["user-agent"] != "admin-test/1.0" {
		t.Errorf("headers lack the user agent: %v", users["u1"].Handshake.Headers)
	}

	st := nextStats(t, ui, "node-1")
	host, _ := os.Hostname()
	if st.Hostname != host || st.PID == 0 || st.ClientsCount < 4 || st.PollingClientsCount < 1 || st.PollingClientsCount > 2 {
		t.Errorf("server_stats %+v", st)
	}
	counts := map[string]int{}
	for _, ns := range st.Namespaces {
		counts[ns.Name] = ns.SocketsCount
	}
	if counts["/events"] != 3 || counts["/admin"] != 1 {
		t.Errorf("namespaces %v", st.Namespaces)
	}

	// Live: a socket connects, upgrades to WebSocket, then goes.
	c := join(t, d, n, "org_b", "u4", sioclient.Options{})
	var connected shownSocket
	ev := ui.Next("socket_connected")
	decode(t, ev, 0, &connected)
	sid := c.State().SID
	if connected.ID != sid || connected.Data.UserID != "u4" || !slices.Contains(connected.Rooms, "org:org_b") {
		t.Errorf("socket_connected %s, want %s of u4 in org:org_b", ev, sid)
	}
	c.WaitUpgrade()
	for connected.Transport == "polling" { // u3 may upgrade too
		ev := ui.Next("socket_updated")
		var upd struct{ ID, Nsp, Transport string }
		decode(t, ev, 0, &upd)
		if upd.ID == sid {
			if upd.Nsp != "/events" || upd.Transport != "websocket" {
				t.Errorf("socket_updated %s, want %s on websocket", ev, sid)
			}
			break
		}
	}
	c.Close()
	ev = ui.Next("socket_disconnected")
	if str(t, ev, 0) != "/events" || str(t, ev, 1) != sid || str(t, ev, 2) != "client namespace disconnect" {
		t.Errorf("socket_disconnected %s", ev)
	}
	var left []string
	for range 3 {
		ev := ui.Next("room_left")
		if str(t, ev, 2) != sid {
			t.Errorf("room_left %s, want socket %s", ev, sid)
		}
		left = append(left, str(t, ev, 1))
	}
	if want := []string{sid, "org:org_b", "user:u4"}; !slices.Equal(left, want) {
		t.Errorf("rooms left %v, want %v", left, want)
	}

	// A reload presents the session instead of the password; nothing
	// else will do.
	again := login(d, n, map[string]any{"sessionId": session})
	again.WaitConnect()
	again.Next("config")
	again.NoEvent("session", 0)
	forged := login(d, n, map[string]any{"sessionId": session[:len(session)-2] + "xx"})
	if got := forged.WaitConnectError().Message; got != "invalid credentials" {
		t.Errorf("forged session: %q", got)
	}
	a1.Close()
}

// TestUILoginRefused: a wrong username or password is refused with the
// message the UI recognizes; a flood of attempts runs out of the node's
// login budget; without a UI the namespace does not exist.
func TestUILoginRefused(t *testing.T) {
	n := startNode(t, nodeOptions{ui: uiConfig(nil)})
	d := sioclient.Start(t)
	for _, creds := range []map[string]any{
		{"username": "admin", "password": "wrong password, long enough"},
		{"username": "root", "password": password},
		{"username": "admin"},
		{},
	} {
		c := login(d, n, creds)
		if got := c.WaitConnectError().Message; got != "invalid credentials" {
			t.Errorf("login %v: %q, want invalid credentials", creds, got)
		}
		c.Close()
	}
	if !strings.Contains(n.logs.String(), "admin: login refused: invalid credentials") {
		t.Errorf("refusals not logged:\n%s", n.logs)
	}
	limited := false
	for range 20 {
		c := login(d, n, map[string]any{"username": "admin", "password": "guess"})
		msg := c.WaitConnectError().Message
		c.Close()
		if strings.HasPrefix(msg, "too many login attempts") {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("20 wrong logins in a row never ran out of the login budget")
	}
	if strings.Contains(n.logs.String(), password) {
		t.Error("a password reached the logs")
	}

	keyOnly := startNode(t, nodeOptions{key: adminKey})
	c := login(d, keyOnly, credentials())
	if got := c.WaitConnectError().Message; got != "Invalid namespace" {
		t.Errorf("admin namespace without a UI: %q", got)
	}
}

// TestUIBcryptPassword: the password may be given as a bcrypt hash, as
// Node's instrument() takes it.
func TestUIBcryptPassword(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("short"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nodeOptions{ui: &admin.UIConfig{Username: "ops", Password: string(hash)}})
	d := sioclient.Start(t)
	ok := login(d, n, map[string]any{"username": "ops", "password": "short"})
	ok.WaitConnect()
	ok.Next("config")
	bad := login(d, n, map[string]any{"username": "ops", "password": "shorter"})
	if got := bad.WaitConnectError().Message; got != "invalid credentials" {
		t.Errorf("wrong password: %q", got)
	}
}

// TestUIReadOnly: without Operations, the UI's disconnect and leave
// requests do nothing.
func TestUIReadOnly(t *testing.T) {
	n := startNode(t, nodeOptions{ui: uiConfig(nil)})
	d := sioclient.Start(t)
	c := join(t, d, n, "org_a", "u1", sioclient.Options{})
	sid := c.State().SID
	ui := login(d, n, credentials())
	ui.WaitConnect()
	ui.Next("all_sockets")
	ui.Emit("_disconnect", "/events", false, sid)
	ui.Emit("leave", "/events", "org:org_a", sid)
	time.Sleep(500 * time.Millisecond) // time for the requests to be (not) carried out
	s, ok := n.gw.Namespace().Socket(sid)
	if !ok || !s.In("org:org_a") {
		t.Fatalf("a read-only UI changed socket %s (still there: %t)", sid, ok)
	}
	c.NoEvent("disconnect", 0)
}

// TestUIOperations: with Operations, the UI disconnects a socket, makes a
// room's sockets leave it, disconnects a room; it never joins rooms, emits
// events, or acts on every socket of the namespace at once.
func TestUIOperations(t *testing.T) {
	n := startNode(t, nodeOptions{ui: uiConfig(func(u *admin.UIConfig) { u.Operations = true })})
	d := sioclient.Start(t)
	a1 := join(t, d, n, "org_a", "u1", sioclient.Options{})
	a2 := join(t, d, n, "org_a", "u2", sioclient.Options{})
	b1 := join(t, d, n, "org_b", "u3", sioclient.Options{})
	b2 := join(t, d, n, "org_b", "u4", sioclient.Options{})
	sid := func(c *sioclient.Client) string { return c.State().SID }
	ui := login(d, n, credentials())
	ui.WaitConnect()
	var cfg struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	decode(t, ui.Next("config"), 0, &cfg)
	if want := []string{"AGGREGATED_EVENTS", "ALL_EVENTS", "DISCONNECT", "MDISCONNECT", "LEAVE", "MLEAVE"}; !slices.Equal(cfg.SupportedFeatures, want) {
		t.Errorf("features %v, want %v", cfg.SupportedFeatures, want)
	}
	ui.Next("all_sockets")

	// Never offered, never done.
	ui.Emit("join", "/events", "org:org_a", sid(b1))
	ui.Emit("emit", "/events", "org:org_a", "hello", "from the UI")
	ui.Emit("_disconnect", "/events", false)    // every socket: refused
	ui.Emit("_disconnect", "/admin", false, "") // another namespace: refused

	// One socket, by id.
	a1sid := sid(a1)
	ui.Emit("_disconnect", "/events", false, a1sid)
	if got := a1.WaitDisconnect(); got != "io server disconnect" {
		t.Errorf("a1 disconnected with %q", got)
	}
	if s, ok := n.gw.Namespace().Socket(sid(b1)); !ok || s.In("org:org_a") {
		t.Errorf("b1 (still connected: %t) joined org:org_a", ok)
	}
	ev := ui.Next("socket_disconnected")
	if str(t, ev, 2) != "server namespace disconnect" {
		t.Errorf("socket_disconnected %s", ev)
	}
	// A room's sockets leave it: org_a's events no longer reach a2.
	a2sid := sid(a2)
	ui.Emit("leave", "/events", "org:org_a")
	for {
		// a1's rooms come first, left with its disconnection.
		left := ui.Next("room_left")
		if str(t, left, 2) == a2sid {
			if str(t, left, 1) != "org:org_a" {
				t.Errorf("room_left %s, want org:org_a", left)
			}
			break
		}
	}
	svc := events.NewEventsService(n.gw)
	if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org_a", InvoiceID: "inv-1"}); err != nil {
		t.Fatal(err)
	}
	// A whole room, disconnected.
	ui.Emit("_disconnect", "/events", false, "org:org_b")
	b1.WaitDisconnect()
	b2.WaitDisconnect()
	a2.NoEvent(string(events.InvoicePaid), 200*time.Millisecond)
	a2.NoEvent("hello", 0)
	if s, ok := n.gw.Namespace().Socket(a2sid); !ok || s.In("org:org_a") {
		t.Errorf("a2 (still connected: %t) is in org:org_a", ok)
	}
	if n.gw.ConnectionCount() != 1 {
		t.Errorf("%d sockets left, want a2 only", n.gw.ConnectionCount())
	}
	logs := n.logs.String()
	for _, want := range []string{
		fmt.Sprintf(`msg="admin: disconnect" filter=%s close=false`, a1sid),
		`msg="admin: leave" room=org:org_a`,
		`msg="admin: disconnect refused`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// TestUIEvents: with Events, the UI sees the events clients send (their
// tokens redacted) and those sent to them, by socket or by room.
func TestUIEvents(t *testing.T) {
	n := startNode(t, nodeOptions{ui: uiConfig(func(u *admin.UIConfig) { u.Events = true })})
	d := sioclient.Start(t)
	ui := login(d, n, credentials())
	ui.WaitConnect()
	// No socket yet: the UI is told of the namespace all the same, so
	// that it selects it and shows the sockets that come.
	var upd struct{ ID, Nsp string }
	decode(t, ui.Next("socket_updated"), 0, &upd)
	if upd.ID != "" || upd.Nsp != "/events" {
		t.Errorf("socket_updated %+v, want the namespace alone", upd)
	}
	ui.Next("all_sockets")
	c := join(t, d, n, "org_a", "u1", sioclient.Options{})
	sid := c.State().SID

	ev := ui.Next("event_sent")
	if str(t, ev, 1) != sid || !strings.HasPrefix(string(ev.Args[2]), `["connected",{`) {
		t.Errorf("event_sent %s, want the connected event to %s", ev, sid)
	}
	if _, err := c.EmitWithAck(waitTimeout, gateway.EventSubscribe, map[string]any{"events": []string{"invoice:*"}}); err != nil {
		t.Fatal(err)
	}
	ev = ui.Next("event_received")
	if str(t, ev, 0) != "/events" || str(t, ev, 1) != sid || string(ev.Args[2]) != `["subscribe",{"events":["invoice:*"]}]` {
		t.Errorf("event_received %s", ev)
	}
	fresh := token(t, "org_a", "u1")
	if _, err := c.EmitWithAck(waitTimeout, gateway.EventAuthRefresh, map[string]any{"token": fresh}); err != nil {
		t.Fatal(err)
	}
	ev = ui.Next("event_received")
	if string(ev.Args[2]) != `["auth:refresh",{"token":"[redacted]"}]` || strings.Contains(ev.String(), fresh[10:]) {
		t.Errorf("event_received %s, want the token redacted", ev)
	}
	svc := events.NewEventsService(n.gw)
	if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org_a", InvoiceID: "inv-7"}); err != nil {
		t.Fatal(err)
	}
	c.Next(string(events.InvoicePaid))
	ev = ui.Next("event_sent")
	if str(t, ev, 1) != "org:org_a" || !strings.Contains(string(ev.Args[2]), `"invoiceId":"inv-7"`) {
		t.Errorf("event_sent %s, want invoice:paid to org:org_a", ev)
	}
}

// TestUILease: a node observes nothing until a UI connects, and stops
// soon after the last one left.
func TestUILease(t *testing.T) {
	n := startNode(t, nodeOptions{ui: uiConfig(nil), short: true})
	d := sioclient.Start(t)
	join(t, d, n, "org_a", "u1", sioclient.Options{})
	time.Sleep(300 * time.Millisecond)
	if n.adm.Watching() {
		t.Fatal("watching without a UI")
	}
	ui := login(d, n, credentials())
	ui.WaitConnect()
	wait.For(t, "watching", n.adm.Watching)
	nextStats(t, ui, n.adm.ServerID())
	time.Sleep(1500 * time.Millisecond) // longer than a lease: it is renewed
	if !n.adm.Watching() {
		t.Fatal("stopped watching while a UI is connected")
	}
	ui.Close()
	wait.For(t, "the lease to end", func() bool { return !n.adm.Watching() })
}

// TestNewRefusesWeakSecrets: short keys and passwords, and broken bcrypt
// hashes, are configuration errors.
func TestNewRefusesWeakSecrets(t *testing.T) {
	n := startNode(t, nodeOptions{key: adminKey})
	for name, cfg := range map[string]admin.Config{
		"nothing":     {},
		"short key":   {Key: "short"},
		"short pass":  {UI: &admin.UIConfig{Password: "short"}},
		"bad bcrypt":  {UI: &admin.UIConfig{Password: "$2a$10$notahash"}},
		"events nsp":  {UI: &admin.UIConfig{Password: password, Namespace: "/events"}},
		"root nsp":    {UI: &admin.UIConfig{Password: password, Namespace: "/"}},
		"no password": {UI: &admin.UIConfig{}},
	} {
		if _, err := admin.New(n.gw, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
