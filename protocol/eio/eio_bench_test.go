package eio_test

import (
	"bytes"
	"testing"

	"github.com/operate/realtime/protocol/eio"
)

var benchMessage = []byte(`42/events,["invoice:created",{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT"}]`)

// BenchmarkDecodeText: one WebSocket message, once per received frame.
func BenchmarkDecodeText(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	for b.Loop() {
		if _, err := eio.DecodeText(benchMessage); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePayload: a long-polling POST body of 10 messages.
func BenchmarkDecodePayload(b *testing.B) {
	msgs := make([][]byte, 10)
	for i := range msgs {
		msgs[i] = benchMessage
	}
	body := bytes.Join(msgs, []byte{eio.Separator})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		n := 0
		if err := eio.DecodePayload(body, func(eio.Packet) error { n++; return nil }); err != nil || n != 10 {
			b.Fatalf("%d packets, %v", n, err)
		}
	}
}

// BenchmarkAppendPayload: a long-polling GET response of 10 messages, as a
// server builds it for a client that was away for a while.
func BenchmarkAppendPayload(b *testing.B) {
	data := benchMessage[1:]
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range 10 {
			if i > 0 {
				buf = append(buf, eio.Separator)
			}
			buf = eio.AppendText(buf, eio.Message, data)
		}
	}
	b.SetBytes(int64(len(buf)))
}
