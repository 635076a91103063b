package rediswire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// unhex decodes a capture written as hex with spaces and "quoted" ASCII.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		switch c := s[0]; {
		case c == ' ' || c == '\n' || c == '\t':
			s = s[1:]
		case c == '"':
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			out = append(out, s[1:1+end]...)
			s = s[2+end:]
		default:
			b, err := hex.DecodeString(s[:2])
			if err != nil {
				t.Fatalf("bad hex %q: %v", s[:2], err)
			}
			out = append(out, b...)
			s = s[2:]
		}
	}
	return out
}

func placeholderData(t *testing.T) []byte {
	t.Helper()
	return []byte(`["bin",{"_placeholder":true,"num":0}]`)
}

// The captures of the protocol notes §5.2 and §5.3 (redis-cli MONITOR of
// socket.io 4.8.4 + @socket.io/redis-adapter 8.3.0 / redis-emitter 5.1.0).
func TestClassicBroadcastCaptures(t *testing.T) {
	for _, tc := range []struct {
		name          string
		uid           string
		data          string
		atts          [][]byte
		rooms, except []string
		flags         Flags
		emitter       bool
		want          string
	}{
		{
			name: `io.to("room1").emit("bin", Buffer[1,2,3])`,
			uid:  "NjEBZZ", data: `["bin",{"_placeholder":true,"num":0}]`, atts: [][]byte{{1, 2, 3}},
			rooms: []string{"room1"},
			want: `93 a6 "NjEBZZ" 83 a4 "type" 02 a4 "data" 92 a3 "bin" c4 03 010203 a3 "nsp" a1 "/"
			       83 a5 "rooms" 91 a5 "room1" a6 "except" 90 a5 "flags" 80`,
		},
		{
			name: `io.emit("hello","world",1,1.5,{a:true})`,
			uid:  "NjEBZZ", data: `["hello","world",1,1.5,{"a":true}]`,
			want: `93 a6 "NjEBZZ" 83 a4 "type" 02 a4 "data" 95 a5 "hello" a5 "world" 01 cb 3ff8000000000000 81 a1 "a" c3
			       a3 "nsp" a1 "/" 83 a5 "rooms" 90 a6 "except" 90 a5 "flags" 80`,
		},
		{
			name: `io.to(["room1","room2"]).except("room3").volatile.compress(false).emit("x")`,
			uid:  "NjEBZZ", data: `["x"]`, rooms: []string{"room1", "room2"}, except: []string{"room3"},
			flags: Flags{Volatile: true, NoCompress: true},
			want: `93 a6 "NjEBZZ" 83 a4 "type" 02 a4 "data" 91 a1 "x" a3 "nsp" a1 "/"
			       83 a5 "rooms" 92 a5 "room1" a5 "room2" a6 "except" 91 a5 "room3" a5 "flags" 82 a8 "volatile" c3 a8 "compress" c2`,
		},
		{
			name: `emitter.to("room1").emit("from-emitter",42,Buffer[9])`,
			uid:  EmitterUID, data: `["from-emitter",42,{"_placeholder":true,"num":0}]`, atts: [][]byte{{9}},
			rooms: []string{"room1"}, emitter: true,
			want: `93 a7 "emitter" 83 a4 "type" 02 a4 "data" 93 ac "from-emitter" 2a c4 01 09 a3 "nsp" a1 "/"
			       83 a5 "rooms" 91 a5 "room1" a5 "flags" 80 a6 "except" 90`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.want)
			got, err := AppendClassicBroadcast(nil, tc.uid, "/", []byte(tc.data), tc.atts, tc.rooms, tc.except, tc.flags, tc.emitter)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoded\n got  % x\n want % x", got, want)
			}
			// And back.
			b, skipped, err := DecodeClassicBroadcast(want, "")
			if err != nil || skipped {
				t.Fatalf("decode: %v (skipped %v)", err, skipped)
			}
			if b.UID != tc.uid || b.Nsp != "/" || string(b.Data) != tc.data || len(b.Attachments) != len(tc.atts) {
				t.Errorf("decoded %+v", b)
			}
			for i := range tc.atts {
				if !bytes.Equal(b.Attachments[i], tc.atts[i]) {
					t.Errorf("attachment %d = %x", i, b.Attachments[i])
				}
			}
			if strings.Join(b.Rooms, ",") != strings.Join(tc.rooms, ",") || strings.Join(b.Except, ",") != strings.Join(tc.except, ",") || b.Flags != tc.flags {
				t.Errorf("decoded opts %v %v %+v", b.Rooms, b.Except, b.Flags)
			}
			if _, skipped, _ := DecodeClassicBroadcast(want, tc.uid); !skipped {
				t.Error("own uid not skipped")
			}
		})
	}
}

func TestShardedCaptures(t *testing.T) {
	// SPUBLISH socket.io#/# (JSON, no binary)
	data := AppendBroadcastData(nil, []byte(`["hello","world",1,1.5,{"a":true}]`), "", nil, nil, Flags{})
	got := AppendClusterMessage(nil, MsgBroadcast, data, "f4cb1872b7a0cc8e", "/")
	want := `{"type":3,"data":{"packet":{"type":2,"data":["hello","world",1,1.5,{"a":true}]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"f4cb1872b7a0cc8e","nsp":"/"}`
	if string(got) != want {
		t.Errorf("JSON broadcast\n got  %s\n want %s", got, want)
	}
	// SPUBLISH socket.io#/#room1# (msgpack: the data has binary)
	data = AppendBroadcastData(nil, placeholderData(t), "", []string{"room1"}, nil, Flags{})
	msg, err := EncodeMessage(AppendClusterMessage(nil, MsgBroadcast, data, "f4cb1872b7a0cc8e", "/"), [][]byte{{1, 2, 3}}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantMP := unhex(t, `84 a4 "type" 03 a4 "data" 82 a6 "packet" 82 a4 "type" 02 a4 "data" 92 a3 "bin" c4 03 010203
		a4 "opts" 83 a5 "rooms" 91 a5 "room1" a6 "except" 90 a5 "flags" 80
		a3 "uid" b0 "f4cb1872b7a0cc8e" a3 "nsp" a1 "/"`)
	if !bytes.Equal(msg, wantMP) {
		t.Errorf("msgpack broadcast\n got  % x\n want % x", msg, wantMP)
	}
	js, atts, err := DecodeMessage(wantMP)
	if err != nil {
		t.Fatal(err)
	}
	var m ClusterMessage
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	var d ClusterData
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := json.Unmarshal(d.Packet, &p); err != nil {
		t.Fatal(err)
	}
	if m.Type != MsgBroadcast || m.UID != "f4cb1872b7a0cc8e" || string(p.Data) != string(placeholderData(t)) ||
		len(atts) != 1 || !bytes.Equal(atts[0], []byte{1, 2, 3}) || d.Opts.Rooms[0] != "room1" {
		t.Errorf("decoded %s %+v %x", js, d, atts)
	}
	// Broadcast with ack.
	data = AppendBroadcastData(nil, []byte(`["q"]`), "4d51", nil, nil, Flags{Timeout: time.Second})
	if got := string(data); got != `{"packet":{"type":2,"data":["q"]},"requestId":"4d51","opts":{"rooms":[],"except":[],"flags":{"timeout":1000}}}` {
		t.Errorf("ack broadcast data %s", got)
	}
}

func TestDecodeCluster(t *testing.T) {
	for _, tc := range []struct {
		js    string
		check func(ClusterMessage, ClusterData) bool
	}{
		{`{"type":3,"data":{"packet":{"type":2,"data":["q",{"a":[1,"]"]}]},"requestId":"4d51","opts":{"rooms":["r",7],"except":[],"flags":{"timeout":1000,"volatile":true}}},"uid":"f4cb","nsp":"/x"}`,
			func(m ClusterMessage, d ClusterData) bool {
				data, ok := PacketData(d.Packet)
				return ok && m.Type == 3 && m.UID == "f4cb" && m.Nsp == "/x" && string(data) == `["q",{"a":[1,"]"]}]` &&
					*d.RequestID == "4d51" && strings.Join(d.Opts.Rooms, ",") == "r,7" && len(d.Opts.Except) == 0 &&
					*d.Opts.Flags == Flags{Volatile: true, Timeout: time.Second}
			}},
		{`{ "type" : 4 , "data" : { "opts" : { "rooms" : [ "a\"b" ] , "except" : null } , "rooms" : [ "j" ] } , "uid" : "emitter" , "nsp" : "/" }`,
			func(m ClusterMessage, d ClusterData) bool {
				return m.Type == 4 && m.UID == "emitter" && d.Opts.Rooms[0] == `a"b` && d.Opts.Except == nil && d.Rooms[0] == "j"
			}},
		{`{"type":11,"data":{"requestId":"x","clientCount":3},"uid":"u","nsp":"/"}`,
			func(m ClusterMessage, d ClusterData) bool { return *d.ClientCount == 3 && *d.RequestID == "x" }},
		{`{"type":6,"data":{"opts":{"rooms":[],"except":[]},"close":true},"uid":"u","nsp":"/"}`,
			func(m ClusterMessage, d ClusterData) bool { return d.Close }},
	} {
		m, d, err := DecodeCluster([]byte(tc.js))
		if err != nil || !tc.check(m, d) {
			t.Errorf("%s: %+v %+v %v", tc.js, m, d, err)
		}
	}
	for _, bad := range []string{`{"type":3`, `[1]`, `{"type":3,"data":{"packet":}}`} {
		if _, _, err := DecodeCluster([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBroadcastWithAckRequest(t *testing.T) {
	// The msgpack map Node sends for io.timeout(1000).emit(...) (request type 7).
	js := []byte(`{"uid":"NjEBZZ","requestId":"eCnh6m","type":7,"packet":{"type":2,"data":["bin",{"_placeholder":true,"num":0}],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{"timeout":1000}}}`)
	mp, err := EncodeMessage(js, [][]byte{{7}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if mp[0] != 0x85 {
		t.Fatalf("not a map of 5: % x", mp)
	}
	back, atts, err := DecodeMessage(mp)
	if err != nil || string(back) != string(js) || len(atts) != 1 || atts[0][0] != 7 {
		t.Fatalf("round trip %s %v %v", back, atts, err)
	}
	var q Request
	if err := json.Unmarshal(back, &q); err != nil {
		t.Fatal(err)
	}
	if q.TypeOr(-1) != ReqBroadcast || q.Opts.Flags.Timeout != time.Second || q.Opts.Rooms[0] != "r" {
		t.Errorf("request %+v", q)
	}
}

func TestTranscodeValues(t *testing.T) {
	for _, tc := range []struct {
		json string
		mp   string
		back string // when the JSON round trip differs
	}{
		{`0`, `00`, ""},
		{`127`, `7f`, ""},
		{`128`, `cc 80`, ""},
		{`256`, `cd 0100`, ""},
		{`65536`, `ce 00010000`, ""},
		{`4294967296`, `cf 0000000100000000`, ""},
		{`-1`, `ff`, ""},
		{`-32`, `e0`, ""},
		{`-33`, `d0 df`, ""},
		{`-129`, `d1 ff7f`, ""},
		{`-32769`, `d2 ffff7fff`, ""},
		{`-2147483649`, `d3 ffffffff7fffffff`, ""},
		{`18446744073709551615`, `cf ffffffffffffffff`, ""},
		{`1.5`, `cb 3ff8000000000000`, ""},
		{`1.0`, `01`, `1`},
		{`1e3`, `cd 03e8`, `1000`},
		{`-0.0`, `00`, `0`},
		{`1e21`, `cb 444b1ae4d6e2ef50`, `1e+21`},
		{`1e-7`, `cb 3e7ad7f29abcaf48`, `1e-7`},
		{`true`, `c3`, ""},
		{`false`, `c2`, ""},
		{`null`, `c0`, ""},
		{`""`, `a0`, ""},
		{`"é\n\"\u0001"`, `a5 c3a90a2201`, ""},
		{`[]`, `90`, ""},
		{`{}`, `80`, ""},
		{`{"a":[1,{"b":null}]}`, `81 a1 "a" 92 01 81 a1 "b" c0`, ""},
		{`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]`, `dc 0010 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f`, ""},
		{`"\ud83d\ude00"`, `a4 f09f9880`, `"😀"`},
	} {
		t.Run(tc.json, func(t *testing.T) {
			want := unhex(t, tc.mp)
			got, err := AppendJSONAsMsgpack(nil, []byte(tc.json), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("msgpack\n got  % x\n want % x", got, want)
			}
			back, rest, err := AppendMsgpackAsJSON(nil, got, BinaryAsPlaceholder, nil)
			if err != nil || len(rest) != 0 {
				t.Fatalf("back: %v, rest % x", err, rest)
			}
			wantBack := tc.back
			if wantBack == "" {
				wantBack = tc.json
			}
			if string(back) != wantBack {
				t.Errorf("JSON back = %s, want %s", back, wantBack)
			}
		})
	}
}

func TestMsgpackToJSONForms(t *testing.T) {
	for _, tc := range []struct {
		mp, json string
	}{
		{`ca 3fc00000`, `1.5`},                                   // float32
		{`cb 7ff8000000000000`, `null`},                          // NaN
		{`92 d4 00 00 01`, `[null,1]`},                           // notepack undefined in an array
		{`82 a1 "a" d4 00 00 a1 "b" 01`, `{"b":1}`},              // and in a map: dropped
		{`d6 ff 00000001`, `"1970-01-01T00:00:01.000Z"`},         // timestamp 32
		{`d7 00 0000000000000064`, `"1970-01-01T00:00:00.100Z"`}, // legacy Date
		{`81 01 02`, `{"1":2}`},                                  // integer key
		{`c4 02 0102`, `{"type":"Buffer","data":[1,2]}`},         // bin as Buffer JSON
		{`d5 05 0102`, `[5,{"type":"Buffer","data":[1,2]}]`},
		{`d9 03 "abc"`, `"abc"`},
		{`de 0001 a1 "k" 01`, `{"k":1}`},
		{`dd 00000001 01`, `[1]`},
	} {
		t.Run(tc.mp, func(t *testing.T) {
			got, rest, err := AppendMsgpackAsJSON(nil, unhex(t, tc.mp), BinaryAsBuffer, nil)
			if err != nil || len(rest) != 0 {
				t.Fatalf("%v, rest % x", err, rest)
			}
			if string(got) != tc.json {
				t.Errorf("got %s, want %s", got, tc.json)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{``, `93`, `92 a6`, `91 c1`, `dd ffffffff`, `c4 05 01`, `81 91 01 02`} {
		if _, _, err := AppendMsgpackAsJSON(nil, unhex(t, in), BinaryAsPlaceholder, nil); err == nil {
			t.Errorf("% s: no error", in)
		}
		if _, _, err := DecodeClassicBroadcast(unhex(t, in), ""); err == nil {
			t.Errorf("broadcast % s: no error", in)
		}
	}
	deep := bytes.Repeat([]byte{0x91}, 10000)
	if _, _, err := AppendMsgpackAsJSON(nil, deep, BinaryAsPlaceholder, nil); err == nil {
		t.Error("deep nesting accepted")
	}
	for _, in := range []string{`[`, `{"a"}`, `[1,]`, `tru`, `{"a":1`, `"abc`, `[1 2]`} {
		if _, err := AppendJSONAsMsgpack(nil, []byte(in), nil); err == nil {
			t.Errorf("JSON %s: no error", in)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	atts := [][]byte{{1}, {2, 3}}
	in := `["e",{"_placeholder":true,"num":1},{"x":{"num":0,"_placeholder":true}},"{\"_placeholder\":true,\"num\":0}",{"_placeholder":true,"num":5}]`
	mp, err := AppendJSONAsMsgpack(nil, []byte(in), atts)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	js, _, err := AppendMsgpackAsJSON(nil, mp, BinaryAsPlaceholder, &got)
	if err != nil {
		t.Fatal(err)
	}
	want := `["e",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}},"{\"_placeholder\":true,\"num\":0}",{"_placeholder":true,"num":5}]`
	if string(js) != want || len(got) != 2 || got[0][0] != 2 || got[1][0] != 1 {
		t.Errorf("got %s %v", js, got)
	}
	rep, err := ReplacePlaceholders([]byte(in), atts)
	if err != nil {
		t.Fatal(err)
	}
	wantRep := `["e",{"type":"Buffer","data":[2,3]},{"x":{"type":"Buffer","data":[1]}},"{\"_placeholder\":true,\"num\":0}",{"_placeholder":true,"num":5}]`
	if string(rep) != wantRep {
		t.Errorf("replaced %s", rep)
	}
}

func TestFlagsJSON(t *testing.T) {
	var f Flags
	if err := json.Unmarshal([]byte(`{"volatile":true,"compress":false,"timeout":1500,"expectSingleResponse":true}`), &f); err != nil {
		t.Fatal(err)
	}
	if f != (Flags{Volatile: true, NoCompress: true, Timeout: 1500 * time.Millisecond}) {
		t.Errorf("%+v", f)
	}
	if err := json.Unmarshal([]byte(`{"volatile":1,"timeout":"x"}`), &f); err != nil || f != (Flags{}) {
		t.Errorf("lenient: %+v %v", f, err)
	}
	var r Rooms
	if err := json.Unmarshal([]byte(`["a",1,2.5]`), &r); err != nil || strings.Join(r, "|") != "a|1|2.5" {
		t.Errorf("rooms %v %v", r, err)
	}
	if b, _ := json.Marshal(Rooms(nil)); string(b) != "[]" {
		t.Errorf("nil rooms %s", b)
	}
}

func TestJSONNumber(t *testing.T) {
	for f, want := range map[float64]string{
		0.1: "0.1", 1e21: "1e+21", 123456789012345680000: "123456789012345680000", 1e-6: "0.000001",
		1.5e-7: "1.5e-7", math.Inf(1): "null", -2.5: "-2.5",
	} {
		if got := string(AppendJSONNumber(nil, f)); got != want {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
}

func TestChannelNames(t *testing.T) {
	c := ClassicNames("socket.io", "/", "qIOAdP")
	if c.Pattern != "socket.io#/#*" || c.Request != "socket.io-request#/#" || c.Response != "socket.io-response#/#" ||
		c.SpecificResponse != "socket.io-response#/#qIOAdP#" || RoomChannel(c.Broadcast, "room1") != "socket.io#/#room1#" {
		t.Errorf("%+v", c)
	}
	if len(UID2(6)) != 6 || len(RandomHex(8)) != 16 {
		t.Error("id lengths")
	}
}

func TestPublisherUID(t *testing.T) {
	classic, _ := AppendClassicBroadcast(nil, "NjEBZZ", "/", []byte(`["x"]`), nil, nil, nil, Flags{}, false)
	ackReq, _ := EncodeMessage([]byte(`{"uid":"abc","requestId":"r","type":7,"packet":{"type":2,"data":["x"]}}`), nil, true)
	clusterMP, _ := EncodeMessage([]byte(`{"type":3,"data":{"packet":{"type":2,"data":["x",{"_placeholder":true,"num":0}]}},"uid":"f4cb","nsp":"/"}`), [][]byte{{1}}, false)
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{classic, "NjEBZZ"},
		{[]byte(`{"uid":"NjEBZZ","type":6,"data":["e",{"uid":"user"}]}`), "NjEBZZ"},
		{[]byte(`{"type":3,"data":{"packet":{"type":2,"data":["e",{"x":1,"uid":"user"}]}},"uid":"f4cb","nsp":"/"}`), "f4cb"},
		{[]byte(`{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["r"]}`), ""},
		{ackReq, "abc"},
		{clusterMP, "f4cb"},
		{[]byte{0x93}, ""},
	} {
		if got := string(PublisherUID(tc.payload)); got != tc.want {
			t.Errorf("PublisherUID(% x) = %q, want %q", tc.payload, got, tc.want)
		}
	}
}

func FuzzTranscode(f *testing.F) {
	f.Add([]byte(`["a",1,1.5,{"b":[true,null,"\u00e9"]},{"_placeholder":true,"num":0}]`))
	f.Add([]byte(`{"x":-123456789012,"y":1e300}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		mp, err := AppendJSONAsMsgpack(nil, in, [][]byte{{1}})
		if err != nil {
			return
		}
		var atts [][]byte
		js, rest, err := AppendMsgpackAsJSON(nil, mp, BinaryAsPlaceholder, &atts)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: msgpack % x does not decode: %v", in, mp, err)
		}
		if !json.Valid(js) {
			t.Fatalf("%s: invalid JSON %s", in, js)
		}
		// The first trip normalises (1.0 → 1, 1e999 → null, ...); the
		// second must change nothing.
		mp2, err := AppendJSONAsMsgpack(nil, js, atts)
		if err != nil {
			t.Fatalf("%s: %s does not transcode: %v", in, js, err)
		}
		var atts2 [][]byte
		js2, _, err := AppendMsgpackAsJSON(nil, mp2, BinaryAsPlaceholder, &atts2)
		if err != nil || !bytes.Equal(js, js2) {
			t.Fatalf("%s: not stable: %s vs %s (%v)", in, js, js2, err)
		}
	})
}
