package sio_test

import (
	"testing"

	"github.com/operate/realtime/protocol/sio"
)

// The packets of the hot paths: a gateway event as a server sends it, and
// what clients send (a CONNECT with a token, an event with an ack id).
var (
	benchEvent   = []byte(`2/events,["invoice:created",{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT"}]`)
	benchConnect = []byte(`0/events,{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3NjQxNDM5OTIsImlhdCI6MTc2NDA1NzU5Miwib3JnSWQiOiJvcmdfMDAwMDEiLCJyb2xlIjoibWVtYmVyIiwic3ViIjoidTEifQ.9lJ0cS5G3Jk9h3Gd0A0v1dWm3Q1x7bXyI6oVr2yq1ck"}`)
	benchAck     = []byte(`2/events,17["subscribe",{"events":["invoice:*","expense:approved","bank:sync_error"]}]`)
)

func benchDecode(b *testing.B, s []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := sio.Decode(s, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEvent: an EVENT with a namespace and a 200-byte payload
// (validated, not parsed: Data aliases the input).
func BenchmarkDecodeEvent(b *testing.B) { benchDecode(b, benchEvent) }

// BenchmarkDecodeConnect: a CONNECT carrying a JWT, once per handshake.
func BenchmarkDecodeConnect(b *testing.B) { benchDecode(b, benchConnect) }

// BenchmarkDecodeEventWithAck: a client request with an ack id.
func BenchmarkDecodeEventWithAck(b *testing.B) { benchDecode(b, benchAck) }

// BenchmarkAppendHeader: the header of an outgoing EVENT, once per broadcast.
func BenchmarkAppendHeader(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = sio.AppendHeader(buf[:0], sio.Event, 0, "/events", false, 0)
	}
}

// BenchmarkSplitArray: splitting an event's arguments, once per received event.
func BenchmarkSplitArray(b *testing.B) {
	arr := benchAck[len(`2/events,17`):]
	dst := make([][]byte, 0, 4)
	b.ReportAllocs()
	b.SetBytes(int64(len(arr)))
	for b.Loop() {
		var ok bool
		if dst, ok = sio.SplitArray(dst[:0], arr); !ok {
			b.Fatal("not an array")
		}
	}
}

// BenchmarkAppendString: the event name, JSON-quoted, once per emit.
func BenchmarkAppendString(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = sio.AppendString(buf[:0], "bank:transaction_auto_approved")
	}
}
