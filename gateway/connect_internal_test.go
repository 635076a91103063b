package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestConnectedJSONMatchesStruct: the hand-written EventConnected payload
// decodes to what encoding/json made of connectedPayload, and is byte for
// byte the same for plain identifiers.
func TestConnectedJSONMatchesStruct(t *testing.T) {
	exp := time.Date(2026, 12, 3, 7, 1, 2, 345_000_000, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		user, org string
		exp       time.Time
	}{
		{"user-1", "org-1", exp},
		{"user-1", "org-1", time.Time{}},
		{`quo"te\back`, "<org>&", exp},
		{"Zoë \u2028 \x01", "組織", exp},
	} {
		got := connectedJSON(c.user, c.org, c.exp)
		want, err := json.Marshal(connectedPayload{Message: ConnectedMessage, UserID: c.user, OrganizationID: c.org, ExpiresAt: jsTime(c.exp)})
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("connectedJSON = %s, want %s", got, want)
		}
		if c.user == "user-1" && string(got) != string(want) {
			t.Errorf("connectedJSON = %s, want %s", got, want)
		}
	}
}

// TestAuthTokenShortcut: the payloads onlyToken takes read the same as
// through the JSON decoder, and the others go to the decoder.
func TestAuthTokenShortcut(t *testing.T) {
	decoded := func(raw string) (string, bool, string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &m) != nil {
			return "", false, raw
		}
		v, ok := m["token"]
		if !ok || string(v) == "null" {
			return "", false, raw
		}
		var tok string
		if json.Unmarshal(v, &tok) != nil {
			return "", true, raw
		}
		delete(m, "token")
		rest, _ := json.Marshal(m)
		return tok, false, string(rest)
	}
	for _, raw := range []string{
		`{"token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}`,
		`{"token":""}`,
		`{"token":"Bearer abc"}`,
		`{"token":"a\"b"}`,
		`{"token":"a\\u0041"}`,
		`{"token":"é"}`,
		`{"token":null}`,
		`{"token":12}`,
		`{"token":"a","v":1}`,
		`{"v":1,"token":"a"}`,
		`{ "token":"a"}`,
		`{"token":"a"} `,
		`{"token":"a"}}`,
		`{"token":"a"`,
		`{}`,
		`[]`,
		``,
	} {
		tok, malformed := authToken(json.RawMessage(raw))
		wantTok, wantMalformed, wantRest := decoded(raw)
		if tok != wantTok || malformed != wantMalformed {
			t.Errorf("authToken(%s) = %q, %v; want %q, %v", raw, tok, malformed, wantTok, wantMalformed)
		}
		if _, ok := onlyToken([]byte(raw)); ok && string(withoutToken(json.RawMessage(raw))) != wantRest {
			t.Errorf("withoutToken(%s) = %s, want %s", raw, withoutToken(json.RawMessage(raw)), wantRest)
		}
	}
	if _, ok := onlyToken([]byte(`{"token":"abc.def.ghi"}`)); !ok {
		t.Error("onlyToken refuses the common payload")
	}
}
