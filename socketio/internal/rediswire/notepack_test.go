package rediswire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/nodeproc"
)

// notepackScript reads lines "<json>\t<hex of our msgpack>" and answers, per
// line, "<hex of notepack.encode(JSON.parse(json))>\t<JSON.stringify(
// notepack.decode(our msgpack))>".
const notepackScript = `
import { createInterface } from "node:readline";
import notepack from "notepack.io";
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [js, ours] = line.split("\t");
  const enc = notepack.encode(JSON.parse(js)).toString("hex");
  const dec = JSON.stringify(notepack.decode(Buffer.from(ours, "hex")));
  process.stdout.write(enc + "\t" + dec + "\n");
});
`

// TestAgainstNotepack compares the transcoder with notepack.io 3.0.1 (the
// msgpack of @socket.io/redis-adapter and redis-emitter), run by Node: our
// encoding of a JSON value must equal notepack's encoding of JSON.parse of
// it, and notepack must decode ours back to the same JSON.
func TestAgainstNotepack(t *testing.T) {
	node, dir := nodeproc.Dir(t, "notepack.io")
	values := []string{
		`0`, `1`, `-1`, `127`, `128`, `255`, `256`, `65535`, `65536`, `4294967295`, `4294967296`,
		`-31`, `-32`, `-33`, `-128`, `-129`, `-32768`, `-32769`, `-2147483648`, `-2147483649`,
		`9007199254740991`, `-9007199254740991`, `1.5`, `-0.25`, `3.141592653589793`, `1e-7`, `123456.789`,
		`""`, `"a"`, `"` + strings.Repeat("x", 31) + `"`, `"` + strings.Repeat("y", 32) + `"`, `"` + strings.Repeat("z", 300) + `"`,
		`"` + strings.Repeat("w", 70000) + `"`, `"é€😀"`, `"line\nbreak\ttab\"quote\\"`, `"\u0000\u001f"`,
		`true`, `false`, `null`, `[]`, `{}`, `[1,[2,[3,[]]]]`, `{"a":{"b":{"c":null}}}`,
		`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14]`, `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]`,
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":10,"kb":11,"kc":12,"kd":13,"ke":14,"kf":15}`,
		`["hello","world",1,1.5,{"a":true}]`,
		`{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","amount":1250.5,"currency":"EUR","items":[{"q":2,"p":9.99}]}`,
	}
	var in bytes.Buffer
	ours := make([][]byte, len(values))
	for i, v := range values {
		mp, err := AppendJSONAsMsgpack(nil, []byte(v), nil)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		ours[i] = mp
		in.WriteString(v + "\t" + hex.EncodeToString(mp) + "\n")
	}
	cmd := exec.Command(node, "--input-type=module", "-e", notepackScript)
	cmd.Dir = dir
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v (run make deps?)", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		parts := strings.SplitN(sc.Text(), "\t", 2)
		theirs, _ := hex.DecodeString(parts[0])
		if !bytes.Equal(theirs, ours[i]) {
			t.Errorf("%.80s:\n ours     % x\n notepack % x", values[i], head(ours[i]), head(theirs))
		}
		var a, b any
		_ = json.Unmarshal([]byte(values[i]), &a)
		_ = json.Unmarshal([]byte(parts[1]), &b)
		if ja, jb := mustMarshal(a), mustMarshal(b); ja != jb {
			t.Errorf("notepack decoded ours of %.80s as %.80s", values[i], parts[1])
		}
		// And our decoding of notepack's bytes gives JSON.stringify's text.
		js, _, err := AppendMsgpackAsJSON(nil, theirs, BinaryAsPlaceholder, nil)
		if err != nil || string(js) != parts[1] {
			t.Errorf("our decoding of notepack's %.80s: %.80s (%v), Node says %.80s", values[i], js, err, parts[1])
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
