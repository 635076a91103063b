package engineio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// echoHandler echoes every message and counts the sessions it saw close,
// keeping nothing else: a fuzzing run opens millions of sessions.
type echoHandler struct{ opened, closed atomic.Int64 }

type echoSession struct {
	h    *echoHandler
	sess *engineio.Session
}

func (h *echoHandler) Open(s *engineio.Session) engineio.SessionHandler {
	h.opened.Add(1)
	return echoSession{h, s}
}

func (e echoSession) Message(data []byte, binary bool) {
	if binary {
		_ = e.sess.Send(engineio.NewBinaryPacket(data))
	} else {
		_ = e.sess.Send(engineio.NewPacket(4, data))
	}
}

func (e echoSession) Closed(engineio.CloseReason) { e.h.closed.Add(1) }

// wsFuzzSeeds are client byte streams: well-formed traffic, then each kind
// of mistake the reader must catch (the frames are masked unless noted).
func wsFuzzSeeds() [][]byte {
	frame := func(op ws.OpCode, fin bool, payload string) []byte {
		var b bytes.Buffer
		_ = ws.WriteFrame(&b, maskedFrame(op, fin, []byte(payload)))
		return b.Bytes()
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	big := string(bytes.Repeat([]byte("x"), 300))
	var unmasked bytes.Buffer
	_ = ws.WriteFrame(&unmasked, ws.NewTextFrame([]byte("4hi")))
	return [][]byte{
		frame(ws.OpText, true, "4hello"),
		cat(frame(ws.OpText, true, "4a"), frame(ws.OpBinary, true, "\x01\x02"), frame(ws.OpText, true, "4"+big)),
		cat(frame(ws.OpText, false, "4he"), frame(ws.OpPing, true, "p"), frame(ws.OpContinuation, true, "llo")),
		cat(frame(ws.OpText, false, "4\xc3"), frame(ws.OpContinuation, true, "\xa9")),
		frame(ws.OpClose, true, string(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))),
		frame(ws.OpContinuation, true, "x"),
		frame(ws.OpPing, false, "x"),
		frame(ws.OpText, true, "4\xff"),
		frame(ws.OpText, true, "9nope"),
		frame(ws.OpText, true, "2"),
		frame(ws.OpText, true, "5"),
		frame(ws.OpCode(0x3), true, "x"),
		unmasked.Bytes(),
		frame(ws.OpText, true, "4"+string(bytes.Repeat([]byte("y"), 5000))),      // over MaxPayload
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, // 2^63-1 bytes announced
		{0x81, 0xfe, 0x10, 0x00, 1, 2, 3, 4},                                     // 4096 announced, none sent
		{0xc1, 0x82, 0, 0, 0, 0, '4', 'x'},                                       // RSV1 without deflate
		{0x81},
		{},
	}
}

// FuzzWebSocketFrames writes arbitrary bytes on an open WebSocket session,
// after the Engine.IO handshake, then ends its half of the stream. Whatever
// the bytes, the server must answer with well-formed server frames only
// (unmasked, no reserved bits, a known opcode, nothing after a close frame
// and a close code it uses), must close the connection once the client's
// stream has ended (no hang), and must end the session (no leak). A panic
// anywhere in the server fails the run too.
func FuzzWebSocketFrames(f *testing.F) {
	for _, s := range wsFuzzSeeds() {
		f.Add(s)
	}
	h := &echoHandler{}
	srv, err := engineio.NewServer(h, &engineio.Options{
		MaxPayload: 4096, PingInterval: time.Minute, PingTimeout: time.Minute, Logger: quietLogger,
	})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Options().Path, srv)
	hs := httptest.NewServer(mux)
	f.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		hs.Close()
	})
	url := "ws://" + hs.Listener.Addr().String() + srv.Options().Path + "?EIO=4&transport=websocket"

	// Each input is a new connection, and each leaves one in TIME_WAIT:
	// rotating the source address over 127.1.0.0/16 keeps a long run from
	// exhausting the ephemeral ports of one address pair.
	var conns atomic.Uint32
	dialer := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		n := conns.Add(1)
		src := &net.TCPAddr{IP: net.IPv4(127, 1, byte(n>>8), byte(n))}
		return (&net.Dialer{LocalAddr: src}).DialContext(ctx, network, addr)
	}}

	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, br, _, err := dialer.Dial(ctx, url)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		var r io.Reader = conn
		if br != nil {
			r = io.MultiReader(br, conn)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if open, err := ws.ReadFrame(r); err != nil || open.Header.OpCode != ws.OpText || !bytes.HasPrefix(open.Payload, []byte("0{")) {
			t.Fatalf("open packet: %v %q", err, open.Payload)
		}
		if _, err := conn.Write(data); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("write: %v", err)
		}
		_ = conn.(*net.TCPConn).CloseWrite()

		closed := false
		for {
			fr, err := ws.ReadFrame(r)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
					break
				}
				t.Fatalf("after %q: the server neither answered well-formed frames nor closed: %v", data, err)
			}
			hd := fr.Header
			switch {
			case closed:
				t.Fatalf("after %q: a %v frame after the close frame", data, hd.OpCode)
			case hd.Masked || hd.Rsv != 0:
				t.Fatalf("after %q: server frame masked %t, rsv %d", data, hd.Masked, hd.Rsv)
			case hd.OpCode == ws.OpClose:
				closed = true
				if len(fr.Payload) >= 2 {
					code, _ := ws.ParseCloseFrameData(fr.Payload)
					switch code {
					case ws.StatusNormalClosure, ws.StatusProtocolError, ws.StatusInvalidFramePayloadData, ws.StatusMessageTooBig:
					default:
						t.Fatalf("after %q: close code %d", data, code)
					}
				}
			case hd.OpCode != ws.OpText && hd.OpCode != ws.OpBinary && hd.OpCode != ws.OpPong:
				t.Fatalf("after %q: server sent opcode %v", data, hd.OpCode)
			}
		}
		// Every session opened so far must have ended.
		deadline := time.Now().Add(5 * time.Second)
		for h.closed.Load() != h.opened.Load() || srv.SessionCount() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("after %q: %d sessions opened, %d closed, %d still registered", data, h.opened.Load(), h.closed.Load(), srv.SessionCount())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// isReset: the server may close while we write or before we read all.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
