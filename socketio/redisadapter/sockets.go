package redisadapter

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// nodeSocket is a socket as Node's adapters describe it in a fetchSockets
// answer: {id, handshake, rooms, data}.
type nodeSocket struct {
	ID        string          `json:"id"`
	Handshake nodeHandshake   `json:"handshake"`
	Rooms     rediswire.Rooms `json:"rooms"`
	Data      json.RawMessage `json:"data"`
}

// nodeHandshake is socket.io's socket.handshake.
type nodeHandshake struct {
	Headers map[string]any  `json:"headers"`
	Time    string          `json:"time"`
	Address string          `json:"address"`
	XDomain bool            `json:"xdomain"`
	Secure  bool            `json:"secure"`
	Issued  int64           `json:"issued"`
	URL     string          `json:"url"`
	Query   map[string]any  `json:"query"`
	Auth    json.RawMessage `json:"auth"`
}

// jsDateLayout is JavaScript's Date.prototype.toString in UTC.
const jsDateLayout = "Mon Jan 02 2006 15:04:05 GMT+0000 (Coordinated Universal Time)"

// describeSocket renders a local socket as Node does (lower-case header
// names, one string per header and query parameter unless repeated, the
// JavaScript date string), so that Node code reading fetchSockets results
// finds what it expects.
func describeSocket(rs *socketio.RemoteSocket) nodeSocket {
	ns := nodeSocket{ID: rs.ID, Rooms: rs.Rooms, Data: socketData(rs.Data)}
	h := rs.Handshake
	if h == nil {
		h = &socketio.Handshake{}
	}
	query := h.Query()
	ns.Handshake = nodeHandshake{
		Headers: make(map[string]any, len(h.Header)/2),
		Time:    h.Time.UTC().Format(jsDateLayout),
		Address: h.Address,
		XDomain: h.XDomain,
		Secure:  h.Secure,
		Issued:  h.Time.UnixMilli(),
		URL:     h.URL,
		Query:   make(map[string]any, len(query)),
		Auth:    h.Auth,
	}
	for k, v := range h.Header.HTTP() {
		k = strings.ToLower(k)
		switch {
		case len(v) == 1:
			ns.Handshake.Headers[k] = v[0]
		case k == "set-cookie":
			ns.Handshake.Headers[k] = v
		default:
			ns.Handshake.Headers[k] = strings.Join(v, ", ") // as Node's http joins repeats
		}
	}
	for k, v := range query {
		if len(v) == 1 {
			ns.Handshake.Query[k] = v[0]
		} else {
			ns.Handshake.Query[k] = v
		}
	}
	if len(ns.Handshake.Auth) == 0 {
		ns.Handshake.Auth = json.RawMessage("{}")
	}
	return ns
}

// socketData renders Socket.Data as JSON; Node's default is {}.
func socketData(d any) json.RawMessage {
	switch v := d.(type) {
	case nil:
		return json.RawMessage("{}")
	case json.RawMessage:
		if json.Valid(v) {
			return v
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// parseSocket turns a socket described by another server into a
// RemoteSocket. Its Data is the socket's data as JSON (json.RawMessage);
// binary values in it (msgpack answers) are written as Node's Buffer JSON.
func parseSocket(host socketio.AdapterHost, raw json.RawMessage, atts [][]byte) (*socketio.RemoteSocket, bool) {
	var ns struct {
		ID        string                     `json:"id"`
		Handshake map[string]json.RawMessage `json:"handshake"`
		Rooms     rediswire.Rooms            `json:"rooms"`
		Data      json.RawMessage            `json:"data"`
	}
	if json.Unmarshal(raw, &ns) != nil || ns.ID == "" {
		return nil, false
	}
	// The query is not read: Handshake.Query parses it from the URL, which
	// holds it as it does in Node's handshake.
	h := &socketio.Handshake{}
	header := http.Header{}
	hs := ns.Handshake
	var headers map[string]json.RawMessage
	_ = json.Unmarshal(hs["headers"], &headers)
	for k, v := range headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		header[ck] = append(header[ck], stringsOf(v)...)
	}
	h.Header = engineio.NewHeader(header)
	_ = json.Unmarshal(hs["address"], &h.Address)
	_ = json.Unmarshal(hs["url"], &h.URL)
	_ = json.Unmarshal(hs["secure"], &h.Secure)
	_ = json.Unmarshal(hs["xdomain"], &h.XDomain)
	var issued float64
	if json.Unmarshal(hs["issued"], &issued) == nil && issued > 0 {
		h.Time = time.UnixMilli(int64(issued))
	} else {
		var s string
		if json.Unmarshal(hs["time"], &s) == nil {
			if i := strings.Index(s, " GMT"); i > 0 {
				h.Time, _ = time.Parse("Mon Jan 02 2006 15:04:05", s[:i])
			}
		}
	}
	h.Auth = hs["auth"]
	if len(h.Auth) == 0 {
		h.Auth = json.RawMessage("{}")
	}
	if len(atts) > 0 {
		h.Auth, _ = rediswire.ReplacePlaceholders(h.Auth, atts)
		ns.Data, _ = rediswire.ReplacePlaceholders(ns.Data, atts)
	}
	var data any
	if len(ns.Data) > 0 && string(ns.Data) != "null" {
		data = ns.Data
	}
	return socketio.NewRemoteSocket(host.Namespace(), ns.ID, h, []string(ns.Rooms), data), true
}

// stringsOf reads a JSON string, array of strings or scalar as strings.
func stringsOf(v json.RawMessage) []string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []string{s}
	}
	var ss []string
	if json.Unmarshal(v, &ss) == nil {
		return ss
	}
	return []string{strings.TrimSpace(string(v))}
}

// parseSockets decodes the "sockets" array of a fetchSockets answer.
func parseSockets(host socketio.AdapterHost, raw json.RawMessage, atts [][]byte) ([]*socketio.RemoteSocket, bool) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, false
	}
	out := make([]*socketio.RemoteSocket, 0, len(list))
	for _, s := range list {
		if rs, ok := parseSocket(host, s, atts); ok {
			out = append(out, rs)
		}
	}
	return out, true
}

// socketsJSON renders local sockets for an answer.
func socketsJSON(list []*socketio.RemoteSocket) json.RawMessage {
	out := make([]nodeSocket, len(list))
	for i, rs := range list {
		out[i] = describeSocket(rs)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return json.RawMessage("[]")
	}
	return b
}
