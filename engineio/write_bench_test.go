package engineio_test

import (
	"context"
	"io"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/protocol/eio"
)

// The write path of a WebSocket session, end to end on loopback: Send
// queues a shared packet, a flusher writes the queue with one writev, a
// reader in this process drains the socket. internal/corebench measures the
// same path across processes and 10k connections; these run in seconds and
// report allocations.

type wbHandler struct{ sessions chan *engineio.Session }

func (h *wbHandler) Open(s *engineio.Session) engineio.SessionHandler {
	h.sessions <- s
	return wbSession{}
}

type wbSession struct{}

func (wbSession) Message([]byte, bool)        {}
func (wbSession) Closed(engineio.CloseReason) {}

// wbConn is one WebSocket session and the client draining it.
type wbConn struct {
	srv      *engineio.Server
	sess     *engineio.Session
	received atomic.Int64 // bytes read by the client
	target   atomic.Int64 // wait's goal; the reader signals reached when it is met
	reached  chan struct{}
	timeout  *time.Timer // reused: waiting allocates nothing
}

func newWBConn(b *testing.B) *wbConn {
	b.Helper()
	h := &wbHandler{sessions: make(chan *engineio.Session, 1)}
	srv, err := engineio.NewServer(h, &engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, "ws://"+hs.Listener.Addr().String()+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		hs.Close()
		b.Fatal(err)
	}
	var r io.Reader = c
	if br != nil {
		r = io.MultiReader(br, c)
	}
	// The Engine.IO open packet, read from r exactly, so that what follows
	// is counted by the drain below.
	hdr, err := ws.ReadHeader(r)
	if err == nil {
		_, err = io.CopyN(io.Discard, r, hdr.Length)
	}
	if err != nil {
		c.Close()
		hs.Close()
		b.Fatal(err)
	}
	w := &wbConn{srv: srv, sess: <-h.sessions, reached: make(chan struct{}, 1), timeout: time.NewTimer(time.Hour)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if got := w.received.Add(int64(n)); got >= w.target.Load() {
				select {
				case w.reached <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		c.Close()
		<-done
		hs.Close()
	})
	return w
}

// wait blocks until the client has read total bytes.
func (w *wbConn) wait(b *testing.B, total int64) {
	w.target.Store(total)
	w.timeout.Reset(10 * time.Second)
	defer w.timeout.Stop()
	for w.received.Load() < total {
		select {
		case <-w.reached:
		case <-w.timeout.C:
			b.Fatalf("client read %d of %d bytes", w.received.Load(), total)
		}
	}
}

var wbPayload = []byte(`2/events,["invoice:created",{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT"}]`)

// BenchmarkBuildPacket: an Engine.IO message packet and its WebSocket frame,
// built once per broadcast.
func BenchmarkBuildPacket(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = engineio.NewPacket(eio.Message, wbPayload)
	}
}

// BenchmarkWriteOneByOne: one frame per write, the next sent once the
// client has read the previous: the latency of the whole path (queue,
// flusher wake-up, writev, loopback, client read) and its CPU, unmerged.
func BenchmarkWriteOneByOne(b *testing.B) {
	w := newWBConn(b)
	p := engineio.NewPacket(eio.Message, wbPayload)
	base := w.received.Load()
	writes0 := w.srv.Stats().Writes.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := w.sess.Send(p); err != nil {
			b.Fatal(err)
		}
		w.wait(b, base+int64(i+1)*int64(p.Len()))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(w.srv.Stats().Writes.Load()-writes0), "frames/write")
}

// BenchmarkWriteMerged: frames sent as fast as Send takes them (at most 512
// unread): the flusher merges what queued meanwhile into each writev.
func BenchmarkWriteMerged(b *testing.B) {
	w := newWBConn(b)
	p := engineio.NewPacket(eio.Message, wbPayload)
	base := w.received.Load()
	size := int64(p.Len())
	writes0 := w.srv.Stats().Writes.Load()
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		if err := w.sess.Send(p); err != nil {
			b.Fatal(err)
		}
		if i%512 == 511 {
			w.wait(b, base+int64(i-511)*size)
		}
	}
	w.wait(b, base+int64(b.N)*size)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(w.srv.Stats().Writes.Load()-writes0), "frames/write")
}

// BenchmarkWriteBatch16: sixteen frames handed to Send at once (a burst),
// waiting for them to be read before the next sixteen.
func BenchmarkWriteBatch16(b *testing.B) {
	w := newWBConn(b)
	p := engineio.NewPacket(eio.Message, wbPayload)
	batch := make([]*engineio.Packet, 16)
	for i := range batch {
		batch[i] = p
	}
	base := w.received.Load()
	size := int64(p.Len())
	writes0 := w.srv.Stats().Writes.Load()
	b.ReportAllocs()
	b.SetBytes(size * 16)
	b.ResetTimer()
	for i := range b.N {
		if err := w.sess.Send(batch...); err != nil {
			b.Fatal(err)
		}
		w.wait(b, base+int64(i+1)*16*size)
	}
	b.StopTimer()
	b.ReportMetric(float64(16*b.N)/float64(w.srv.Stats().Writes.Load()-writes0), "frames/write")
}
