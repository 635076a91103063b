package wsframe_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/internal/wsframe"
)

// serverFrame encodes an unmasked frame as a server sends it.
func serverFrame(fin bool, op wsframe.Opcode, p []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(p); {
	case n < 126:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		out = append(out, 127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(out, p...)
}

// readClientFrame reads one frame a client sent, checks that it is masked
// and final, and returns it unmasked.
func readClientFrame(t *testing.T, r *bufio.Reader) (wsframe.Opcode, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading a client frame: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 == 0 {
		t.Fatalf("client frame header %x: want FIN and MASK set", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(r, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		io.ReadFull(r, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	var key [4]byte
	io.ReadFull(r, key[:])
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("reading a client frame: %v", err)
	}
	for i := range p {
		p[i] ^= key[i%4]
	}
	return wsframe.Opcode(h[0] & 0x0f), p
}

// rawServer accepts one WebSocket handshake and hands the hijacked
// connection to serve.
func rawServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "websocket" || req.Header.Get("Sec-WebSocket-Version") != "13" {
			http.Error(w, "not a websocket handshake", http.StatusBadRequest)
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		rw.Flush()
		serve(c, rw.Reader)
		close(done)
	}))
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the test server did not finish")
		}
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string) *wsframe.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&wsframe.Dialer{Header: http.Header{"Authorization": {"Bearer t"}}}).Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMessagesBothWays(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000) // 64-bit length
	mid := bytes.Repeat([]byte("x"), 300)           // 16-bit length
	url := rawServer(t, func(c net.Conn, r *bufio.Reader) {
		var out []byte
		out = append(out, serverFrame(true, wsframe.OpText, []byte("0{\"sid\":\"a\"}"))...)
		out = append(out, serverFrame(true, wsframe.OpPing, []byte("are you there"))...)
		// A fragmented message with a pong between its fragments.
		out = append(out, serverFrame(false, wsframe.OpBinary, []byte{1, 2})...)
		out = append(out, serverFrame(true, wsframe.OpPong, nil)...)
		out = append(out, serverFrame(false, wsframe.OpContinuation, []byte{3})...)
		out = append(out, serverFrame(true, wsframe.OpContinuation, []byte{4, 5})...)
		out = append(out, serverFrame(true, wsframe.OpText, mid)...)
		out = append(out, serverFrame(true, wsframe.OpText, big)...)
		c.Write(out)
		if op, p := readClientFrame(t, r); op != wsframe.OpPong || string(p) != "are you there" {
			t.Errorf("answer to the ping: %v %q", op, p)
		}
		for _, want := range [][]byte{[]byte("40"), mid, big} {
			if op, p := readClientFrame(t, r); op != wsframe.OpText || !bytes.Equal(p, want) {
				t.Errorf("client frame %v of %d bytes, want text of %d", op, len(p), len(want))
			}
		}
		if op, p := readClientFrame(t, r); op != wsframe.OpBinary || !bytes.Equal(p, []byte{9, 8, 7}) {
			t.Errorf("client frame %v %x, want binary 090807", op, p)
		}
		c.Write(serverFrame(true, wsframe.OpClose, []byte{0x03, 0xe8}))
		if op, p := readClientFrame(t, r); op != wsframe.OpClose || !bytes.Equal(p, []byte{0x03, 0xe8}) {
			t.Errorf("answer to the close: %v %x", op, p)
		}
	})
	c := dial(t, url)
	for _, want := range []struct {
		op wsframe.Opcode
		p  []byte
	}{
		{wsframe.OpText, []byte(`0{"sid":"a"}`)},
		{wsframe.OpBinary, []byte{1, 2, 3, 4, 5}},
		{wsframe.OpText, mid},
		{wsframe.OpText, big},
	} {
		p, op, err := c.ReadMessage(nil)
		if err != nil || op != want.op || !bytes.Equal(p, want.p) {
			t.Fatalf("ReadMessage = %v, %d bytes, %v; want %v, %d bytes", op, len(p), err, want.op, len(want.p))
		}
	}
	for _, p := range [][]byte{[]byte("40"), mid, big} {
		if err := c.WriteText(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteBinary([]byte{9, 8, 7}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(nil); err != io.EOF {
		t.Fatalf("after a close frame: %v, want io.EOF", err)
	}
}

func TestReadAppendsToTheCallersBuffer(t *testing.T) {
	url := rawServer(t, func(c net.Conn, r *bufio.Reader) {
		c.Write(serverFrame(true, wsframe.OpText, []byte("world")))
		readClientFrame(t, r) // wait for the client to finish
	})
	c := dial(t, url)
	buf := make([]byte, 0, 64)
	buf = append(buf, "hello "...)
	p, _, err := c.ReadMessage(buf)
	if err != nil || string(p) != "hello world" || &p[0] != &buf[:1][0] {
		t.Fatalf("ReadMessage = %q, %v; want the bytes appended in place", p, err)
	}
	c.WriteText([]byte("bye"))
}

func TestProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"masked server frame", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}, wsframe.ErrProtocol},
		{"reserved bits", []byte{0xc1, 0x01, 'x'}, wsframe.ErrProtocol},
		{"fragmented ping", []byte{0x09, 0x00}, wsframe.ErrProtocol},
		{"continuation first", serverFrame(true, wsframe.OpContinuation, []byte("x")), wsframe.ErrProtocol},
		{"message inside a message", append(serverFrame(false, wsframe.OpText, []byte("a")), serverFrame(true, wsframe.OpText, []byte("b"))...), wsframe.ErrProtocol},
		{"unknown opcode", serverFrame(true, 3, []byte("x")), wsframe.ErrProtocol},
		{"over the read limit", serverFrame(true, wsframe.OpText, make([]byte, 2000)), wsframe.ErrTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, func(c net.Conn, r *bufio.Reader) {
				c.Write(tc.bytes)
				io.Copy(io.Discard, r) // until the client closes
			})
			c := dial(t, url)
			c.ReadLimit = 1000
			_, _, err := c.ReadMessage(nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadMessage: %v, want %v", err, tc.want)
			}
			c.Close()
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":3,"message":"Bad request"}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	_, err := (&wsframe.Dialer{}).Dial(context.Background(), srv.URL+"/socket.io/?EIO=4&transport=websocket")
	var he *wsframe.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || !strings.Contains(he.Body, "Bad request") {
		t.Fatalf("Dial: %v, want a HandshakeError 400 with the body", err)
	}
}

func TestHandshakeWrongAccept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, _ := w.(http.Hijacker).Hijack()
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n")
		rw.Flush()
	}))
	defer srv.Close()
	_, err := (&wsframe.Dialer{}).Dial(context.Background(), srv.URL)
	if !errors.Is(err, wsframe.ErrProtocol) {
		t.Fatalf("Dial: %v, want ErrProtocol", err)
	}
}

func TestHandshakeObeysTheContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = (&wsframe.Dialer{}).Dial(ctx, "ws://"+ln.Addr().String()+"/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial against a silent server: %v, want the context's deadline", err)
	}
}

func TestMaskIsItsOwnInverse(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for n := range 40 {
		orig := make([]byte, n)
		for i := range orig {
			orig[i] = byte(i * 7)
		}
		b := bytes.Clone(orig)
		wsframe.Mask(b, key)
		for i := range b {
			if b[i] != orig[i]^key[i%4] {
				t.Fatalf("len %d: byte %d masked to %#x, want %#x", n, i, b[i], orig[i]^key[i%4])
			}
		}
		wsframe.Mask(b, key)
		if !bytes.Equal(b, orig) {
			t.Fatalf("len %d: masking twice changed the bytes", n)
		}
	}
}
