package engineio

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is what a session keeps of its handshake request: little, since
// it lives as long as the connection.
type Request struct {
	// Header holds the handshake's headers, except those that only served
	// the handshake itself (see droppedHeaders).
	Header     Header
	RemoteAddr string // host, without port
	URL        string // the request URI, query included
	Secure     bool
	XDomain    bool // the request carried an Origin header
	Time       time.Time
}

// Query parses the handshake's query string. It is not kept parsed: a
// session rarely needs it after the handshake.
func (r *Request) Query() url.Values { return queryOf(r.URL) }

func queryOf(uri string) url.Values {
	_, raw, _ := strings.Cut(uri, "?")
	q, _ := url.ParseQuery(raw)
	return q
}

// droppedHeaders served the HTTP or WebSocket handshake only; keeping them
// for the life of every connection would cost memory for nothing.
var droppedHeaders = map[string]bool{
	"Connection": true, "Upgrade": true, "Sec-Websocket-Key": true, "Sec-Websocket-Version": true,
	"Sec-Websocket-Extensions": true, "Sec-Websocket-Protocol": true, "Pragma": true, "Cache-Control": true,
	"Accept-Encoding": true, "Content-Length": true, "Content-Type": true,
}

// newRequest keeps what a session needs of its handshake request: the
// headers named in keep (canonical names; nil keeps every header but those
// that only served the handshake), the address, the URI (uri: r's).
func newRequest(r *http.Request, keep map[string]bool, uri string) *Request {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	kept := func(name string) bool {
		if keep != nil {
			return keep[name]
		}
		return !droppedHeaders[name]
	}
	n := 1 // Host
	for k, v := range r.Header {
		if kept(k) {
			n += len(v)
		}
	}
	h := make(Header, 0, 2*n)
	if r.Host != "" {
		// net/http moves Host out of the header map; Node's handshake
		// headers have it.
		h = append(h, "Host", r.Host)
	}
	for k, v := range r.Header {
		if !kept(k) {
			continue
		}
		for _, x := range v {
			h = append(h, k, x)
		}
	}
	return &Request{
		Header:     h,
		RemoteAddr: host,
		URL:        uri,
		Secure:     r.TLS != nil,
		XDomain:    r.Header.Get("Origin") != "",
		Time:       time.Now(),
	}
}
