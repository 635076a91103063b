package realuser

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// pollEvery is how often a population looks at what its clients saw.
const pollEvery = 20 * time.Millisecond

// mode is how a client reaches the server.
type mode struct {
	name       string
	transports []string // nil: socket.io-client's default, polling then the upgrade to WebSocket
	final      string   // the transport it must end up on
}

// transportModes are the three a browser population has.
func transportModes() []mode {
	return []mode{
		{name: "default", final: "websocket"},
		{name: "polling", transports: []string{"polling"}, final: "polling"},
		{name: "websocket", transports: []string{"websocket"}, final: "websocket"},
	}
}

// user is one socket.io-client socket and everything it saw.
type user struct {
	name, org, id string
	mode          mode
	c             *sioclient.Client
	proxy         *faultproxy.Proxy // nil when it connects to the server directly

	expiresAt time.Time // the current token's exp

	connected     bool
	sid           string
	transport     string
	connects      []sioclient.ConnectInfo
	disconnects   []sioclient.DisconnectInfo
	connectErrors []sioclient.ConnectError
	upgrades      int
	welcomes      int   // "connected" events
	seqs          []int // the seq of every event of its organization, in arrival order
	problems      []string
	history       []string // the last messages, for failure messages
}

func (u *user) String() string {
	return fmt.Sprintf("%s: connected=%t sid=%s transport=%s events=%d connects=%d disconnects=%v connect_errors=%d upgrades=%d",
		u.name, u.connected, u.sid, u.transport, len(u.seqs), len(u.connects), u.disconnects, len(u.connectErrors), u.upgrades)
}

func (u *user) problem(format string, args ...any) {
	u.problems = append(u.problems, fmt.Sprintf(format, args...))
}

// populationConfig says who connects.
type populationConfig struct {
	orgs    int // organizations, named org-1, org-2...
	perMode int // clients per organization and transport mode (default 1)
	// proxied puts each client behind a fault proxy of its own, so that a
	// fault can hit one client and spare the others.
	proxied  bool
	tokenTTL time.Duration // default 1h
}

// population is the clients of one test, all driven from the test's
// goroutine through one socket.io-client driver.
type population struct {
	t     *testing.T
	srv   *server
	pub   *publisher
	d     *sioclient.Driver
	orgs  []string
	users []*user
	ttl   time.Duration

	// onEvent, when set, sees each event (after the checks) on the test's
	// goroutine.
	onEvent func(u *user, ev sioclient.Event)
}

func newPopulation(t *testing.T, srv *server, cfg populationConfig) *population {
	t.Helper()
	p := &population{t: t, srv: srv, pub: newPublisher(t, srv), ttl: cfg.tokenTTL}
	if p.ttl == 0 {
		p.ttl = time.Hour
	}
	for i := range cfg.orgs {
		p.orgs = append(p.orgs, fmt.Sprintf("org-%d", i+1))
	}
	for _, org := range p.orgs {
		for _, m := range transportModes() {
			for i := range max(cfg.perMode, 1) {
				u := &user{name: fmt.Sprintf("%s-%s-%d", org, m.name, i+1), org: org, mode: m}
				u.id = "user-" + u.name
				if cfg.proxied {
					proxy, err := faultproxy.New(strings.TrimPrefix(srv.url, "http://"))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = proxy.Close() })
					u.proxy = proxy
				}
				p.users = append(p.users, u)
			}
		}
	}
	// Started last, so stopped first (cleanups run in reverse): the clients
	// go before their proxies and the server.
	p.d = sioclient.Start(t)
	return p
}

// mint returns a fresh token for u, valid for the population's TTL.
func (p *population) mint(u *user) string {
	p.t.Helper()
	now := time.Now()
	tok, err := auth.Mint(jwtSecret, auth.MintClaims{UserID: u.id, OrganizationID: u.org}, p.ttl, now)
	if err != nil {
		p.t.Fatal(err)
	}
	u.expiresAt = time.Unix(now.Add(p.ttl).Unix(), 0) // exp is in whole seconds
	return tok
}

// connectAll connects every client with socket.io-client's default
// options but the transports (reconnection on, 1-5 s back-off, 20 s
// connection timeout) and waits until each is connected on its final
// transport.
func (p *population) connectAll() {
	p.t.Helper()
	for _, u := range p.users {
		url := p.srv.url + "/events"
		if u.proxy != nil {
			url = "http://" + u.proxy.Addr() + "/events"
		}
		u.c = p.d.Connect(url, sioclient.Options{
			Name:       u.name,
			Transports: u.mode.transports,
			Auth:       map[string]any{"token": p.mint(u)},
		})
	}
	p.waitSettled("every client connected", 30*time.Second)
	for _, u := range p.users {
		if u.connects[0].Recovered {
			p.t.Errorf("%s: first connection says recovered", u.name)
		}
	}
}

// poll takes what every client saw since the last poll and checks it.
func (p *population) poll() {
	p.t.Helper()
	for _, u := range p.users {
		for _, m := range u.c.Drain() {
			p.record(u, m)
		}
	}
}

func (p *population) record(u *user, m sioclient.Message) {
	p.t.Helper()
	u.history = append(u.history, m.String())
	if len(u.history) > 30 {
		u.history = u.history[len(u.history)-30:]
	}
	switch m.Type {
	case "connect":
		u.connected, u.sid, u.transport = true, m.Connect.SID, m.Connect.Transport
		u.connects = append(u.connects, m.Connect)
	case "disconnect":
		u.connected = false
		u.disconnects = append(u.disconnects, m.Disconnect)
	case "connect_error":
		u.connectErrors = append(u.connectErrors, m.ConnectError)
	case "upgrade":
		u.upgrades++
		u.transport = m.Transport
		if u.mode.transports != nil {
			u.problem("upgraded to %s with transports %v", m.Transport, u.mode.transports)
		}
	case "event":
		p.recordEvent(u, m.Event)
	}
}

// payload is what the tests read of an event's payload.
type payload struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	Seq            int    `json:"seq"`
}

func (p *population) recordEvent(u *user, ev sioclient.Event) {
	p.t.Helper()
	var pl payload
	if len(ev.Args) == 0 || json.Unmarshal(ev.Args[0], &pl) != nil {
		u.problem("event %s without an object payload", ev)
		return
	}
	switch {
	case ev.Name == "connected":
		u.welcomes++
		if pl.UserID != u.id || pl.OrganizationID != u.org {
			u.problem("connected as %s of %s, want %s of %s", pl.UserID, pl.OrganizationID, u.id, u.org)
		}
	case strings.HasPrefix(ev.Name, "auth:"):
		// Token expiry; the tests that expect it look at it in onEvent.
	case pl.OrganizationID != u.org:
		u.problem("received %s of %s #%d: another organization's event", ev.Name, pl.OrganizationID, pl.Seq)
	case pl.Seq == len(u.seqs)+1:
		u.seqs = append(u.seqs, pl.Seq)
		if ev.Name != eventName(pl.Seq) {
			u.problem("event #%d is %s, published as %s", pl.Seq, ev.Name, eventName(pl.Seq))
		}
	case slices.Contains(u.seqs, pl.Seq):
		u.problem("received #%d twice (after #%d)", pl.Seq, len(u.seqs))
	default:
		u.problem("received #%d after #%d: events missing or out of order", pl.Seq, len(u.seqs))
		u.seqs = append(u.seqs, pl.Seq) // later events are judged against this one
	}
	if p.onEvent != nil {
		p.onEvent(u, ev)
	}
}

// waitUntil polls until cond holds, failing the test after within with
// what every client saw.
func (p *population) waitUntil(what string, within time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p.poll()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("not %s after %v:\n%s", what, within, p.report())
		}
		time.Sleep(pollEvery)
	}
}

// idle keeps polling (and answering through onEvent) for d.
func (p *population) idle(d time.Duration) {
	p.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		p.poll()
		time.Sleep(pollEvery)
	}
	p.poll()
}

// settled says whether every client is connected on its final transport.
func (p *population) settled(users ...*user) bool {
	if len(users) == 0 {
		users = p.users
	}
	for _, u := range users {
		if !u.connected || u.transport != u.mode.final {
			return false
		}
	}
	return true
}

func (p *population) waitSettled(what string, within time.Duration, users ...*user) {
	p.t.Helper()
	p.waitUntil(what, within, func() bool { return p.settled(users...) })
}

// publish sends n events to every organization.
func (p *population) publish(n int) {
	p.t.Helper()
	p.pub.publish(n, p.orgs...)
}

// waitEvents waits until every client has received as many events as its
// organization was sent, then checks them.
func (p *population) waitEvents(within time.Duration) {
	p.t.Helper()
	p.waitUntil("every event received", within, func() bool {
		for _, u := range p.users {
			// Wrong already, or complete: check says which.
			if len(u.problems) == 0 && len(u.seqs) < p.pub.sent[u.org] {
				return false
			}
		}
		return true
	})
	p.check()
}

// check fails the test unless every client received exactly the events
// of its organization, once each and in order, and nothing else went
// wrong.
func (p *population) check() {
	p.t.Helper()
	p.idle(100 * time.Millisecond) // a duplicate right behind the last event would show now
	var bad []string
	for _, u := range p.users {
		if want := p.pub.sent[u.org]; len(u.seqs) != want {
			u.problem("received %d events of %s, %d were published", len(u.seqs), u.org, want)
		}
		if len(u.problems) > 0 {
			bad = append(bad, u.name+":\n\t\t"+strings.Join(u.problems, "\n\t\t"))
		}
	}
	if len(bad) > 0 {
		p.t.Fatalf("wrong events:\n\t%s\n%s", strings.Join(bad, "\n\t"), p.report())
	}
}

// failOnTrouble fails the test at once if a client has disconnected or
// received a wrong event, rather than when a wait runs out.
func (p *population) failOnTrouble() {
	p.t.Helper()
	p.poll()
	for _, u := range p.users {
		if len(u.disconnects) > 0 || len(u.problems) > 0 {
			p.t.Fatalf("%s: disconnects %v, wrong events %v\n%s", u.name, u.disconnects, u.problems, p.report())
		}
	}
}

// report describes every client, for failure messages.
func (p *population) report() string {
	var b strings.Builder
	for _, u := range p.users {
		fmt.Fprintf(&b, "  %s, expected %d events\n", u, p.pub.sent[u.org])
		for _, h := range u.history[max(0, len(u.history)-15):] {
			fmt.Fprintf(&b, "      %s\n", h)
		}
	}
	fmt.Fprintf(&b, "  server disconnects by reason: %v", p.srv.disconnects())
	return b.String()
}

// marks are the number of disconnects, connects and connect errors of
// each client at one moment, to count what came after.
type marks map[*user][3]int

func (p *population) mark() marks {
	p.t.Helper()
	p.poll()
	m := marks{}
	for _, u := range p.users {
		m[u] = [3]int{len(u.disconnects), len(u.connects), len(u.connectErrors)}
	}
	return m
}

// expectNoDisconnect fails the test if any client disconnected or failed
// to connect since the start, or the server logged a disconnection.
func (p *population) expectNoDisconnect() {
	p.t.Helper()
	p.poll()
	var bad []string
	for _, u := range p.users {
		if len(u.disconnects) > 0 || len(u.connectErrors) > 0 || len(u.connects) != 1 {
			bad = append(bad, u.String())
		}
	}
	if len(bad) > 0 {
		p.t.Errorf("clients disconnected with nothing to explain it:\n\t%s\n%s", strings.Join(bad, "\n\t"), p.report())
	}
	if d := p.srv.disconnects(); len(d) > 0 {
		p.t.Errorf("the server logged disconnections: %v", d)
	}
}

// fault says what a fault must have done to the clients it hit.
type fault struct {
	hit     []*user  // the clients it hit; the others must have seen nothing
	reasons []string // socket.io-client's disconnect reasons it explains
	// retries allows failed reconnection attempts (transport errors) while
	// the network was down; mustRetry requires at least one per client.
	retries, mustRetry bool
}

// expectFault checks what each client went through since m: a client the
// fault hit exactly one disconnect, for one of its reasons, then one
// recovered reconnection (after failed attempts if it allows them); a
// client it spared nothing at all.
func (p *population) expectFault(m marks, f fault) {
	p.t.Helper()
	p.poll()
	var bad []string
	for _, u := range p.users {
		before := m[u]
		disc := u.disconnects[before[0]:]
		conns := u.connects[before[1]:]
		errs := u.connectErrors[before[2]:]
		if !slices.Contains(f.hit, u) {
			if len(disc)+len(conns)+len(errs) > 0 {
				bad = append(bad, fmt.Sprintf("%s was spared by the fault, yet: disconnects %v, connects %v, connect errors %v", u.name, disc, conns, errs))
			}
			continue
		}
		if len(disc) != 1 || !slices.Contains(f.reasons, disc[0].Reason) {
			bad = append(bad, fmt.Sprintf("%s: disconnects %v, want one for one of %q", u.name, disc, f.reasons))
		}
		if prev := u.connects[before[1]-1].SID; len(conns) != 1 || !conns[0].Recovered || conns[0].SID != prev {
			bad = append(bad, fmt.Sprintf("%s: connects %v, want one, recovered, with sid %s", u.name, conns, prev))
		}
		for _, e := range errs {
			if !f.retries || !isTransportError(e) {
				bad = append(bad, fmt.Sprintf("%s: connect error %+v", u.name, e))
			}
		}
		if f.mustRetry && len(errs) == 0 {
			bad = append(bad, fmt.Sprintf("%s: no failed attempt while the network was down: did it really retry?", u.name))
		}
	}
	if len(bad) > 0 {
		p.t.Fatalf("disconnects not explained by the fault:\n\t%s\n%s", strings.Join(bad, "\n\t"), p.report())
	}
}

// isTransportError says whether a connect_error comes from the network
// (socket.io-client's "xhr poll error", "websocket error", "timeout")
// rather than from the server refusing the client.
func isTransportError(e sioclient.ConnectError) bool {
	switch e.Message {
	case "xhr poll error", "websocket error", "timeout":
		return true
	}
	return false
}

// checkStates asks socket.io-client itself whether each client is
// connected on its final transport with the session the test followed.
func (p *population) checkStates() {
	p.t.Helper()
	for _, u := range p.users {
		st := u.c.State()
		if !st.Connected || st.Transport != u.mode.final || st.SID != u.sid {
			p.t.Errorf("%s: socket.io-client says %+v, want connected over %s with sid %s", u.name, st, u.mode.final, u.sid)
		}
		if u.welcomes != len(u.connects) {
			p.t.Errorf("%s: %d connected events for %d connections", u.name, u.welcomes, len(u.connects))
		}
		if u.mode.transports == nil && u.upgrades < len(u.connects) {
			p.t.Errorf("%s: %d upgrades for %d connections: a default client must upgrade to WebSocket each time", u.name, u.upgrades, len(u.connects))
		}
	}
}

// closeAll disconnects every client and waits until the server has
// released everything it held for them, compared to base.
func (p *population) closeAll(base resources) {
	p.t.Helper()
	for _, u := range p.users {
		u.c.Close()
	}
	p.pub.client.CloseIdleConnections()
	p.srv.waitReleased(base)
}
