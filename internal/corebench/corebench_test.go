package corebench

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/socketio"
)

// conns is the room size of the targets.
const conns = 10_000

// payload is a typical gateway event.
var payload = json.RawMessage(`{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT","customerName":"Muster GmbH"}`)

// startServer serves a Socket.IO server whose sockets all join "org:1".
// Heartbeats are pushed out of the measurement window.
func startServer(tb testing.TB) (*socketio.Server, string) {
	return startServerWith(tb, nil)
}

// startServerWith is startServer with connection state recovery (nil: off).
func startServerWith(tb testing.TB, recovery *socketio.RecoveryOptions) (*socketio.Server, string) {
	tb.Helper()
	srv, err := socketio.NewServer(&socketio.Options{
		Engine:   &engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 8 << 20},
		Recovery: recovery,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv.Of("/").OnConnection(func(s *socketio.Socket) { s.Join("org:1") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() { hs.Close() })
	return srv, ln.Addr().String()
}

func waitSockets(tb testing.TB, nsp *socketio.Namespace, n int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for nsp.SocketCount() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d sockets connected", nsp.SocketCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkIdleConnection reports the server's memory per idle Socket.IO
// connection over WebSocket (heap + stack after GC, and RSS).
func BenchmarkIdleConnection(b *testing.B) {
	for range b.N {
		srv, addr := startServer(b)
		measureIdle(b, func() {
			startChild(b, "sio", addr, conns)
			waitSockets(b, srv.Of("/"), conns)
		})
	}
	b.ReportMetric(0, "ns/op")
}

// measureIdle reports the memory per connection that connect (conns
// connections, all of them up when it returns) added to the process.
func measureIdle(b *testing.B, connect func()) {
	before := snapshot()
	connect()
	time.Sleep(200 * time.Millisecond) // let handshake goroutines exit
	after := snapshot()
	if path := os.Getenv("COREBENCH_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/conns, "heap+stack-B/conn")
	b.ReportMetric(float64(after.heap-before.heap)/conns, "heap-B/conn")
	b.ReportMetric(float64(after.stack-before.stack)/conns, "stack-B/conn")
	b.ReportMetric(float64(after.rss-before.rss)/conns, "rss-B/conn")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/conns, "goroutines/conn")
}

// BenchmarkBroadcast10k: one event broadcast to a room of 10,000 WebSocket
// clients, waiting for full delivery before the next. It reports server
// CPU per delivery, the same figure for writing a same-sized frame with one
// write system call per connection (the floor for unmerged fan-out), their
// ratio, and heap allocations per recipient.
func BenchmarkBroadcast10k(b *testing.B) {
	rawPerWrite := rawWriteCost(b)
	srv, addr := startServer(b)
	c := startChild(b, "sio", addr, conns)
	nsp := srv.Of("/")
	waitSockets(b, nsp, conns)
	room := nsp.To("org:1")
	// Warm up queues and pools.
	_ = room.Emit("invoice:created", payload)
	c.expect(b, conns)

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		if err := room.Emit("invoice:created", payload); err != nil {
			b.Fatal(err)
		}
		c.expect(b, int64(conns)*int64(i+2))
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	deliveries := float64(b.N) * conns
	perDelivery := float64(cpu.Nanoseconds()) / deliveries
	b.ReportMetric(perDelivery/1000, "µs-cpu/delivery")
	b.ReportMetric(rawPerWrite/1000, "µs-cpu/raw-write")
	b.ReportMetric(perDelivery/rawPerWrite, "x-raw-write")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/recipient")
}

// BenchmarkBurst10k: bursts of 100 events into a room of 10,000 clients;
// queued frames are merged into fewer writes.
func BenchmarkBurst10k(b *testing.B) { benchBurst(b, nil) }

// BenchmarkBurst10kRecovery is BenchmarkBurst10k with connection state
// recovery on: every event is logged, carries its offset, and is queued
// under the namespace's log-order lock.
func BenchmarkBurst10kRecovery(b *testing.B) {
	benchBurst(b, &socketio.RecoveryOptions{})
}

func benchBurst(b *testing.B, recovery *socketio.RecoveryOptions) {
	const burst = 100
	srv, addr := startServerWith(b, recovery)
	c := startChild(b, "sio", addr, conns)
	nsp := srv.Of("/")
	waitSockets(b, nsp, conns)
	room := nsp.To("org:1")
	// Warm up with one burst: session queues grow to their working size.
	for range burst {
		_ = room.Emit("invoice:created", payload)
	}
	c.expect(b, conns*burst)
	stats := srv.Engine().Stats()
	writes0 := stats.Writes.Load()

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	cpu0 := cpuTime()
	total := int64(conns) * burst
	for range b.N {
		for range burst {
			if err := room.Emit("invoice:created", payload); err != nil {
				b.Fatal(err)
			}
		}
		total += conns * burst
		c.expect(b, total)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	deliveries := float64(b.N) * conns * burst
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries/1000, "µs-cpu/delivery")
	b.ReportMetric(deliveries/float64(stats.Writes.Load()-writes0), "frames/write")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/recipient")
}

// rawWriteCost measures the server CPU of writing one frame of the
// broadcast's size to each of conns connections with one write each.
func rawWriteCost(b *testing.B) float64 {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan []net.Conn, 1)
	go func() {
		var cs []net.Conn
		for len(cs) < conns {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			cs = append(cs, c)
		}
		accepted <- cs
	}()
	ch := startChild(b, "raw", ln.Addr().String(), conns)
	cs := <-accepted
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	p, _ := socketio.NewPacket("invoice:created", payload)
	frame := append([]byte{0x81, 126, 0, 0, '4', '2'}, p.Data...)
	frame[2], frame[3] = byte((len(frame)-4)>>8), byte(len(frame)-4)
	const rounds = 10
	cpu0 := cpuTime()
	for r := range rounds {
		for _, c := range cs {
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
		ch.expect(b, int64(len(frame))*conns*int64(r+1))
	}
	return float64((cpuTime() - cpu0).Nanoseconds()) / (rounds * conns)
}

// writeHeapProfile saves the live heap, to see what an idle connection holds.
func writeHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}
