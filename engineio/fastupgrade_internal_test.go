package engineio

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

const fastPath = "/engine.io/"

func handshakeHead(extra string) string {
	return "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
		"Host: 127.0.0.1:8080\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + extra + "\r\n"
}

// TestFastRequestDeclines: what the fast parser leaves to net/http.
func TestFastRequestDeclines(t *testing.T) {
	t.Parallel()
	ok := handshakeHead("")
	if _, _, parsed := (&fastFront{srv: &http.Server{}, path: fastPath}).parse([]byte(ok)); !parsed {
		t.Fatalf("the plain handshake is declined")
	}
	for name, head := range map[string]string{
		"incomplete":         ok[:len(ok)-2],
		"POST":               "POST" + ok[3:],
		"HTTP/1.0":           bytesReplace(ok, " HTTP/1.1\r\n", " HTTP/1.0\r\n"),
		"other path":         bytesReplace(ok, "/engine.io/", "/api/v1/"),
		"absolute target":    bytesReplace(ok, "GET /engine.io/", "GET http://x/engine.io/"),
		"no upgrade":         bytesReplace(ok, "Upgrade: websocket\r\n", ""),
		"no connection":      bytesReplace(ok, "Connection: Upgrade\r\n", ""),
		"no host":            bytesReplace(ok, "Host: 127.0.0.1:8080\r\n", ""),
		"two hosts":          handshakeHead("Host: other\r\n"),
		"bad host":           bytesReplace(ok, "Host: 127.0.0.1:8080", "Host: a b"),
		"body":               handshakeHead("Content-Length: 3\r\n"),
		"chunked":            handshakeHead("Transfer-Encoding: chunked\r\n"),
		"expect":             handshakeHead("Expect: 100-continue\r\n"),
		"control byte":       handshakeHead("X-A: a\x01b\r\n"),
		"obs-text":           handshakeHead("X-A: caf\xc3\xa9\r\n"),
		"bare LF":            handshakeHead("X-A: a\nX-B: b\r\n"),
		"folded":             handshakeHead("X-A: a\r\n b\r\n"),
		"space before colon": handshakeHead("X-A : a\r\n"),
		"empty name":         handshakeHead(": a\r\n"),
		"fragment":           bytesReplace(ok, "transport=websocket", "transport=websocket#x"),
		"space in target":    bytesReplace(ok, "EIO=4", "EIO= 4"),
	} {
		if _, _, parsed := (&fastFront{srv: &http.Server{}, path: fastPath}).parse([]byte(head)); parsed {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, _, parsed := (&fastFront{srv: &http.Server{MaxHeaderBytes: 100}, path: fastPath}).parse([]byte(ok)); parsed {
		t.Errorf("a head over MaxHeaderBytes is parsed")
	}
}

func bytesReplace(s, old, new string) string {
	return string(bytes.Replace([]byte(s), []byte(old), []byte(new), 1))
}

// FuzzFastRequest: whatever the fast parser accepts, net/http reads as the
// same request (method, target, URL, Host, headers, where the head ends),
// and accepts.
func FuzzFastRequest(f *testing.F) {
	f.Add([]byte(handshakeHead("")))
	f.Add([]byte(handshakeHead("Origin: http://example.com\r\nsec-websocket-extensions: permessage-deflate\r\n")))
	f.Add([]byte(handshakeHead("Pragma: no-cache\r\nX-A:\r\nx-a:  b \r\nCookie: a=b; c=d\r\n") + "\x81\x82ab"))
	f.Add([]byte("GET /engine.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\nhost: [::1]:80\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n\r\n"))
	f.Add([]byte("GET /engine.io/x/../y?%zz HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := &fastFront{srv: &http.Server{}, path: fastPath}
		got, headLen, ok := fr.parse(data)
		if !ok {
			return
		}
		br := bufio.NewReader(bytes.NewReader(data))
		want, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("net/http refuses what the fast path parsed: %v\n%q", err, data)
		}
		if rest := len(data) - br.Buffered(); rest != headLen {
			t.Fatalf("head ends at %d, net/http's at %d\n%q", headLen, rest, data)
		}
		// ReadRequest drops Host from the map, as the server does once it
		// has checked there is one (TestFastRequestDeclines covers two).
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
			got.Proto != want.Proto || got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
			t.Fatalf("request line: got %s %s %s host %q, want %s %s %s host %q", got.Method, got.RequestURI, got.Proto, got.Host,
				want.Method, want.RequestURI, want.Proto, want.Host)
		}
		if !reflect.DeepEqual(got.URL, want.URL) {
			t.Fatalf("URL: got %#v, want %#v", got.URL, want.URL)
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("header: got %q, want %q", got.Header, want.Header)
		}
		if want.ContentLength != 0 || len(want.TransferEncoding) > 0 || want.Body != http.NoBody {
			t.Fatalf("net/http reads a body: %d %q", want.ContentLength, want.TransferEncoding)
		}
	})
}
