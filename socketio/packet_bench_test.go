package socketio_test

import (
	"encoding/json"
	"testing"

	"github.com/operate/realtime/socketio"
)

// benchPayload is a typical gateway event payload.
var benchPayload = json.RawMessage(`{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT","customerName":"Muster GmbH"}`)

// BenchmarkNewPacketRaw: the gateway's path, once per published event: the
// payload is already JSON and is copied verbatim.
func BenchmarkNewPacketRaw(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, err := socketio.NewPacket("invoice:created", benchPayload); err != nil {
			b.Fatal(err)
		}
	}
}

type benchInvoice struct {
	Timestamp      string  `json:"timestamp"`
	OrganizationID string  `json:"organizationId"`
	UserID         string  `json:"userId,omitempty"`
	InvoiceID      string  `json:"invoiceId"`
	InvoiceNumber  string  `json:"invoiceNumber,omitempty"`
	Amount         float64 `json:"amount"`
	Currency       string  `json:"currency"`
	Status         string  `json:"status"`
}

// BenchmarkNewPacketStruct: an argument encoded with encoding/json (the
// "connected" event, acknowledgements, library users' emits).
func BenchmarkNewPacketStruct(b *testing.B) {
	v := benchInvoice{"2026-11-26T06:33:12.123Z", "org_01HZX8", "usr_42", "inv_9f8e7d", "INV-2026-0042", 1250.5, "EUR", "SENT"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.NewPacket("invoice:created", v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewPacketScalars: strings and numbers (chat-style emits).
func BenchmarkNewPacketScalars(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.NewPacket("message", "room:lobby", "hello, world", 42); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewPacketBinary: a binary attachment (placeholder + attachment).
func BenchmarkNewPacketBinary(b *testing.B) {
	blob := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.NewPacket("file", map[string]string{"name": "a.pdf"}, blob); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPacketEvent: reading the event name back, once per broadcast for
// the gateway's delivery filter (memoized there) and per received event.
func BenchmarkPacketEvent(b *testing.B) {
	p, err := socketio.NewPacket("invoice:created", benchPayload)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p.Event() != "invoice:created" {
			b.Fatal(p.Event())
		}
	}
}
