package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/logbuf"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

const testSecret = "gateway-test-secret-0123456789abcdef"

// env is a running gateway on a real HTTP server, with an EventsService
// publishing through it and a socket.io-client driver.
type env struct {
	t    *testing.T
	gw   *gateway.Gateway
	url  string // http://127.0.0.1:port
	svc  *events.EventsService
	d    *sioclient.Driver
	logs *logbuf.Buffer
	// redis is the Redis server of the adapter, nil in memory.
	redis *redistest.Server
}

type envOptions struct {
	authConfig    auth.Config // Secret defaults to testSecret
	expiryWarning time.Duration
	maxPatterns   int
	recovery      *socketio.RecoveryOptions
	history       *gateway.HistoryOptions
	adapter       socketio.AdapterFactory // nil: in memory
	eventRate     float64
	eventBurst    int
	// Connection caps (0: the gateway's defaults) and trusted proxies.
	maxPerAddress, maxPerUser, maxPerOrg int
	trustedProxies                       []netip.Prefix
	// Presence: observers of connections, and the presence answer.
	observers []gateway.Observer
	presence  gateway.PresenceFunc
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.authConfig.Secret == "" && o.authConfig.PublicKeyPEM == nil && o.authConfig.JWKSURL == "" {
		o.authConfig.Secret = testSecret
	}
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.authConfig.Logger = logger
	v, err := auth.New(context.Background(), o.authConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	gw, err := gateway.New(gateway.Config{
		Verifier:                      v,
		ExpiryWarning:                 o.expiryWarning,
		MaxPatterns:                   o.maxPatterns,
		Recovery:                      o.recovery,
		History:                       o.history,
		Adapter:                       o.adapter,
		ClientEventRate:               o.eventRate,
		ClientEventBurst:              o.eventBurst,
		MaxConnectionsPerAddress:      o.maxPerAddress,
		MaxConnectionsPerUser:         o.maxPerUser,
		MaxConnectionsPerOrganization: o.maxPerOrg,
		TrustedProxies:                o.trustedProxies,
		Observers:                     o.observers,
		Presence:                      o.presence,
		Logger:                        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		srv.Close()
	})
	return &env{
		t:    t,
		gw:   gw,
		url:  srv.URL,
		svc:  events.NewEventsService(gw),
		d:    sioclient.Start(t),
		logs: logs,
	}
}

// token mints an HS256 token for the test secret.
func (e *env) token(org, user string, ttl time.Duration) string {
	e.t.Helper()
	return mint(e.t, testSecret, auth.MintClaims{OrganizationID: org, UserID: user, Role: "member", Email: user + "@example.com"}, ttl)
}

func mint(t testing.TB, secret string, c auth.MintClaims, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(secret, c, ttl, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect opens a client to the events namespace.
func (e *env) connect(o sioclient.Options) *sioclient.Client {
	e.t.Helper()
	if o.Reconnection == nil {
		o.Reconnection = ptr(false)
	}
	return e.d.Connect(e.url+gateway.DefaultNamespace, o)
}

// join connects a client with an auth token and waits for its connected
// event.
func (e *env) join(org, user string, o sioclient.Options) *sioclient.Client {
	e.t.Helper()
	if o.Auth == nil {
		o.Auth = map[string]any{"token": e.token(org, user, time.Hour)}
	}
	c := e.connect(o)
	c.WaitConnect()
	got := connectedOf(e.t, c.Next(gateway.EventConnected))
	if got.UserID != user || got.OrganizationID != org {
		e.t.Fatalf("connected as %+v, want user %s org %s", got, user, org)
	}
	return c
}

type connected struct {
	Message        string `json:"message"`
	UserID         string `json:"userId"`
	OrganizationID string `json:"organizationId"`
	ExpiresAt      string `json:"expiresAt"`
}

func connectedOf(t *testing.T, ev sioclient.Event) connected {
	t.Helper()
	var c connected
	decodeArg(t, ev, 0, &c)
	return c
}

func decodeArg(t testing.TB, ev sioclient.Event, i int, v any) {
	t.Helper()
	if len(ev.Args) <= i {
		t.Fatalf("event %s has no argument %d", ev, i)
	}
	if err := json.Unmarshal(ev.Args[i], v); err != nil {
		t.Fatalf("event %s argument %d: %v", ev, i, err)
	}
}

// ack sends an event with an acknowledgement and decodes the first
// argument of the answer.
func ack(t *testing.T, c *sioclient.Client, event string, arg any, v any) {
	t.Helper()
	var args []any
	if arg != nil {
		args = append(args, arg)
	}
	res, err := c.EmitWithAck(3*time.Second, event, args...)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	if len(res) != 1 {
		t.Fatalf("%s: ack has %d arguments, want 1: %s", event, len(res), res)
	}
	if err := json.Unmarshal(res[0], v); err != nil {
		t.Fatalf("%s: ack %s: %v", event, res[0], err)
	}
}

func ptr[T any](v T) *T { return &v }

// requiredFields are test values for the required domain fields of each
// payload type (TestPayloadFixturesCoverCatalog keeps it complete).
var requiredFields = map[string]map[string]any{
	"InvoicePayload":      {"invoiceId": "inv-1"},
	"ExpensePayload":      {"expenseId": "exp-1"},
	"BankPayload":         {},
	"NotificationPayload": {"notificationId": "n-1", "title": "Hello", "message": "Hi there", "type": "info"},
	"DocumentPayload":     {"documentId": "doc-1"},
	"HRPayload":           {},
	"TaxPayload":          {},
	"IntegrationPayload":  {"integrationName": "datev"},
	"AutomationPayload":   {"entityType": "transaction", "entityId": "tx-1", "feature": "classification", "action": "CLASSIFIED"},
}

// payload returns a valid payload of the event for org (and user, when not
// empty), carrying seq in an extra field (unknown fields pass through).
func payload(t testing.TB, name events.Name, org, user string, seq int) json.RawMessage {
	t.Helper()
	info, ok := events.Lookup(name)
	if !ok {
		t.Fatalf("unknown event %s", name)
	}
	fields, ok := requiredFields[info.PayloadType]
	if !ok {
		t.Fatalf("no test fields for %s", info.PayloadType)
	}
	p := map[string]any{"organizationId": org, "seq": seq}
	if user != "" {
		p["userId"] = user
	}
	for k, v := range fields {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// emitTo publishes one catalog event for org (and user, when not empty)
// through the EventsService, with seq in its payload.
func emitTo(t *testing.T, e *env, name events.Name, org, user string, seq int) {
	t.Helper()
	if _, err := e.svc.Emit(context.Background(), name, payload(t, name, org, user, seq), events.Target{}); err != nil {
		t.Fatal(err)
	}
}

// seqOf returns the seq field of a received catalog event.
func seqOf(t testing.TB, ev sioclient.Event) int {
	t.Helper()
	var p struct {
		Seq *int `json:"seq"`
	}
	decodeArg(t, ev, 0, &p)
	if p.Seq == nil {
		t.Fatalf("event %s has no seq", ev)
	}
	return *p.Seq
}

// settle makes sure that everything the server queued for c so far has
// reached the test: the acknowledgement of a round trip is queued after it
// on the same connection, and the driver reports in arrival order.
func settle(t *testing.T, c *sioclient.Client) {
	t.Helper()
	if _, err := c.EmitWithAck(3*time.Second, "settle"); err != nil {
		t.Fatalf("settle: %v", err)
	}
}

// expectNames settles c and checks that the catalog events it received
// since the last check are exactly want, in order.
func expectNames(t *testing.T, c *sioclient.Client, want ...events.Name) {
	t.Helper()
	settle(t, c)
	for i, w := range want {
		ev := c.NextAny()
		if ev.Name != string(w) {
			t.Fatalf("%s: event %d is %s, want %s", c.Name(), i, ev, w)
		}
	}
	noMoreEvents(t, c)
}

// noMoreEvents fails if c has a catalog event queued.
func noMoreEvents(t *testing.T, c *sioclient.Client) {
	t.Helper()
	for _, e := range events.Events() {
		c.NoEvent(string(e.Name), 0)
	}
}
