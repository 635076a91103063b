package engineio_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/operate/realtime/engineio"
)

// A polling GET is compressed as Node's engine.io compresses it: with the
// coding the client prefers, from 1024 bytes, unless every packet of the
// payload opted out or the server disabled it.
func TestPollingHTTPCompression(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("invoice:paid ", 200) // 2,600 bytes
	tests := []struct {
		name       string
		opts       *engineio.Options
		accept     string
		packets    []string
		noCompress []bool
		want       string // Content-Encoding
	}{
		{"gzip", nil, "gzip, deflate, br", []string{big}, nil, "gzip"},
		{"deflate preferred by order", nil, "deflate, gzip", []string{big}, nil, "deflate"},
		{"deflate preferred by q", nil, "gzip;q=0.5, deflate", []string{big}, nil, "deflate"},
		{"gzip refused", nil, "gzip;q=0, deflate;q=0.1", []string{big}, nil, "deflate"},
		{"wildcard", nil, "*", []string{big}, nil, "gzip"},
		{"wildcard minus gzip", nil, "gzip;q=0, *;q=0.8", []string{big}, nil, "deflate"},
		{"only br", nil, "br", []string{big}, nil, ""},
		{"no Accept-Encoding", nil, "", []string{big}, nil, ""},
		{"malformed q dropped", nil, "gzip;q=abc", []string{big}, nil, ""},
		{"below threshold", nil, "gzip", []string{"small"}, nil, ""},
		{"threshold reached by several packets", nil, "gzip", []string{big[:600], big[:600]}, nil, "gzip"},
		{"every packet opted out", nil, "gzip", []string{big, big}, []bool{true, true}, ""},
		{"one packet allows it", nil, "gzip", []string{big, big}, []bool{true, false}, "gzip"},
		{"disabled", &engineio.Options{DisableHTTPCompression: true}, "gzip", []string{big}, nil, ""},
		{"custom threshold", &engineio.Options{HTTPCompressionThreshold: 10}, "gzip", []string{"0123456789"}, nil, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts, nil)
			sid, r := e.handshake()
			var want []string
			for i, data := range tt.packets {
				p := engineio.NewPacket(4, []byte(data))
				if i < len(tt.noCompress) && tt.noCompress[i] {
					p.SetNoCompress()
				}
				if err := r.sess.Send(p); err != nil {
					t.Fatal(err)
				}
				want = append(want, "4"+data)
			}
			header := http.Header{}
			if tt.accept != "" {
				header.Set("Accept-Encoding", tt.accept)
			}
			resp, body := e.request(http.MethodGet, "EIO=4&transport=polling&sid="+sid, nil, header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d %q", resp.StatusCode, body)
			}
			got := resp.Header.Get("Content-Encoding")
			if got != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.want)
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %s for a body of %d bytes", cl, len(body))
			}
			decoded := decode(t, got, []byte(body))
			if string(decoded) != strings.Join(want, "\x1e") {
				t.Fatalf("decoded payload differs: %d bytes, want %d", len(decoded), len(strings.Join(want, "\x1e")))
			}
			if got != "" && len(decoded) >= 1024 && len(body) >= len(decoded)/2 {
				t.Errorf("compressed %d bytes into %d", len(decoded), len(body))
			}
		})
	}
}

// Go's own HTTP client asks for gzip by itself and decodes transparently:
// what a browser does.
func TestPollingHTTPCompressionTransparentClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	big := strings.Repeat("x", 5000)
	if err := r.sess.Send(engineio.NewPacket(4, []byte(big))); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.base + "?EIO=4&transport=polling&sid=" + sid)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Uncompressed || string(b) != "4"+big {
		t.Fatalf("uncompressed=%v, %d bytes", resp.Uncompressed, len(b))
	}
}

func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch coding {
	case "":
		return body
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(body))
	default:
		t.Fatalf("unexpected coding %q", coding)
	}
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return out
}
