package engineio_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// dialPlain sends a WebSocket handshake request on a raw connection,
// followed in the same write by extra, and returns the connection.
func dialPlain(t *testing.T, e *env, extra []byte) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	req := append([]byte(e.upgradeRequest("EIO=4&transport=websocket")), extra...)
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	return conn.(*net.TCPConn)
}

// read101 reads the 101 and the open packet that follows it.
func read101(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	f, err := ws.ReadFrame(br)
	if err != nil || f.Header.OpCode != ws.OpText || !bytes.HasPrefix(f.Payload, []byte("0{")) {
		t.Fatalf("open packet: %v %q", err, f.Payload)
	}
	return string(f.Payload)
}

func frameBytes(t *testing.T, f ws.Frame) []byte {
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPlainUpgradeDataBeforeOpen: frames the client sends right behind its
// handshake request, before it could have seen the 101, are read after
// the open packet goes out, in order.
func TestPlainUpgradeDataBeforeOpen(t *testing.T) {
	e := newEnv(t, nil, nil)
	var extra []byte
	for _, m := range []string{"4one", "4two"} {
		extra = append(extra, frameBytes(t, ws.MaskFrame(ws.NewTextFrame([]byte(m))))...)
	}
	conn := dialPlain(t, e, extra)
	br := bufio.NewReader(conn)
	read101(t, br)
	rec := e.h.next(t)
	msgs := rec.waitMessages(t, 2)
	if msgs[0].data != "one" || msgs[1].data != "two" {
		t.Fatalf("messages %v", msgs)
	}
	for _, want := range []string{"4one", "4two"} {
		f, err := ws.ReadFrame(br)
		if err != nil || string(f.Payload) != want {
			t.Fatalf("echo: %v %q, want %q", err, f.Payload, want)
		}
	}
}

// TestPlainUpgradeGarbageBeforeOpen: bytes that are no WebSocket frame
// (a pipelined HTTP request, an unmasked frame, a huge length) right behind
// the handshake close the session and the connection; nothing hangs.
func TestPlainUpgradeGarbageBeforeOpen(t *testing.T) {
	for name, extra := range map[string][]byte{
		"pipelined request": []byte("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"),
		"unmasked frame":    frameBytes(t, ws.NewTextFrame([]byte("4x"))),
		"huge length":       {0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
		"reserved opcode":   {0x83, 0x80, 1, 2, 3, 4},
		"partial header":    {0x81},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			conn := dialPlain(t, e, extra)
			br := bufio.NewReader(conn)
			read101(t, br)
			rec := e.h.next(t)
			if name == "partial header" {
				_ = conn.CloseWrite() // the rest never comes
			}
			rec.waitClosed(t)
			if _, err := io.Copy(io.Discard, br); err != nil && !isReset(err) {
				t.Fatalf("after the session closed: %v", err)
			}
		})
	}
}

// TestPlainUpgradeHalfOpen: a client that sends its handshake and then
// goes away (shuts down its side, resets, or never reads) does not keep
// its session or wedge the server.
func TestPlainUpgradeHalfOpen(t *testing.T) {
	t.Run("close write", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		conn := dialPlain(t, e, nil)
		_ = conn.CloseWrite()
		rec := e.h.next(t)
		if r := rec.waitClosed(t); r != engineio.ReasonTransportClose && r != engineio.ReasonTransportError {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("reset", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		conn := dialPlain(t, e, nil)
		_ = conn.SetLinger(0)
		conn.Close()
		e.h.next(t).waitClosed(t)
		// The server still serves.
		c, _, _ := e.openWS()
		c.conn.Close()
	})
	t.Run("never reads", func(t *testing.T) {
		opts := &engineio.Options{WriteTimeout: 300 * time.Millisecond}
		e := newEnv(t, opts, nil)
		conn := dialPlain(t, e, nil)
		_ = conn.SetReadBuffer(1024)
		rec := e.h.next(t)
		// Fill what the kernel buffers: the session must end by itself.
		big := strings.Repeat("x", 64<<10)
		deadline := time.Now().Add(readTimeout)
		for !rec.isClosed() && time.Now().Before(deadline) {
			if rec.sess.Send(engineio.NewPacket(4, []byte(big))) != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		rec.waitClosed(t)
	})
}
