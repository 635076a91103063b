package filter

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
)

func newTestCompiler(t *testing.T) *Compiler {
	t.Helper()
	c, err := NewCompiler(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefusals: what a filter may not be, and the reason given.
func TestRefusals(t *testing.T) {
	c := newTestCompiler(t)
	tests := []struct {
		name, expr string
		event      events.Name
		typ        string // the PayloadType of the error
		reason     string
	}{
		{"empty", "  ", events.InvoicePaid, "", "the expression is empty"},
		{"too long", "payload.amount > 1.0" + strings.Repeat(" ", DefaultMaxLength), events.InvoicePaid, "", "at most 1024 are allowed"},
		{"not UTF-8", "payload.currency == '\xff'", events.InvoicePaid, "", "not valid UTF-8"},
		{"syntax", "payload.amount >", events.InvoicePaid, "InvoicePayload", "1:17: Syntax error"},
		{"unknown field", "payload.amout > 1000.0", events.InvoicePaid, "InvoicePayload", "1:8: undefined field 'amout'"},
		{"field of another type", "payload.amount > 1000.0", events.NotificationNew, "NotificationPayload", "undefined field 'amount'"},
		{"unknown variable", "amount > 1000.0", events.InvoicePaid, "InvoicePayload", "undeclared reference to 'amount'"},
		{"not a bool", "payload.amount", events.InvoicePaid, "InvoicePayload", "the expression is a double, it must be a bool"},
		{"a string", "payload.currency + 'x'", events.InvoicePaid, "InvoicePayload", "it must be a bool"},
		{"wrong operand type", "payload.currency > 3", events.InvoicePaid, "InvoicePayload", "found no matching overload for '_>_' applied to '(string, int)'"},
		{"double equals int", "payload.amount == 1000", events.InvoicePaid, "InvoicePayload", "found no matching overload for '_==_' applied to '(double, int)'"},
		{"unknown function", "payload.currency.lower() == 'eur'", events.InvoicePaid, "InvoicePayload", "undeclared reference to 'lower'"},
		{"quadratic", "payload.transactionIds.exists(x, payload.transactionIds.exists(y, x != y && x == y))",
			events.BankTransactionsSynced, "BankPayload", "more than the limit of 10485760"},
		{"regex in a loop", "payload.transactionIds.exists(x, x.matches('^tx-[0-9]+$'))",
			events.BankTransactionsSynced, "BankPayload", "may cost up to"},
		{"too deep", strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40), events.InvoicePaid, "InvoicePayload", "recursion"},
		{"unknown event", "true", "invoice:nope", "", `unknown event "invoice:nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Compile(tc.expr, tc.event)
			fe, ok := err.(*Error)
			if p != nil || !ok || fe.PayloadType != tc.typ || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("Compile(%q) = %v, %#v; want an *Error for %q saying %q", tc.expr, p, err, tc.typ, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// TestMatch: evaluation against decoded payloads, with CEL's semantics and
// ours for what a payload lacks.
func TestMatch(t *testing.T) {
	c := newTestCompiler(t)
	const invoice = `{"organizationId":"org-1","invoiceId":"inv-1","amount":1500.5,"currency":"EUR","timestamp":"2025-03-01T10:00:00.000Z"}`
	const bare = `{"organizationId":"org-1","invoiceId":"inv-2"}`
	const bank = `{"organizationId":"org-1","transactionIds":["tx-1","tx-2"],"transactionCount":2,"autoApproved":true,"confidence":0.4}`
	tests := []struct {
		event   events.Name
		payload string
		expr    string
		want    bool
	}{
		{events.InvoicePaid, invoice, "payload.amount > 1000.0 && payload.currency == 'EUR'", true},
		{events.InvoicePaid, invoice, "payload.amount > 1000 && payload.currency == 'USD'", false},
		{events.InvoicePaid, invoice, "payload.amount > 2000", false}, // double against an int literal
		{events.InvoicePaid, invoice, "payload.amount == 1500.5", true},
		{events.InvoicePaid, invoice, "payload.currency in ['EUR', 'CHF']", true},
		{events.InvoicePaid, invoice, "payload.invoiceId.startsWith('inv-') && size(payload.invoiceId) == 5", true},
		{events.InvoicePaid, invoice, "payload.invoiceId.matches('^inv-[0-9]+$')", true},
		{events.InvoicePaid, invoice, "payload.timestamp > timestamp('2025-01-01T00:00:00Z')", true},
		{events.InvoicePaid, invoice, "payload.timestamp.getMonth() == 2", true}, // zero-based, UTC
		{events.InvoicePaid, invoice, "event == 'invoice:paid'", true},
		{events.InvoiceCreated, invoice, "event == 'invoice:paid'", false},
		{events.InvoicePaid, invoice, "has(payload.amount) && !has(payload.status)", true},
		// An optional field the payload lacks: the comparison errs, the
		// filter does not match, whichever way it is written...
		{events.InvoicePaid, bare, "payload.amount > 1000.0", false},
		{events.InvoicePaid, bare, "payload.amount <= 1000.0", false},
		{events.InvoicePaid, bare, "!(payload.amount > 1000.0)", false},
		{events.InvoicePaid, bare, "payload.amount > 1000.0 && true", false},
		// ...unless the rest decides without it, as CEL's && and || do.
		{events.InvoicePaid, bare, "payload.amount > 1000.0 || payload.invoiceId == 'inv-2'", true},
		{events.InvoicePaid, bare, "payload.invoiceId == 'inv-2' || payload.amount > 1000.0", true},
		{events.InvoicePaid, bare, "payload.amount > 1000.0 && payload.invoiceId == 'nope'", false},
		{events.InvoicePaid, bare, "!has(payload.amount) || payload.amount > 1000.0", true},
		{events.InvoicePaid, bare, "has(payload.amount) && payload.amount > 1000.0", false},
		{events.InvoicePaid, bare, "payload.?amount.orValue(0.0) == 0.0", true},
		{events.InvoicePaid, invoice, "payload.?amount.orValue(0.0) > 1000.0", true},
		{events.InvoicePaid, bare, "payload.?status.orValue('open') == 'open'", true},
		{events.BankTransactionsSynced, bank, "'tx-2' in payload.transactionIds", true},
		{events.BankTransactionsSynced, bank, "payload.transactionIds.all(x, x.startsWith('tx-'))", true},
		{events.BankTransactionsSynced, bank, "payload.transactionCount >= 2 && payload.autoApproved", true},
		{events.BankTransactionsSynced, bank, "payload.transactionCount == 2.0", false}, // int against double: a type error... see below
		{events.BankTransactionsSynced, bank, "payload.confidence < 0.5", true},
		{events.BankTransactionsSynced, bank, "payload.confidence < 1", true},
		{events.TaxFilingDueReminder, `{"organizationId":"o","taxYear":2024,"dueDate":"2025-05-31T00:00:00.000Z"}`,
			"payload.taxYear == 2024 && payload.dueDate < timestamp('2025-06-01T00:00:00Z')", true},
		{events.NotificationNew, `{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":"error"}`,
			"payload.type in ['error', 'warning']", true},
		{events.AutomationAutoApproved, `{"organizationId":"o","entityType":"t","entityId":"e","feature":"f","action":"a","metadata":{"flag":true,"n":3}}`,
			"'flag' in payload.metadata && payload.metadata.flag == true && payload.metadata.n > 2", true},
		{events.AutomationAutoApproved, `{"organizationId":"o","entityType":"t","entityId":"e","feature":"f","action":"a"}`,
			"payload.metadata.flag == true", false},
		// Values of the wrong type (an event that bypassed validation)
		// count as absent.
		{events.InvoicePaid, `{"organizationId":"o","invoiceId":"i","amount":"1500"}`, "has(payload.amount)", false},
		{events.InvoicePaid, `{"organizationId":"o","invoiceId":"i","amount":null}`, "payload.amount > 0.0 || true", true},
		{events.BankTransactionsSynced, `{"organizationId":"o","transactionCount":2.5}`, "has(payload.transactionCount)", false},
		{events.BankTransactionsSynced, `{"organizationId":"o","transactionIds":["a",1]}`, "has(payload.transactionIds)", false},
		{events.TaxFilingDueReminder, `{"organizationId":"o","dueDate":"tomorrow"}`, "has(payload.dueDate)", false},
		// The last of repeated keys counts, as for JSON.parse in the
		// browser; escaped keys are read decoded; spaces are fine.
		{events.InvoicePaid, `{"organizationId":"o","invoiceId":"i","amount":1,"amount":2000}`, "payload.amount > 1000.0", true},
		{events.InvoicePaid, `{"organizationId":"o","invoiceId":"i","\u0061mount":2000}`, "payload.amount > 1000.0", true},
		{events.InvoicePaid, ` { "organizationId" : "o" , "invoiceId" : "i" , "currency" : "EUR" } `, "payload.currency == 'EUR'", true},
		{events.InvoicePaid, `[1,2]`, "has(payload.invoiceId)", false},
	}
	for _, tc := range tests {
		p, err := c.Compile(tc.expr, tc.event)
		if err != nil {
			if tc.expr == "payload.transactionCount == 2.0" {
				continue // refused at compile time, which is the point
			}
			t.Errorf("Compile(%q): %v", tc.expr, err)
			continue
		}
		pl := c.Decode(string(tc.event), []byte(tc.payload))
		if got := p.Match(pl); got != tc.want {
			t.Errorf("%s %s: %q = %v, want %v", tc.event, tc.payload, tc.expr, got, tc.want)
		}
	}
	if c.Decode("invoice:nope", []byte(invoice)) != nil {
		t.Error("Decode of an unknown event is not nil")
	}
	p, _ := c.Compile("true", events.InvoicePaid)
	if p.Match(c.Decode(string(events.BankSyncError), []byte(bank))) || p.Match(nil) {
		t.Error("a program matched a payload of another type")
	}
}

// TestProgramsShared: one Program per expression and payload type while it
// is in use, so that recipients with equal filters evaluate once; the cache
// forgets programs nobody holds.
func TestProgramsShared(t *testing.T) {
	c := newTestCompiler(t)
	a, err := c.Compile("payload.amount > 1.0", events.InvoicePaid)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Compile("payload.amount > 1.0", events.InvoiceCreated) // same payload type
	e, _ := c.Compile("payload.amount > 1.0", events.ExpenseCreated)
	if a != b || a == e || e.PayloadType() != "ExpensePayload" || a.Expression() != "payload.amount > 1.0" {
		t.Fatalf("programs %p %p %p: want the first two shared, the third apart", a, b, e)
	}
	if n := c.cachedPrograms(); n != 2 {
		t.Fatalf("%d cached programs, want 2", n)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(e)
	a, b, e = nil, nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for c.cachedPrograms() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d programs still cached after nothing holds them", c.cachedPrograms())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFieldsCoverCatalog: every field kind of the catalog has a CEL type.
func TestFieldsCoverCatalog(t *testing.T) {
	for _, info := range events.Events() {
		for _, f := range info.Fields() {
			if _, err := celType(f); err != nil {
				t.Errorf("%s.%s (%s): %v", info.PayloadType, f.Name, f.Kind, err)
			}
		}
	}
}

// BenchmarkDecode and BenchmarkMatch: what a broadcast pays once for all of
// its recipients with filters (decoding its payload), and once per distinct
// filter among them (one evaluation).
func BenchmarkDecode(b *testing.B) {
	c, err := NewCompiler(Config{})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte(`{"organizationId":"org-1","invoiceId":"inv-1","amount":1500.5,"currency":"EUR","timestamp":"2025-01-31T09:30:00.000Z","invoiceNumber":"INV-2025-0042","status":"sent"}`)
	b.ReportAllocs()
	for range b.N {
		if c.Decode(string(events.InvoiceCreated), raw) == nil {
			b.Fatal("not decoded")
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	c, err := NewCompiler(Config{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := c.Compile("payload.amount > 1000.0 && payload.currency == 'EUR'", events.InvoiceCreated)
	if err != nil {
		b.Fatal(err)
	}
	pl := c.Decode(string(events.InvoiceCreated), []byte(`{"organizationId":"org-1","invoiceId":"inv-1","amount":1500.5,"currency":"EUR"}`))
	b.ReportAllocs()
	for range b.N {
		if !p.Match(pl) {
			b.Fatal("no match")
		}
	}
}

// TestCostLimitOnLargePayloads: the cost estimate assumes payloads of at
// most MaxPayload bytes; evaluations on a larger one (from a publisher that
// bypassed the HTTP API's limit) stop at the cost limit, and do not match.
func TestCostLimitOnLargePayloads(t *testing.T) {
	c, err := NewCompiler(Config{MaxPayload: 200, MaxCost: 2000})
	if err != nil {
		t.Fatal(err)
	}
	const expr = "payload.transactionIds.all(x, x.startsWith('tx'))"
	p, err := c.Compile(expr, events.BankTransactionsSynced)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile("payload.transactionIds.all(x, payload.transactionIds.exists(y, x == y))", events.BankTransactionsSynced); err == nil {
		t.Fatal("a quadratic expression passed the estimate")
	}
	payload := func(n int) []byte {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = `"tx"`
		}
		return []byte(`{"organizationId":"o","transactionIds":[` + strings.Join(ids, ",") + `]}`)
	}
	if small := payload(10); !p.Match(c.Decode(string(events.BankTransactionsSynced), small)) {
		t.Errorf("%q does not match %d bytes", expr, len(small))
	}
	if large := payload(2000); p.Match(c.Decode(string(events.BankTransactionsSynced), large)) {
		t.Errorf("%q matched %d bytes, past its cost limit", expr, len(large))
	}
}
