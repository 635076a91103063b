package main

// Centrifugo (github.com/centrifugal/centrifugo) as the harness's second
// peer: its configuration, its client over WebSocket with the JSON protocol
// (protocol v2), and the parsing of what it sends.
//
// The semantics mirror the gateway's: each client authenticates with its
// own HS256 JWT minted with the same secret, whose `channels` claim
// subscribes it on the server side to its organization's channel
// (org:<orgId>), so that a client sends nothing but its connect command
// and its pongs; publications go through Centrifugo's HTTP API (`/api/batch`
// with one `publish` command per event, in the shape of our batch
// requests); history, presence, joins and leaves are off (the defaults of
// a namespace).

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// centrifugoVersion is the release the harness measures; scripts/bench.sh
// installs it from the Go module proxy into centrifugoCache.
const (
	centrifugoVersion = "v6.9.1"
	centrifugoModule  = "github.com/centrifugal/centrifugo/v6"
	centrifugoCache   = "artifacts/tools/centrifugo-" + centrifugoVersion
)

// centrifugoInstallHint is the command that installs the binary the
// harness expects (run from the module root).
func centrifugoInstallHint() string {
	return fmt.Sprintf("GOBIN=$PWD/%s go install %s@%s", centrifugoCache, centrifugoModule, centrifugoVersion)
}

// centrifugoBuild describes a Centrifugo binary by its module version and
// Go version, from its build information: a `go install` build answers
// v0.0.0 to `centrifugo version` (releases set it with -ldflags).
func centrifugoBuild(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown build: " + err.Error()
	}
	v := bi.Main.Path + " " + bi.Main.Version
	if bi.Main.Path != centrifugoModule || bi.Main.Version != centrifugoVersion {
		v += " (not " + centrifugoVersion + ")"
	}
	return v + ", " + bi.GoVersion
}

// orgChannel is the Centrifugo channel of organization i: in the "org"
// namespace, as the gateway's room is org:<orgId>.
func orgChannel(i int) string { return "org:" + Org(i) }

// centrifugoPongTimeout is how long Centrifugo waits for a pong, at its
// default (8 s), but below the ping interval, which Centrifugo requires.
func centrifugoPongTimeout(pingInterval time.Duration) time.Duration {
	const def = 8 * time.Second
	if pingInterval > 0 && pingInterval <= def {
		return pingInterval / 2
	}
	return def
}

// centrifugoConfig is the configuration file (v6 keys) a Centrifugo of the
// harness runs with, listening on host:port.
func centrifugoConfig(spec serverSpec, host string, port int) ([]byte, error) {
	client := map[string]any{
		"token": map[string]any{"hmac_secret_key": spec.secret},
	}
	if spec.pingInterval > 0 {
		client["ping_interval"] = spec.pingInterval.String()
		client["pong_timeout"] = centrifugoPongTimeout(spec.pingInterval).String()
	}
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": port},
		// warn: no line per connection, as ours runs at warn.
		"log":    map[string]any{"level": "warn"},
		"client": client,
		// A namespace with its defaults: no history, no presence, no
		// join/leave, no client-side publish or subscribe. Server-side
		// subscriptions from the token's channels claim need nothing more.
		"channel":  map[string]any{"namespaces": []any{map[string]any{"name": "org"}}},
		"http_api": map[string]any{"key": spec.apiKey},
		"health":   map[string]any{"enabled": true},
	}
	if spec.redisURL != "" {
		cfg["engine"] = map[string]any{"type": "redis", "redis": map[string]any{"address": []string{spec.redisURL}}}
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// writeCentrifugoConfig writes the configuration of a Centrifugo server
// into the log directory and returns its path.
func writeCentrifugoConfig(spec serverSpec, host string, port int) (string, error) {
	b, err := centrifugoConfig(spec, host, port)
	if err != nil {
		return "", fmt.Errorf("centrifugo config: %w", err)
	}
	path := filepath.Join(spec.logDir, spec.name+".centrifugo.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("centrifugo config: %w", err)
	}
	return path, nil
}

// ---- the wire ----------------------------------------------------------------------------------------

// cfKind is what one message of Centrifugo's JSON protocol is to the
// load generator.
type cfKind uint8

const (
	cfOther      cfKind = iota
	cfPing              // {}: an empty reply, answered with an empty command
	cfPub               // a publication pushed from a channel
	cfConnected         // the reply to the connect command
	cfError             // an error reply (to the connect command: a refusal)
	cfDisconnect        // a disconnect push
	cfMalformed         // not a JSON object
)

// cfMsg is one message of a frame, classified.
type cfMsg struct {
	kind    cfKind
	channel string // cfPub
	data    []byte // cfPub: the publication's data (a slice of the frame)
	id      uint32 // cfConnected, cfError
	err     string // cfError, cfDisconnect: code and message
	ping    int    // cfConnected: the ping interval the server announced, seconds
}

// cfMessages yields the messages of one WebSocket frame: Centrifugo puts
// several replies and pushes into one frame, separated by newlines.
func cfMessages(frame []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(frame) > 0 {
			msg := frame
			if i := bytes.IndexByte(frame, '\n'); i >= 0 {
				msg, frame = frame[:i], frame[i+1:]
			} else {
				frame = nil
			}
			if len(msg) == 0 {
				continue
			}
			if !yield(msg) {
				return
			}
		}
	}
}

var (
	cfPing1    = []byte("{}")
	cfPubStart = []byte(`{"push":{"channel":"`)
	cfPubMid   = []byte(`","pub":{"data":`)
)

// parseCentrifugo classifies one message. Pings and publications, the
// messages of the hot path, are recognized from the byte layout
// Centrifugo's encoder writes (fields in the protocol's order); anything
// else is decoded in full.
func parseCentrifugo(msg []byte) cfMsg {
	if bytes.Equal(msg, cfPing1) {
		return cfMsg{kind: cfPing}
	}
	if rest, ok := bytes.CutPrefix(msg, cfPubStart); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.HasPrefix(rest[i:], cfPubMid) {
			data := rest[i+len(cfPubMid):]
			// The data is followed by the publication's other fields (or
			// none) and the two closing braces; it is only searched for
			// sentAt, so a few trailing bytes do no harm.
			return cfMsg{kind: cfPub, channel: string(rest[:i]), data: data}
		}
	}
	var m struct {
		ID      uint32              `json:"id"`
		Error   *cfErr              `json:"error"`
		Connect *struct{ Ping int } `json:"connect"`
		Push    *struct {
			Channel string `json:"channel"`
			Pub     *struct {
				Data json.RawMessage `json:"data"`
			} `json:"pub"`
			Disconnect *cfErr `json:"disconnect"`
		} `json:"push"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return cfMsg{kind: cfMalformed}
	}
	switch {
	case m.Error != nil:
		return cfMsg{kind: cfError, id: m.ID, err: m.Error.String()}
	case m.Connect != nil:
		return cfMsg{kind: cfConnected, id: m.ID, ping: m.Connect.Ping}
	case m.Push != nil && m.Push.Pub != nil:
		return cfMsg{kind: cfPub, channel: m.Push.Channel, data: m.Push.Pub.Data}
	case m.Push != nil && m.Push.Disconnect != nil:
		return cfMsg{kind: cfDisconnect, err: m.Push.Disconnect.String()}
	case m.ID == 0 && m.Push == nil:
		return cfMsg{kind: cfPing} // an empty reply with spaces or unknown fields
	}
	return cfMsg{kind: cfOther, id: m.ID}
}

// cfErr is an error reply's or a disconnect's code and message/reason.
type cfErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

func (e *cfErr) String() string {
	msg := e.Message
	if msg == "" {
		msg = e.Reason
	}
	return strconv.Itoa(e.Code) + " " + msg
}

// cfConnectCommand is a client's first message: the connect command with
// its token (id 1; the only command it sends besides its pongs).
func cfConnectCommand(token string) []byte {
	b, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": token, "name": "realtime-bench"}})
	return b
}

// ---- the client --------------------------------------------------------------------------------------

// centrifugoPath is Centrifugo's bidirectional WebSocket endpoint.
const centrifugoPath = "/connection/websocket"

var cfPong = []byte("{}")

// runCentrifugo is a Centrifugo client over WebSocket with the JSON
// protocol: the connect command, its reply (the server-side subscriptions
// from the token's channels claim are in place then), then publications
// pushed, answering each ping ({}) with a pong ({}).
func (w *worker) runCentrifugo(cl *client, connected func()) error {
	c, err := w.dialWSPath(cl, centrifugoPath)
	if err != nil {
		return err
	}
	if err := c.WriteText(cl.connect); err != nil {
		c.Close()
		return fmt.Errorf("connect command: %w", err)
	}
	var buf []byte
	for done := false; !done; {
		if buf, _, err = c.ReadMessage(buf[:0]); err != nil {
			c.Close()
			return fmt.Errorf("connect reply: %w", err)
		}
		var ferr error
		ping := false
		for msg := range cfMessages(buf) {
			m := parseCentrifugo(msg)
			switch m.kind {
			case cfConnected:
				done = true
				w.welcomes.Add(1)
				w.noteCentrifugoPing(m.ping)
			case cfError:
				ferr = fmt.Errorf("%w: %s", errRefused, m.err)
			case cfDisconnect:
				ferr = fmt.Errorf("disconnected during handshake: %s", m.err)
			case cfPing:
				ping = true
			default:
				w.count(cl, m)
			}
		}
		if ferr != nil {
			c.Close()
			return ferr
		}
		if ping {
			_ = c.WriteText(cfPong)
		}
	}
	nc := c.NetConn()
	_ = nc.SetDeadline(time.Time{})
	if !w.attach(cl, nc) {
		c.Close()
		return errors.New("dropped during handshake")
	}
	connected()
	defer w.detach(cl, nc)
	for {
		if buf, _, err = c.ReadMessage(buf[:0]); err != nil {
			return nil
		}
		ping, bye := false, false
		for msg := range cfMessages(buf) {
			switch m := parseCentrifugo(msg); m.kind {
			case cfPing:
				ping = true
			case cfDisconnect:
				bye = true
			default:
				w.count(cl, m)
			}
		}
		if bye {
			return nil
		}
		if ping && c.WriteText(cfPong) != nil {
			return nil
		}
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a burst's buffer for an idle connection
		}
	}
}

// count records a publication (and its latency, from the sentAt its
// payload carries) or a message not understood.
func (w *worker) count(cl *client, m cfMsg) {
	switch m.kind {
	case cfPub:
		w.received.Add(1)
		if i := bytes.Index(m.data, sentAtMark); i >= 0 {
			if sent, ok := parseNanos(m.data[i+len(sentAtMark):]); ok {
				w.latency.record(cl.g, time.Duration(time.Now().UnixNano()-sent))
			}
		}
	case cfMalformed:
		w.malformed.Add(1)
	}
}

// noteCentrifugoPing records the ping interval of the first connect reply
// (Centrifugo announces no pong timeout: the report knows it from the
// configuration).
func (w *worker) noteCentrifugoPing(seconds int) {
	if seconds > 0 && w.announced.CompareAndSwap(false, true) {
		w.pingIntervalMS.Store(int64(seconds) * 1000)
	}
}
