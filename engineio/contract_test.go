package engineio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// The SessionHandler contract: Message calls are serialized and in order;
// Closed is called exactly once, never during a Message, and no Message
// follows it. The recorder flags every violation (checked at cleanup and
// here); run with -race.

func TestContractWebSocketOrderAndClose(t *testing.T) {
	t.Parallel()
	h := newRecorder(false)
	h.onMessage = func(r *sessionRec, data []byte, binary bool) {
		runtime.Gosched() // widen the window for a concurrent call
	}
	e := newEnv(t, nil, h)
	for round := range 5 {
		c, _, r := e.openWS()
		var buf bytes.Buffer
		const n = 300
		for i := range n {
			_ = ws.WriteFrame(&buf, maskedFrame(ws.OpText, true, []byte("4"+strconv.Itoa(i))))
		}
		go func() {
			_ = c.conn.SetWriteDeadline(time.Now().Add(readTimeout))
			_, _ = c.conn.Write(buf.Bytes())
		}()
		// Close from several sides while messages are being delivered.
		r.waitMessages(t, n/(round+1)/2)
		var wg sync.WaitGroup
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch k {
				case 0:
					r.sess.Close()
				case 1:
					r.sess.CloseWith(engineio.ReasonTransportError, false)
				case 2:
					c.conn.Close()
				case 3:
					_ = r.sess.Send(engineio.NewPacket(4, []byte("x")))
				}
			}()
		}
		wg.Wait()
		r.waitClosed(t)
		got := r.messages()
		for i, m := range got {
			if m.data != strconv.Itoa(i) {
				t.Fatalf("round %d: message %d is %v", round, i, m)
			}
		}
	}
	h.checkContract(t)
}

// Closed waits for a Message call in progress to return.
func TestContractCloseDuringMessage(t *testing.T) {
	t.Parallel()
	h := newRecorder(false)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.onMessage = func(r *sessionRec, data []byte, binary bool) {
		if string(data) == "block" {
			once.Do(func() { close(entered) })
			<-release
		}
	}
	e := newEnv(t, nil, h)
	c, _, r := e.openWS()
	c.sendText("4block")
	c.sendText("4queued behind")
	<-entered
	// Close returns at once; Closed is deferred while Message runs.
	r.sess.Close()
	if r.isClosed() {
		t.Fatal("Closed called while Message was running")
	}
	close(release)
	if reason := r.waitClosed(t); reason != engineio.ReasonForcedClose {
		t.Errorf("reason %q", reason)
	}
	if got := r.messages(); len(got) != 1 {
		t.Errorf("messages after close: %v", got)
	}
	h.checkContract(t)
}

// Same over polling: a POST's packets are delivered in order, and a close
// during its dispatch stops the rest.
func TestContractPolling(t *testing.T) {
	t.Parallel()
	h := newRecorder(false)
	h.onMessage = func(r *sessionRec, data []byte, binary bool) {
		if string(data) == "close-now" {
			go r.sess.CloseWith("handler", false)
			// Closed must not run before this call returns, even if the
			// closing goroutine is quick. (Not waitFor: this is not the
			// test goroutine.)
			deadline := time.Now().Add(waitTimeout)
			for r.sess.Send(engineio.NewPacket(6, nil)) == nil && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			if r.isClosed() {
				r.violate("Closed before the Message call that caused it returned")
			}
		}
	}
	e := newEnv(t, nil, h)
	sid, r := e.handshake()
	var want []string
	for post := range 10 {
		var parts []string
		for i := range 20 {
			s := fmt.Sprintf("%d-%d", post, i)
			parts = append(parts, "4"+s)
			want = append(want, s)
		}
		if status, _ := e.post(sid, strings.Join(parts, "\x1e")); status != 200 {
			t.Fatalf("POST: %d", status)
		}
	}
	got := r.messages()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].data != want[i] {
			t.Fatalf("message %d is %v, want %q", i, got[i], want[i])
		}
	}
	e.post(sid, "4close-now\x1e4dropped")
	if reason := r.waitClosed(t); reason != "handler" {
		t.Errorf("reason %q", reason)
	}
	if got := r.messages(); got[len(got)-1].data != "close-now" {
		t.Errorf("a message after the close: %v", got[len(got)-1])
	}
	h.checkContract(t)
}

// Messages keep their order across the upgrade.
func TestContractUpgradeOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, newRecorder(false))
	sid, r := e.handshake()
	e.post(sid, "4a\x1e4b")
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	e.post(sid, "4c")
	c.sendText("5")
	c.sendText("4d")
	got := r.waitMessages(t, 4)
	if len(got) != 4 || got[0].data != "a" || got[1].data != "b" || got[2].data != "c" || got[3].data != "d" {
		t.Fatalf("messages %v", got)
	}
}

// A session closed inside Handler.Open (a handler refusing it) still gets
// Closed, once, after Open has returned.
func TestContractCloseInOpen(t *testing.T) {
	t.Parallel()
	h := newRecorder(false)
	h.onOpen = func(s *engineio.Session) { s.Close() }
	e := newEnv(t, nil, h)
	resp, body := e.get("EIO=4&transport=polling")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "0{") || !strings.HasSuffix(body, "\x1e1") {
		t.Fatalf("handshake of a refused session: %d %q", resp.StatusCode, body)
	}
	r := h.next(t)
	if reason := r.waitClosed(t); reason != engineio.ReasonForcedClose {
		t.Errorf("reason %q", reason)
	}
	if n := e.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions", n)
	}

	// Over WebSocket: the open packet, then the close.
	c := e.dialWS("EIO=4&transport=websocket")
	c.expectPrefix("0{")
	c.expectClose(1000)
	h.next(t).waitClosed(t)
	h.checkContract(t)
}

// Shutdown while Handler.Open runs: Closed comes after Open returns, and
// exactly once; the client gets the open packet then the close; Shutdown
// returns as soon as the session is gone.
func TestContractShutdownDuringOpen(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"polling", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			h := newRecorder(false)
			inOpen := make(chan *engineio.Session, 1)
			release := make(chan struct{})
			h.onOpen = func(s *engineio.Session) {
				inOpen <- s
				<-release
			}
			e := newEnv(t, nil, h)
			handshake := make(chan string, 1)
			go func() {
				if transport == "polling" {
					_, body, err := e.tryRequest("GET", "EIO=4&transport=polling", nil, nil)
					if err != nil {
						body = err.Error()
					}
					handshake <- body
					return
				}
				c, err := e.tryDialWS("EIO=4&transport=websocket")
				if err != nil {
					handshake <- err.Error()
					return
				}
				var got []string
				for {
					f, err := c.readFrame()
					if err != nil {
						break
					}
					if f.Header.OpCode == ws.OpClose {
						code, _ := ws.ParseCloseFrameData(f.Payload)
						got = append(got, fmt.Sprint("close ", int(code)))
						continue
					}
					got = append(got, string(f.Payload))
				}
				handshake <- strings.Join(got, "\x1e")
			}()
			s := <-inOpen
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				shut <- e.srv.Shutdown(ctx)
			}()
			// Wait until Shutdown has closed the session (Send then fails).
			waitFor(t, "the session closed by Shutdown", func() bool {
				return errors.Is(s.Send(engineio.NewPacket(6, nil)), engineio.ErrSessionClosed)
			})
			close(release)
			r := h.next(t)
			if reason := r.waitClosed(t); reason != engineio.ReasonServerShutdown {
				t.Errorf("reason %q", reason)
			}
			want := "\x1e1"
			if transport == "websocket" {
				want = "\x1eclose 1000"
			}
			if body := <-handshake; !strings.HasPrefix(body, "0{") || !strings.HasSuffix(body, want) {
				t.Errorf("handshake response %q", body)
			}
			if err := <-shut; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			h.checkContract(t)
		})
	}
}
