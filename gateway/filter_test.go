package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio/redisadapter"
)

// fields reads a generated payload the way the test's own predicates do,
// independently of the gateway's decoding: a field is present or not.
type fields map[string]any

func (p fields) num(k string) (float64, bool) {
	v, ok := p[k].(float64)
	return v, ok
}

func (p fields) integer(k string) (int, bool) {
	v, ok := p[k].(int)
	return v, ok
}

func (p fields) str(k string) (string, bool) {
	v, ok := p[k].(string)
	return v, ok
}

func (p fields) boolean(k string) (bool, bool) {
	v, ok := p[k].(bool)
	return v, ok
}

func (p fields) time(k string) (time.Time, bool) {
	s, ok := p[k].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// filterCase is a subscription with a filter, and the test's own
// evaluation of it. A field a predicate reads and the payload lacks makes
// the comparison false (CEL: an error, which does not match; && and ||
// still decide when the other side does).
type filterCase struct {
	events []string
	expr   string
	match  func(name events.Name, p fields) bool
}

var filterCases = []filterCase{
	{[]string{"invoice:*"}, "payload.amount > 1000.0 && payload.currency == 'EUR'", func(_ events.Name, p fields) bool {
		a, okA := p.num("amount")
		c, okC := p.str("currency")
		return okA && okC && a > 1000 && c == "EUR"
	}},
	{[]string{"invoice:*", "expense:*"}, "payload.amount >= 500.0 || payload.status == 'paid'", func(_ events.Name, p fields) bool {
		a, okA := p.num("amount")
		s, okS := p.str("status")
		return (okA && a >= 500) || (okS && s == "paid")
	}},
	{[]string{"invoice:paid", "invoice:created"}, "!(payload.currency in ['EUR', 'USD'])", func(_ events.Name, p fields) bool {
		c, ok := p.str("currency")
		return ok && c != "EUR" && c != "USD"
	}},
	{[]string{"*"}, "event.startsWith('bank:') || has(payload.userId)", func(n events.Name, p fields) bool {
		_, ok := p["userId"]
		return n.Domain() == "bank" || ok
	}},
	{[]string{"bank:*"}, "payload.transactionCount > 3 && payload.autoApproved", func(_ events.Name, p fields) bool {
		n, okN := p.integer("transactionCount")
		a, okA := p.boolean("autoApproved")
		return okN && okA && n > 3 && a
	}},
	{[]string{"bank:*"}, "'tx-2' in payload.transactionIds", func(_ events.Name, p fields) bool {
		ids, ok := p["transactionIds"].([]string)
		return ok && slices.Contains(ids, "tx-2")
	}},
	{[]string{"bank:*", "automation:*"}, "payload.confidence < 0.5", func(_ events.Name, p fields) bool {
		c, ok := p.num("confidence")
		return ok && c < 0.5
	}},
	{[]string{"tax:*"}, "payload.taxYear == 2024 && payload.dueDate < timestamp('2025-06-01T00:00:00Z')", func(_ events.Name, p fields) bool {
		y, okY := p.integer("taxYear")
		d, okD := p.time("dueDate")
		return okY && okD && y == 2024 && d.Before(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	}},
	{[]string{"notification:*"}, "payload.type == 'error' || payload.type == 'warning'", func(_ events.Name, p fields) bool {
		ty, _ := p.str("type")
		return ty == "error" || ty == "warning"
	}},
	{[]string{"automation:*"}, "'flag' in payload.metadata && payload.metadata.flag == true", func(_ events.Name, p fields) bool {
		m, ok := p["metadata"].(map[string]any)
		return ok && m["flag"] == true
	}},
	{[]string{"invoice:*"}, "payload.invoiceNumber.startsWith('INV-1') && size(payload.customerId) > 3", func(_ events.Name, p fields) bool {
		n, okN := p.str("invoiceNumber")
		c, okC := p.str("customerId")
		return okN && okC && strings.HasPrefix(n, "INV-1") && len(c) > 3
	}},
	{[]string{"hr:*", "document:*"}, "payload.userId == 'user-1'", func(_ events.Name, p fields) bool {
		u, ok := p.str("userId")
		return ok && u == "user-1"
	}},
	{[]string{"integration:*"}, "payload.recordsProcessed % 2 == 0", func(_ events.Name, p fields) bool {
		n, ok := p.integer("recordsProcessed")
		return ok && n%2 == 0
	}},
	{[]string{"expense:*"}, "payload.amount > 100", func(_ events.Name, p fields) bool {
		a, ok := p.num("amount")
		return ok && a > 100
	}},
	{[]string{"invoice:*"}, "payload.timestamp >= timestamp('2025-07-01T00:00:00Z')", func(_ events.Name, p fields) bool {
		ts, ok := p.time("timestamp")
		return ok && !ts.Before(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))
	}},
	{[]string{"document:*"}, "payload.status.matches('^(done|failed)$')", func(_ events.Name, p fields) bool {
		s, ok := p.str("status")
		return ok && (s == "done" || s == "failed")
	}},
	{[]string{"invoice:*", "expense:*"}, "payload.?currency.orValue('EUR') == 'EUR'", func(_ events.Name, p fields) bool {
		c, ok := p.str("currency")
		return !ok || c == "EUR"
	}},
	{[]string{"tax:*"}, "payload.taxYear >= 2024 || !has(payload.taxYear)", func(_ events.Name, p fields) bool {
		y, ok := p.integer("taxYear")
		return !ok || y >= 2024
	}},
}

// randomPayload is a valid payload of the event, each optional field
// present or not, with values drawn so that the filters above match some
// events and not others. The seq field (unknown to the catalog) identifies
// it.
func randomPayload(rng *rand.Rand, info events.EventInfo, seq int) fields {
	p := fields{"seq": seq}
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	for _, f := range info.Fields() {
		if !f.Required && rng.IntN(5) == 0 {
			continue // absent
		}
		var v any
		switch f.Kind {
		case events.FieldString:
			switch f.Name {
			case "organizationId":
				v = "org-1"
			case "userId":
				v = pick("user-1", "user-2")
				if info.Audience == events.AudienceUser {
					v = "user-1" // to the user connected, not past it
				}
			case "currency":
				v = pick("EUR", "USD", "GBP")
			case "status":
				v = pick("paid", "open", "done", "failed")
			case "invoiceNumber":
				v = fmt.Sprintf("INV-%d", 100+rng.IntN(200))
			case "customerId":
				v = pick("c1", "cust-42")
			default:
				v = fmt.Sprintf("%s-%d", f.Name, rng.IntN(3))
			}
		case events.FieldEnum:
			v = f.Enum[rng.IntN(len(f.Enum))]
		case events.FieldNumber:
			if rng.IntN(3) == 0 {
				v = float64(rng.IntN(100)) / 100 // confidences
			} else {
				v = float64(rng.IntN(200000)) / 100
			}
		case events.FieldInteger:
			v = rng.IntN(8)
			if f.Name == "taxYear" {
				v = 2023 + rng.IntN(2)
			}
		case events.FieldBoolean:
			v = rng.IntN(2) == 0
		case events.FieldDateTime:
			v = fmt.Sprintf("2025-%02d-%02dT%02d:00:00.000Z", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24))
		case events.FieldObject:
			m := map[string]any{"n": rng.IntN(5)}
			if rng.IntN(4) != 0 {
				m["flag"] = rng.IntN(2) == 0
			}
			v = m
		case events.FieldArray:
			ids := []string{}
			for range rng.IntN(5) {
				ids = append(ids, fmt.Sprintf("tx-%d", rng.IntN(5)))
			}
			v = ids
		}
		p[f.Name] = v
	}
	return p
}

// subscribeFilter subscribes c and fails unless it is acknowledged.
func subscribeFilter(t *testing.T, c *sioclient.Client, patterns []string, expr string) {
	t.Helper()
	req := map[string]any{"events": patterns}
	if expr != "" {
		req["filter"] = expr
	}
	var r subscribeResult
	ack(t, c, gateway.EventSubscribe, req, &r)
	if !r.Success || r.Filter != expr {
		t.Fatalf("subscribe %v %q: %+v", patterns, expr, r)
	}
}

// matches reports whether a subscription of patterns covers the event.
func matches(patterns []string, name events.Name) bool {
	for _, p := range patterns {
		if p == "*" || p == string(name) || (strings.HasSuffix(p, ":*") && name.Domain() == strings.TrimSuffix(p, ":*")) {
			return true
		}
	}
	return false
}

// filteredClient is a client with the test's account of what it must
// receive.
type filteredClient struct {
	c       *sioclient.Client
	subs    []filterCase // its subscribes, in order; a later one wins for its events
	covered int          // events its subscriptions cover, filters aside
	want    []int
}

func (fc *filteredClient) expects(name events.Name, p fields) bool {
	for i := len(fc.subs) - 1; i >= 0; i-- {
		if s := fc.subs[i]; matches(s.events, name) {
			fc.covered++
			return s.match == nil || s.match(name, p)
		}
	}
	return false
}

// check verifies that fc received exactly what it should, in order
// unless anyOrder (events published on different nodes have no order).
func (fc *filteredClient) check(t *testing.T, anyOrder bool) {
	t.Helper()
	settle(t, fc.c)
	got := make([]int, 0, len(fc.want))
	for range fc.want {
		got = append(got, seqOf(t, fc.c.NextAny()))
	}
	if anyOrder {
		slices.Sort(got)
	}
	if !slices.Equal(got, fc.want) {
		t.Fatalf("%s received %v, want %v", fc.c.Name(), got, fc.want)
	}
	noMoreEvents(t, fc.c)
}

// TestFiltersOverRandomEvents is randomized: one client per filter of
// filterCases (and a few with two subscribes, the same filter twice, or no
// filter) receives a random stream of events of every kind, with random
// values and random optional fields left out. Each must receive exactly
// the events its subscriptions cover and the test's own evaluation of its
// filter accepts, in order. The seed is logged; set it with -seed.
func TestFiltersOverRandomEvents(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	e := newEnv(t, envOptions{})

	var clients []*filteredClient
	add := func(name string, subs ...filterCase) {
		c := e.join("org-1", "user-1", sioclient.Options{Name: name, Transports: []string{"websocket"}})
		for _, s := range subs {
			subscribeFilter(t, c, s.events, s.expr)
		}
		clients = append(clients, &filteredClient{c: c, subs: subs})
	}
	for i, fc := range filterCases {
		add(fmt.Sprintf("case-%d", i), fc)
	}
	add("same-as-case-0", filterCases[0])
	add("unfiltered", filterCase{events: []string{"invoice:*"}})
	add("two-subscribes", filterCases[0], filterCases[13])
	add("refiltered", filterCases[0], filterCases[16])                                 // invoice:* now through the later filter
	add("unfiltered-again", filterCases[1], filterCase{events: []string{"invoice:*"}}) // expense:* filtered, invoice:* not

	catalog := events.Events()
	const total = 800
	for seq := range total {
		info := catalog[rng.IntN(len(catalog))]
		p := randomPayload(rng, info, seq)
		if _, err := e.svc.Emit(context.Background(), info.Name, p, events.Target{}); err != nil {
			t.Fatalf("publish %d %s: %v", seq, info.Name, err)
		}
		for _, fc := range clients {
			if fc.expects(info.Name, p) {
				fc.want = append(fc.want, seq)
			}
		}
	}
	for i, fc := range clients {
		fc.check(t, false)
		t.Logf("%s: %d of %d events", fc.c.Name(), len(fc.want), fc.covered)
		switch {
		case len(fc.want) == 0:
			t.Errorf("%s matched nothing: the test does not test it", fc.c.Name())
		case i < len(filterCases) && len(fc.want) == fc.covered:
			t.Errorf("%s matched all of its %d events: the test does not test it", fc.c.Name(), fc.covered)
		}
	}
	if n := e.gw.Stats().FilterEvaluations; n == 0 || n > total*int64(len(filterCases)+1) {
		t.Errorf("%d filter evaluations for %d events", n, total)
	}
}

// TestFilterRefusals: a filter the gateway cannot honour exactly is refused
// with code invalid_filter and the reason, and changes nothing.
func TestFilterRefusals(t *testing.T) {
	e := newEnv(t, envOptions{eventRate: -1})
	c := e.join("org-1", "user-1", sioclient.Options{})
	subscribeFilter(t, c, []string{"invoice:paid"}, "")

	tests := []struct {
		name     string
		patterns []string
		filter   any
		reason   string
	}{
		{"unknown field", []string{"invoice:*"}, "payload.amout > 1000.0",
			"subscribe: invalid filter for invoice:* (InvoicePayload): 1:8: undefined field 'amout'"},
		{"a field some events lack", []string{"invoice:*", "notification:new", "expense:created"}, "payload.amount > 1000.0",
			"subscribe: invalid filter for notification:new (NotificationPayload): 1:8: undefined field 'amount'"},
		{"every event", []string{"*"}, "has(payload.amount)",
			"subscribe: invalid filter for bank:* (BankPayload): 1:4: undefined field 'amount'"},
		{"not boolean", []string{"invoice:*"}, "payload.amount * 2.0",
			"(InvoicePayload): the expression is a double, it must be a bool"},
		{"syntax", []string{"invoice:*"}, "payload.amount >",
			"(InvoicePayload): 1:17: Syntax error"},
		{"double against int", []string{"invoice:*"}, "payload.amount == 1000",
			"no matching overload for '_==_' applied to '(double, int)'"},
		{"cost", []string{"bank:transactions_synced"}, "payload.transactionIds.exists(x, payload.transactionIds.exists(y, x == y + '!'))",
			"subscribe: invalid filter for bank:transactions_synced (BankPayload): the expression may cost up to"},
		{"too long", []string{"invoice:*"}, "payload.amount > 1.0 ||" + strings.Repeat(" true ||", 200) + " true",
			"subscribe: invalid filter: the expression is 1628 bytes long, at most 1024 are allowed"},
		{"empty", []string{"invoice:*"}, "", "subscribe: invalid filter: filter is empty"},
		{"blank", []string{"invoice:*"}, "  ", "subscribe: invalid filter: filter is empty"},
		{"not a string", []string{"invoice:*"}, 1000, "subscribe: invalid filter: filter is not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r subscribeResult
			ack(t, c, gateway.EventSubscribe, map[string]any{"events": tc.patterns, "filter": tc.filter}, &r)
			if r.Success || r.Code != gateway.CodeInvalidFilter || !strings.Contains(r.Error, tc.reason) {
				t.Fatalf("ack %+v, want code %s and an error with %q", r, gateway.CodeInvalidFilter, tc.reason)
			}
		})
	}
	// Nothing changed: still exactly invoice:paid, unfiltered.
	publishProbes(t, e)
	expectNames(t, c, events.InvoicePaid)
}

// TestSubscriptionUnknownFields: a field the request does not take is
// refused, never ignored: a client that believes it filtered must not get
// everything.
func TestSubscriptionUnknownFields(t *testing.T) {
	e := newEnv(t, envOptions{eventRate: -1})
	c := e.join("org-1", "user-1", sioclient.Options{})
	subscribeFilter(t, c, []string{"invoice:paid"}, "")
	tests := []struct {
		event  string
		req    map[string]any
		reason string
	}{
		{gateway.EventSubscribe, map[string]any{"events": []string{"invoice:*"}, "filters": "payload.amount > 1.0"},
			`subscribe: unknown field "filters"`},
		{gateway.EventSubscribe, map[string]any{"events": []string{"invoice:*"}, "where": map[string]any{"amount": 1}},
			`subscribe: unknown field "where"`},
		{gateway.EventSubscribe, map[string]any{"event": "invoice:created"}, `subscribe: unknown field "event"`},
		{gateway.EventUnsubscribe, map[string]any{"events": []string{"invoice:paid"}, "filter": "payload.amount > 1.0"},
			`unsubscribe: unknown field "filter": unsubscribe takes only events`},
		{gateway.EventUnsubscribe, map[string]any{"events": []string{"invoice:paid"}, "all": true}, `unsubscribe: unknown field "all"`},
	}
	for _, tc := range tests {
		var r subscribeResult
		ack(t, c, tc.event, tc.req, &r)
		if r.Success || r.Code != gateway.CodeUnknownField || !strings.Contains(r.Error, tc.reason) {
			t.Errorf("%s %v: ack %+v, want code %s and an error with %q", tc.event, tc.req, r, gateway.CodeUnknownField, tc.reason)
		}
	}
	publishProbes(t, e)
	expectNames(t, c, events.InvoicePaid)
}

// emitInvoice publishes an invoice event for org-1 with the given amount
// and currency ("" leaves the currency out).
func emitInvoice(t *testing.T, e *env, name events.Name, seq int, amount float64, currency string) {
	t.Helper()
	p := map[string]any{"organizationId": "org-1", "invoiceId": fmt.Sprintf("inv-%d", seq), "seq": seq, "amount": amount}
	if currency != "" {
		p["currency"] = currency
	}
	if _, err := e.svc.Emit(context.Background(), name, p, events.Target{}); err != nil {
		t.Fatal(err)
	}
}

// TestFilterSubscriptionChanges walks one socket through the ways a filter
// combines with subscriptions: one filter per subscribe, for the events of
// that subscribe; a later subscribe to the same events replaces their
// filter (or removes it); unsubscribe removes events with their filters.
func TestFilterSubscriptionChanges(t *testing.T) {
	e := newEnv(t, envOptions{eventRate: -1})
	c := e.join("org-1", "user-1", sioclient.Options{Name: "filtered"})
	const big = "payload.amount > 1000.0"

	// Publishes, in this order: a small and a big EUR invoice:created, the
	// same for invoice:paid, then a big expense:created.
	publish := func() {
		t.Helper()
		emitInvoice(t, e, events.InvoiceCreated, 1, 10, "EUR")
		emitInvoice(t, e, events.InvoiceCreated, 2, 5000, "EUR")
		emitInvoice(t, e, events.InvoicePaid, 3, 10, "EUR")
		emitInvoice(t, e, events.InvoicePaid, 4, 5000, "USD")
		if _, err := e.svc.Emit(context.Background(), events.ExpenseCreated,
			map[string]any{"organizationId": "org-1", "expenseId": "exp-1", "amount": 5000, "seq": 5}, events.Target{}); err != nil {
			t.Fatal(err)
		}
	}
	step := func(what string, want ...int) {
		t.Helper()
		publish()
		settle(t, c)
		var got []int
		for range want {
			got = append(got, seqOf(t, c.NextAny()))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: received %v, want %v", what, got, want)
		}
		noMoreEvents(t, c)
	}

	subscribeFilter(t, c, []string{"invoice:*"}, big)
	step("invoices over 1000", 2, 4)
	subscribeFilter(t, c, []string{"expense:*"}, "payload.amount < 100.0")
	step("and expenses under 100: the invoice filter stays", 2, 4)
	subscribeFilter(t, c, []string{"invoice:paid"}, "")
	step("invoice:paid again without a filter: all of them", 2, 3, 4)
	subscribeFilter(t, c, []string{"invoice:*"}, "payload.currency == 'EUR'")
	step("invoice:* with another filter: it replaces both", 1, 2, 3)
	var r subscribeResult
	ack(t, c, gateway.EventUnsubscribe, map[string]any{"events": []string{"invoice:created"}}, &r)
	if !r.Success || r.Filter != "" {
		t.Fatalf("unsubscribe: %+v", r)
	}
	step("invoice:created unsubscribed", 3)
	subscribeFilter(t, c, []string{"invoice:created"}, "")
	step("invoice:created subscribed again: its filter went with it", 1, 2, 3)
	subscribeFilter(t, c, []string{"*"}, "event != 'invoice:paid'")
	step("everything through one filter", 1, 2, 5)
	ack(t, c, gateway.EventUnsubscribe, map[string]any{"events": []string{"*"}}, &r)
	step("nothing")
	subscribeFilter(t, c, []string{"*"}, "")
	step("everything, unfiltered", 1, 2, 3, 4, 5)
}

// TestFilterEvaluatedOncePerBroadcast: recipients with the same filter
// share one evaluation per event; recipients without a filter cost none.
func TestFilterEvaluatedOncePerBroadcast(t *testing.T) {
	e := newEnv(t, envOptions{})
	var same []*sioclient.Client
	for i := range 4 {
		c := e.join("org-1", fmt.Sprintf("user-%d", i), sioclient.Options{Name: fmt.Sprintf("same-%d", i)})
		subscribeFilter(t, c, []string{"invoice:*"}, "payload.amount > 1000.0")
		same = append(same, c)
	}
	other := e.join("org-1", "user-9", sioclient.Options{Name: "other"})
	subscribeFilter(t, other, []string{"invoice:paid", "invoice:created"}, "payload.currency == 'EUR'")
	plain := e.join("org-1", "user-8", sioclient.Options{Name: "plain"})
	subscribeFilter(t, plain, []string{"invoice:*"}, "")
	elsewhere := e.join("org-2", "user-7", sioclient.Options{Name: "elsewhere"})
	subscribeFilter(t, elsewhere, []string{"invoice:*"}, "payload.amount > 1000.0")

	before := e.gw.Stats().FilterEvaluations
	emitInvoice(t, e, events.InvoiceCreated, 1, 5000, "EUR")
	emitInvoice(t, e, events.InvoicePaid, 2, 10, "EUR")
	emitInvoice(t, e, events.InvoiceSent, 3, 5000, "USD")
	for _, c := range same {
		expectSeqs(t, c, []events.Name{events.InvoiceCreated, events.InvoiceSent}, []int{1, 3})
	}
	expectSeqs(t, other, []events.Name{events.InvoiceCreated, events.InvoicePaid}, []int{1, 2})
	expectSeqs(t, plain, []events.Name{events.InvoiceCreated, events.InvoicePaid, events.InvoiceSent}, []int{1, 2, 3})
	expectSeqs(t, elsewhere, nil, nil)
	// Two distinct programs for invoice:created and invoice:paid, one for
	// invoice:sent (other is not subscribed to it); none for org-2.
	if n := e.gw.Stats().FilterEvaluations - before; n != 5 {
		t.Errorf("%d filter evaluations, want 5: one per event and distinct filter", n)
	}
}

// TestFilterOnRecoveredEvents: the events replayed to a recovered socket
// pass through its filters as live ones do, and the filters stay with the
// session, in memory and through Redis (where the session is stored as
// JSON and its filters compiled again).
func TestFilterOnRecoveredEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		subscribeFilter(t, a, []string{"invoice:*"}, "payload.amount > 1000.0 && payload.currency == 'EUR'")
		subscribeFilter(t, a, []string{"expense:created"}, "")
		first := a.State().SID
		emitInvoice(t, e, events.InvoiceCreated, 1, 5000, "EUR")
		emitInvoice(t, e, events.InvoiceCreated, 2, 5000, "USD")
		expectSeqs(t, a, []events.Name{events.InvoiceCreated}, []int{1})

		drop(t, e, a)
		emitInvoice(t, e, events.InvoicePaid, 3, 10, "EUR")
		emitInvoice(t, e, events.InvoicePaid, 4, 2000, "EUR")
		emitInvoice(t, e, events.InvoiceSent, 5, 2000, "")
		if _, err := e.svc.Emit(context.Background(), events.ExpenseCreated,
			map[string]any{"organizationId": "org-1", "expenseId": "exp-1", "amount": 1, "seq": 6}, events.Target{}); err != nil {
			t.Fatal(err)
		}
		emitInvoice(t, e, events.InvoiceOverdue, 7, 1500.5, "EUR")

		a.Connect()
		if info := a.WaitConnect(); !info.Recovered || info.SID != first {
			t.Fatalf("reconnection %+v, want the recovered socket %s", info, first)
		}
		a.Next(gateway.EventConnected)
		emitInvoice(t, e, events.InvoiceCreated, 8, 999, "EUR") // live again, filtered out
		emitInvoice(t, e, events.InvoiceCreated, 9, 1001, "EUR")
		expectSeqs(t, a, []events.Name{events.InvoicePaid, events.ExpenseCreated, events.InvoiceOverdue, events.InvoiceCreated},
			[]int{4, 6, 7, 9})
	})
}

// TestFiltersAcrossNodes: two gateways over one Redis; an event published
// on either node is filtered on the node of each recipient, by that
// recipient's filters.
func TestFiltersAcrossNodes(t *testing.T) {
	rds := redistest.Start(t)
	node := func(name string) *env {
		cluster, err := redisadapter.New(redisadapter.Config{Addr: rds.Addr, MinRetryDelay: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, envOptions{adapter: cluster.Adapter})
		t.Cleanup(func() { _ = cluster.Close() }) // after the gateway's shutdown (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cluster.WaitSubscribed(ctx); err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
		return e
	}
	a, b := node("a"), node("b")

	bigEUR := filterCases[0]
	onA := &filteredClient{c: a.join("org-1", "user-1", sioclient.Options{Name: "a-big-eur"}), subs: []filterCase{bigEUR}}
	onB := &filteredClient{c: b.join("org-1", "user-2", sioclient.Options{Name: "b-big-eur"}), subs: []filterCase{bigEUR}}
	onB2 := &filteredClient{c: b.join("org-1", "user-3", sioclient.Options{Name: "b-expenses"}), subs: []filterCase{filterCases[13]}}
	plainA := &filteredClient{c: a.join("org-1", "user-4", sioclient.Options{Name: "a-plain"}), subs: []filterCase{{events: []string{"invoice:*", "expense:*"}}}}
	clients := []*filteredClient{onA, onB, onB2, plainA}
	for _, fc := range clients {
		for _, s := range fc.subs {
			subscribeFilter(t, fc.c, s.events, s.expr)
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	invoice, _ := events.Lookup(events.InvoicePaid)
	expense, _ := events.Lookup(events.ExpenseApproved)
	for seq := range 120 {
		info, via := invoice, a
		if seq%3 == 0 {
			info = expense
		}
		if seq%2 == 0 {
			via = b
		}
		p := randomPayload(rng, info, seq)
		if _, err := via.svc.Emit(context.Background(), info.Name, p, events.Target{}); err != nil {
			t.Fatalf("publish %d: %v", seq, err)
		}
		for _, fc := range clients {
			if fc.expects(info.Name, p) {
				fc.want = append(fc.want, seq)
			}
		}
	}
	for _, fc := range clients {
		fc.check(t, true)
		if len(fc.want) == 0 || (len(fc.subs[0].expr) > 0 && len(fc.want) == fc.covered) {
			t.Errorf("%s received %d of %d events: the test does not test it", fc.c.Name(), len(fc.want), fc.covered)
		}
	}
	// Each node evaluated the filters of its own sockets: both did some.
	if a.gw.Stats().FilterEvaluations == 0 || b.gw.Stats().FilterEvaluations == 0 {
		t.Errorf("filter evaluations: node a %d, node b %d", a.gw.Stats().FilterEvaluations, b.gw.Stats().FilterEvaluations)
	}
}
