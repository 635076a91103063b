package engineio_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/operate/realtime/engineio"
)

// offerDeflate makes the client offer permessage-deflate as browsers do.
func offerDeflate(d *ws.Dialer) {
	d.Extensions = []httphead.Option{wsflate.DefaultParameters.Option()}
}

// §1.6: with PerMessageDeflate, messages of at least DeflateThreshold bytes
// are compressed (without context takeover), and compressed client
// messages are accepted.
func TestPerMessageDeflate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{PerMessageDeflate: true}, nil)
	c := e.dialWS("EIO=4&transport=websocket", offerDeflate)
	if len(c.hs.Extensions) != 1 {
		t.Fatalf("extensions %v", c.hs.Extensions)
	}
	var p wsflate.Parameters
	if err := p.Parse(c.hs.Extensions[0]); err != nil || !p.ServerNoContextTakeover || !p.ClientNoContextTakeover {
		t.Fatalf("negotiated %+v (%v)", p, err)
	}

	// The open packet is below the threshold: not compressed.
	f, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Rsv1() || !strings.HasPrefix(string(f.Payload), "0{") {
		t.Fatalf("open packet frame %+v %q", f.Header, f.Payload)
	}
	sid := handshakeRE.FindStringSubmatch(string(f.Payload))[1]
	r := e.h.session(t, sid)

	big := "4" + strings.Repeat("compressible ", 400)
	readCompressed := func(want string, op ws.OpCode) {
		t.Helper()
		f, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Rsv1() || f.Header.OpCode != op {
			t.Fatalf("frame %+v not compressed", f.Header)
		}
		if len(f.Payload) >= len(want) {
			t.Errorf("compressed %d bytes to %d", len(want), len(f.Payload))
		}
		d, err := wsflate.DecompressFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(d.Payload) != want {
			t.Fatalf("decompressed %q...", d.Payload[:min(len(d.Payload), 40)])
		}
	}
	// Twice: without context takeover each message decompresses alone.
	for range 2 {
		_ = r.sess.Send(engineio.NewPacket(4, []byte(big[1:])))
		readCompressed(big, ws.OpText)
	}
	bin := bytes.Repeat([]byte{1, 2, 3, 4}, 1000)
	_ = r.sess.Send(engineio.NewBinaryPacket(bin))
	readCompressed(string(bin), ws.OpBinary)

	// A packet marked not to compress goes as is.
	np := engineio.NewPacket(4, []byte(big[1:]))
	np.SetNoCompress()
	_ = r.sess.Send(np)
	if f, err := c.readFrame(); err != nil || f.Header.Rsv1() || string(f.Payload) != big {
		t.Fatalf("SetNoCompress packet: %+v %v", f.Header, err)
	}

	// Compressed client messages (the echo comes back compressed).
	cf, err := wsflate.CompressFrame(ws.NewTextFrame([]byte(big)))
	if err != nil {
		t.Fatal(err)
	}
	c.writeFrame(ws.MaskFrameInPlace(cf))
	readCompressed(big, ws.OpText)
	// Small compressed client messages too, and uncompressed ones.
	cf, _ = wsflate.CompressFrame(ws.NewTextFrame([]byte("4small")))
	c.writeFrame(ws.MaskFrameInPlace(cf))
	c.expectText("4small")
	c.sendText("4plain")
	c.expectText("4plain")
	if got := r.messages(); len(got) != 3 || got[0].data != big[1:] || got[1].data != "small" {
		t.Fatalf("messages %v", got)
	}
}

// A compressed message inflating beyond MaxPayload is refused with 1009.
func TestPerMessageDeflateBomb(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{PerMessageDeflate: true, MaxPayload: 10000}, nil)
	c := e.dialWS("EIO=4&transport=websocket", offerDeflate)
	c.expectPrefix("0")
	bomb := "4" + strings.Repeat("a", 100000)
	cf, err := wsflate.CompressFrame(ws.NewTextFrame([]byte(bomb)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Payload) > 10000 {
		t.Fatalf("compressed to %d bytes", len(cf.Payload))
	}
	c.writeFrame(ws.MaskFrameInPlace(cf))
	c.expectClose(1009)
}

// Off by default: the offer is declined, and a compressed frame is a
// protocol error.
func TestPerMessageDeflateOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dialWS("EIO=4&transport=websocket", offerDeflate)
	if len(c.hs.Extensions) != 0 || c.header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatalf("extensions negotiated: %v %q", c.hs.Extensions, c.header.Get("Sec-WebSocket-Extensions"))
	}
	c.expectPrefix("0")
	cf, _ := wsflate.CompressFrame(ws.NewTextFrame([]byte("4x")))
	c.writeFrame(ws.MaskFrameInPlace(cf))
	c.expectClose(1002)

	// Enabled on the server but not offered by the client: plain frames.
	e2 := newEnv(t, &engineio.Options{PerMessageDeflate: true}, nil)
	c2, _, r2 := e2.openWS()
	if len(c2.hs.Extensions) != 0 {
		t.Fatalf("extensions %v", c2.hs.Extensions)
	}
	big := strings.Repeat("z", 5000)
	_ = r2.sess.Send(engineio.NewPacket(4, []byte(big)))
	if f, err := c2.readFrame(); err != nil || f.Header.Rsv1() || string(f.Payload) != "4"+big {
		t.Fatalf("frame %+v %v", f.Header, err)
	}
}
