package eio_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"unsafe"

	"github.com/operate/realtime/protocol/eio"
)

// payloadSeeds are the long-polling payloads of the reference note (§1.4)
// and the test-suite, plus edge cases; each is also fed split in two.
var payloadSeeds = []string{
	"4hello\x1e2\x1e4world",
	"bAQIDBA==",
	"451-[\"bin-back\",{\"_placeholder\":true,\"num\":0},\"x\"]\x1ebAQID",
	"4test1\x1e4test2\x1e4test3",
	"0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
	"2probe", "3probe", "5", "6", "1", "3\x1e4x",
	"b", "bAA==", "b!!!", "4a\x1e\x1e4b", "4a\x1e7x\x1e4b", "\x1e", "",
	"452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebBAUG",
}

// packetRecord is what one callback saw.
type packetRecord struct {
	typ    eio.Type
	data   []byte
	binary bool
}

// FuzzDecodePayload checks, for any input: no panic; text packets are
// slices of the input, exactly the record after its type digit; binary
// packets are the standard base64 decoding of their record and their buffer
// is no larger than 3/4 of the base64 text; decoding stops exactly at the
// first invalid record. The input comes in two halves a and b: decoding
// a+"\x1e"+b must give a's packets then b's (or stop within a).
func FuzzDecodePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s), []byte{})
		if i := bytes.IndexByte([]byte(s), eio.Separator); i >= 0 {
			f.Add([]byte(s[:i]), []byte(s[i+1:]))
		} else if len(s) > 1 {
			f.Add([]byte(s[:len(s)/2]), []byte(s[len(s)/2:]))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		pa, errA := checkPayload(t, a)
		pb, errB := checkPayload(t, b)
		joined := make([]byte, 0, len(a)+1+len(b))
		joined = append(append(append(joined, a...), eio.Separator), b...)
		pj, errJ := checkPayload(t, joined)
		switch {
		case errA != nil:
			if errJ == nil || !samePackets(pj, pa) {
				t.Fatalf("a=%q fails (%v) but a+sep+b gives %d packets, %v", a, errA, len(pj), errJ)
			}
		case errB != nil:
			if errJ == nil || !samePackets(pj, append(pa, pb...)) {
				t.Fatalf("b=%q fails (%v) but a+sep+b gives %d packets, %v", b, errB, len(pj), errJ)
			}
		default:
			if errJ != nil || !samePackets(pj, append(pa, pb...)) {
				t.Fatalf("a=%q and b=%q decode but a+sep+b gives %d packets, %v", a, b, len(pj), errJ)
			}
		}
	})
}

func samePackets(x, y []packetRecord) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].typ != y[i].typ || x[i].binary != y[i].binary || !bytes.Equal(x[i].data, y[i].data) {
			return false
		}
	}
	return true
}

// checkPayload decodes body and checks each packet against the record it
// came from. It returns what was decoded and DecodePayload's error.
func checkPayload(t *testing.T, body []byte) ([]packetRecord, error) {
	t.Helper()
	// The records, found independently: the text between separators,
	// without the empty ones (which carry nothing and are skipped).
	type record struct{ off, end int }
	var records []record
	start := 0
	for i := 0; i <= len(body); i++ {
		if i == len(body) || body[i] == eio.Separator {
			if i > start {
				records = append(records, record{start, i})
			}
			start = i + 1
		}
	}
	var got []packetRecord
	err := eio.DecodePayload(body, func(p eio.Packet) error {
		k := len(got)
		if k >= len(records) {
			t.Fatalf("%q: packet %d but only %d records", body, k, len(records))
		}
		r := records[k]
		part := body[r.off:r.end]
		if part[0] == 'b' {
			if !p.Binary || p.Type != eio.Message {
				t.Fatalf("%q: record %q decoded as %v binary=%v", body, part, p.Type, p.Binary)
			}
			want, err := base64.StdEncoding.DecodeString(string(part[1:]))
			if err != nil || !bytes.Equal(p.Data, want) {
				t.Fatalf("%q: record %q decoded as %x, base64 gives %x (%v)", body, part, p.Data, want, err)
			}
			// Bounded decoding: the buffer is at most 3/4 of the base64.
			if limit := 3 * (len(part) - 1) / 4; cap(p.Data) > limit {
				t.Fatalf("%q: record of %d base64 bytes allocated %d bytes (limit %d)", body, len(part)-1, cap(p.Data), limit)
			}
			if len(p.Data) > 0 && within(p.Data, body) {
				t.Fatalf("%q: binary data aliases the input", body)
			}
		} else {
			if p.Binary || part[0] < '0' || part[0] > '6' || p.Type != eio.Type(part[0]-'0') {
				t.Fatalf("%q: record %q decoded as %v binary=%v", body, part, p.Type, p.Binary)
			}
			if !bytes.Equal(p.Data, part[1:]) {
				t.Fatalf("%q: record %q decoded with data %q", body, part, p.Data)
			}
			if len(p.Data) > 0 && &p.Data[0] != &body[r.off+1] {
				t.Fatalf("%q: text data of record %q does not come from the input", body, part)
			}
		}
		got = append(got, packetRecord{p.Type, append([]byte(nil), p.Data...), p.Binary})
		return nil
	})
	switch {
	case err == nil:
		if len(got) != len(records) {
			t.Fatalf("%q: %d packets for %d records and no error", body, len(got), len(records))
		}
	case !errors.Is(err, eio.ErrInvalidPacket):
		t.Fatalf("%q: unexpected error %v", body, err)
	default:
		// It stopped at the first invalid record.
		if len(got) >= len(records) {
			t.Fatalf("%q: error after decoding every record", body)
		}
		part := body[records[len(got)].off:records[len(got)].end]
		if validRecord(part) {
			t.Fatalf("%q: stopped at valid record %q", body, part)
		}
	}
	return got, err
}

func validRecord(part []byte) bool {
	if part[0] == 'b' {
		_, err := base64.StdEncoding.DecodeString(string(part[1:]))
		return err == nil
	}
	return part[0] >= '0' && part[0] <= '6'
}

// within reports whether b's first byte lies inside buf.
func within(b, buf []byte) bool {
	if len(b) == 0 || len(buf) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	lo := uintptr(unsafe.Pointer(&buf[0]))
	return p >= lo && p < lo+uintptr(len(buf))
}
