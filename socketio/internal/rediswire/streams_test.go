package rediswire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/nodeproc"
)

// The capture of `io.to("room1").emit("bin", Buffer[1,2,3])` by
// @socket.io/redis-streams-adapter 0.3.1 (protocol notes §5.5).
const (
	capturedBinaryData = "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkaVyb29tMaZleGNlcHSQpWZsYWdzgA=="
	binaryDataJSON     = `{"packet":{"type":2,"data":["bin",{"_placeholder":true,"num":0}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}`
)

func TestStreamDataCaptures(t *testing.T) {
	got, err := EncodeStreamData([]byte(binaryDataJSON), [][]byte{{1, 2, 3}})
	if err != nil || string(got) != capturedBinaryData {
		t.Errorf("EncodeStreamData = %s, %v\nwant %s", got, err, capturedBinaryData)
	}
	js, atts, err := DecodeStreamData([]byte(capturedBinaryData))
	if err != nil || string(js) != binaryDataJSON || len(atts) != 1 || !bytes.Equal(atts[0], []byte{1, 2, 3}) {
		t.Errorf("DecodeStreamData = %s %v, %v", js, atts, err)
	}
	// Without binary the data is the JSON itself.
	plain := `{"packet":{"type":2,"data":["hello",1]},"opts":{"rooms":[],"except":[],"flags":{}}}`
	if got, err := EncodeStreamData([]byte(plain), nil); err != nil || string(got) != plain {
		t.Errorf("EncodeStreamData(plain) = %s, %v", got, err)
	}
	if js, atts, err := DecodeStreamData([]byte(plain)); err != nil || string(js) != plain || atts != nil {
		t.Errorf("DecodeStreamData(plain) = %s %v, %v", js, atts, err)
	}
	d, err := DecodeClusterData([]byte(plain))
	if err != nil || d.Opts == nil || d.Opts.Rooms == nil || len(d.Opts.Rooms) != 0 {
		t.Fatalf("DecodeClusterData = %+v, %v", d, err)
	}
	if data, ok := PacketData(d.Packet); !ok || string(data) != `["hello",1]` {
		t.Errorf("packet data %s", data)
	}
}

func TestStreamDataMalformed(t *testing.T) {
	for _, in := range []string{
		"", "{", `{"a":}`, "!!!", base64.StdEncoding.EncodeToString([]byte{0x93, 1, 2, 3}), // an array, not a map
		base64.StdEncoding.EncodeToString([]byte{0x81, 0xa1, 'a'}),  // truncated
		base64.StdEncoding.EncodeToString([]byte{0x80, 0x80}),       // trailing bytes
		base64.StdEncoding.EncodeToString([]byte{0x81, 0xa1, 0xc1}), // never used byte
	} {
		if js, _, err := DecodeStreamData([]byte(in)); err == nil {
			t.Errorf("DecodeStreamData(%q) = %s, want an error", in, js)
		}
	}
	for _, in := range []string{"[]", "1", `"x"`, "{"} {
		if _, err := DecodeClusterData([]byte(in)); err == nil {
			t.Errorf("DecodeClusterData(%q) succeeded", in)
		}
	}
}

func TestStreamIDs(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
		id StreamID
	}{
		{"1795669671091-0", true, StreamID{1795669671091, 0}},
		{"0-1", true, StreamID{0, 1}},
		{"18446744073709551615-18446744073709551615", true, StreamID{1<<64 - 1, 1<<64 - 1}},
		{"18446744073709551616-0", false, StreamID{}},
		{"1-", false, StreamID{}}, {"-1", false, StreamID{}}, {"1", false, StreamID{}}, {"a-1", false, StreamID{}},
		{"1-2-3", false, StreamID{}}, {"+1-2", false, StreamID{}}, {" 1-2", false, StreamID{}}, {"", false, StreamID{}},
		{"Q8MH80n", false, StreamID{}}, {"abc.1", false, StreamID{}},
	} {
		id, ok := ParseStreamID(tc.in)
		if ok != tc.ok || id != tc.id {
			t.Errorf("ParseStreamID(%q) = %v, %v", tc.in, id, ok)
		}
		if ok && id.String() != tc.in {
			t.Errorf("%v.String() = %q", id, id.String())
		}
	}
	if n := (StreamID{5, 1<<64 - 1}).Next(); n != (StreamID{6, 0}) {
		t.Errorf("Next = %v", n)
	}
	if !(StreamID{1, 9}).Less(StreamID{2, 0}) || (StreamID{2, 0}).Less(StreamID{2, 0}) || !(StreamID{2, 0}).Less(StreamID{2, 1}) {
		t.Error("Less")
	}
}

func TestStreamFields(t *testing.T) {
	f := AppendStreamFields(nil, "ac95e7d88be85314", "/", 3, []byte(`{"a":1}`))
	if got := strings.Join(f, " "); got != `uid ac95e7d88be85314 nsp / type 3 data {"a":1}` {
		t.Errorf("fields %s", got)
	}
	e, err := ParseStreamFields("1-1", append(f, "extra", "x"))
	if err != nil || e.UID != "ac95e7d88be85314" || e.Nsp != "/" || !e.HasNsp || e.Type != 3 || string(e.Data) != `{"a":1}` {
		t.Errorf("ParseStreamFields = %+v, %v", e, err)
	}
	if e, err := ParseStreamFields("1-1", []string{"type", "x", "uid"}); err == nil {
		t.Errorf("odd field list accepted: %+v", e)
	}
	if e, _ := ParseStreamFields("1-1", []string{"type", "-3"}); e.Type != -1 || e.HasNsp {
		t.Errorf("negative type, no nsp: %+v", e)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	s, err := EncodeSession("sid-1", "pid-1", []string{"sid-1", "room1"}, []byte(`{"hello":"world","n":[1,2.5]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSession(s)
	if err != nil || got.SID != "sid-1" || got.PID != "pid-1" || strings.Join(got.Rooms, ",") != "sid-1,room1" ||
		string(got.Data) != `{"hello":"world","n":[1,2.5]}` {
		t.Errorf("DecodeSession = %+v, %v", got, err)
	}
	if s, _ := EncodeSession("a", "b", nil, nil); !strings.HasPrefix(s, "h") {
		t.Errorf("EncodeSession without data: %s", s)
	} else if got, err := DecodeSession(s); err != nil || string(got.Data) != "null" || len(got.Rooms) != 0 {
		t.Errorf("DecodeSession = %+v, %v", got, err)
	}
	for _, bad := range []string{
		"", "!!", base64.StdEncoding.EncodeToString([]byte{0x90}),
		base64.StdEncoding.EncodeToString([]byte{0x81, 0xa3, 's', 'i', 'd', 0xa1, 'x'}), // no pid
		base64.StdEncoding.EncodeToString([]byte{0x82, 0xa3, 's', 'i', 'd', 0xa1, 'x', 0xa3, 'p', 'i', 'd', 0x01}),
		base64.StdEncoding.EncodeToString([]byte{0x82, 0xa3, 's', 'i', 'd', 0xa1, 'x', 0xa3, 'p', 'i', 'd'}),
	} {
		if got, err := DecodeSession(bad); err == nil {
			t.Errorf("DecodeSession(%q) = %+v, want an error", bad, got)
		}
	}
}

// streamsScript answers, per input line (a JSON command), with one line,
// using the Node package's own code: @msgpack/msgpack 2.8 (its dependency)
// and hashCode from @socket.io/redis-streams-adapter 0.3.1's dist/util.js.
const streamsScript = `
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
const require = createRequire(process.cwd() + "/");
const { encode, decode } = require("@msgpack/msgpack");
const { hashCode } = require("@socket.io/redis-streams-adapter/dist/util.js");
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const c = JSON.parse(line);
  let out;
  switch (c.cmd) {
    case "session": out = Buffer.from(encode({ sid: c.sid, pid: c.pid, rooms: c.rooms, data: c.data })).toString("base64"); break;
    case "decodeSession": out = JSON.stringify(decode(Buffer.from(c.s, "base64"))); break;
    case "hash": out = String(hashCode(c.nsp) % c.count); break;
  }
  process.stdout.write(out + "\n");
});
`

// TestStreamsAgainstNode: sessions encode to the bytes Node's adapter
// stores and Node decodes ours; namespaces map to the same streams.
func TestStreamsAgainstNode(t *testing.T) {
	node, dir := nodeproc.Dir(t, "@socket.io/redis-streams-adapter")
	type cmd map[string]any
	sessions := []struct {
		sid, pid string
		rooms    []string
		data     string
	}{
		{"zmFvTQqrr6Plfj0iAAAA", "zmFvTQqrr6Plfj0iAAAB", []string{"zmFvTQqrr6Plfj0iAAAA", "room1"}, `{"hello":"world"}`},
		{"s", "p", []string{}, `{"n":-1.5,"big":4294967296,"list":[null,true,"é"],"deep":{"a":{"b":[]}}}`},
		{"s2", "p2", []string{"r"}, `null`},
	}
	nsps := []string{"/", "/custom", "/events", "", "/é😀", "/a-very-long-namespace-name-that-overflows-the-hash"}
	var cmds []cmd
	for _, s := range sessions {
		cmds = append(cmds, cmd{"cmd": "session", "sid": s.sid, "pid": s.pid, "rooms": s.rooms, "data": json.RawMessage(s.data)})
		ours, err := EncodeSession(s.sid, s.pid, s.rooms, []byte(s.data))
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd{"cmd": "decodeSession", "s": ours})
	}
	for _, n := range nsps {
		for _, count := range []int{2, 3, 7} {
			cmds = append(cmds, cmd{"cmd": "hash", "nsp": n, "count": count})
		}
	}
	var in bytes.Buffer
	for _, c := range cmds {
		b, _ := json.Marshal(c)
		in.Write(append(b, '\n'))
	}
	c := exec.Command(node, "--input-type=module", "-e", streamsScript)
	c.Dir = dir
	c.Stdin = &in
	out, err := c.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	lines := bufio.NewScanner(bytes.NewReader(out))
	lines.Buffer(nil, 1<<20)
	next := func() string {
		if !lines.Scan() {
			t.Fatal("node answered too few lines")
		}
		return lines.Text()
	}
	for _, s := range sessions {
		ours, _ := EncodeSession(s.sid, s.pid, s.rooms, []byte(s.data))
		nodeEnc := next()
		if ours != nodeEnc {
			t.Errorf("session %s: ours %s, Node's %s", s.sid, ours, nodeEnc)
		}
		var back struct {
			SID, PID string
			Rooms    []string
			Data     json.RawMessage
		}
		if err := json.Unmarshal([]byte(next()), &back); err != nil || back.SID != s.sid || back.PID != s.pid {
			t.Errorf("Node decoded session %s as %+v (%v)", s.sid, back, err)
		}
		got, err := DecodeSession(nodeEnc)
		if err != nil || got.SID != s.sid || string(got.Data) != s.data {
			t.Errorf("DecodeSession(Node's %s) = %+v, %v", s.sid, got, err)
		}
	}
	for _, n := range nsps {
		for _, count := range []int{2, 3, 7} {
			want := "stream-" + next()
			if got := StreamName("stream", count, n); got != want {
				t.Errorf("StreamName(%q, %d) = %s, Node's %s", n, count, got, want)
			}
		}
	}
	if got := StreamName("socket.io", 1, "/anything"); got != "socket.io" {
		t.Errorf("one stream: %s", got)
	}
}

func FuzzStreamData(f *testing.F) {
	f.Add([]byte(capturedBinaryData))
	f.Add([]byte(`{"packet":{"type":2,"data":["hello",1]},"opts":{"rooms":[],"except":[],"flags":{}}}`))
	f.Add([]byte("gqZwYWNrZXSC"))
	f.Fuzz(func(t *testing.T, in []byte) {
		js, atts, err := DecodeStreamData(in)
		if err != nil {
			return
		}
		if !json.Valid(js) {
			t.Fatalf("%q: invalid JSON %s", in, js)
		}
		d, err := DecodeClusterData(js)
		if err != nil {
			t.Fatalf("%q: decoded %s but DecodeClusterData: %v", in, js, err)
		}
		if d2, _, err := DecodeStreamMessage(in); err != nil || string(d2.Packet) != string(d.Packet) {
			t.Fatalf("%q: DecodeStreamMessage %s, %v; want packet %s", in, d2.Packet, err, d.Packet)
		}
		if data, ok := PacketData(d.Packet); ok && !json.Valid(data) {
			t.Fatalf("%q: packet data %s", in, data)
		}
		// What decodes encodes again, and decodes to the same.
		enc, err := EncodeStreamData(js, atts)
		if err != nil {
			t.Fatalf("%q: %s does not encode: %v", in, js, err)
		}
		js2, _, err := DecodeStreamData(enc)
		if err != nil || (len(atts) > 0 && !bytes.Equal(js, js2)) {
			t.Fatalf("%q: round trip %s → %s (%v)", in, js, js2, err)
		}
	})
}

func FuzzSession(f *testing.F) {
	s, _ := EncodeSession("sid", "pid", []string{"sid", "r"}, []byte(`{"a":[1,"b",null]}`))
	f.Add(s)
	f.Add("hKNzaWQ=")
	f.Fuzz(func(t *testing.T, in string) {
		sess, err := DecodeSession(in)
		if err != nil {
			return
		}
		if sess.SID == "" || sess.PID == "" || !json.Valid(sess.Data) {
			t.Fatalf("%q: decoded %+v", in, sess)
		}
		enc, err := EncodeSession(sess.SID, sess.PID, sess.Rooms, sess.Data)
		if err != nil {
			t.Fatalf("%q: %+v does not encode: %v", in, sess, err)
		}
		back, err := DecodeSession(enc)
		if err != nil || back.SID != sess.SID || back.PID != sess.PID || string(back.Data) != string(sess.Data) {
			t.Fatalf("%q: round trip %+v → %+v (%v)", in, sess, back, err)
		}
	})
}

func FuzzStreamID(f *testing.F) {
	f.Add("1795669671091-0")
	f.Add("18446744073709551615-18446744073709551615")
	f.Fuzz(func(t *testing.T, in string) {
		id, ok := ParseStreamID(in)
		if !ok {
			return
		}
		if back, ok := ParseStreamID(id.String()); !ok || back != id {
			t.Fatalf("%q: %v does not round-trip", in, id)
		}
		if !id.Less(id.Next()) && id != (StreamID{1<<64 - 1, 1<<64 - 1}) {
			t.Fatalf("%q: Next %v not after", in, id.Next())
		}
	})
}
