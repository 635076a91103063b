package admin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Redacted replaces a credential's value in the events the UI shows.
const Redacted = "[redacted]"

// secretKeys are object keys whose values are credentials (compared
// without case, "_" and "-"): auth:refresh carries {token}, and nothing
// says another event never will.
var secretKeys = map[string]bool{
	"token": true, "accesstoken": true, "refreshtoken": true, "idtoken": true, "jwt": true,
	"password": true, "secret": true, "authorization": true, "apikey": true, "sessionid": true,
}

func isSecretKey(k string) bool {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k))
	return secretKeys[k]
}

// shownArgs is what the UI shows of an event's [name, args...]: the
// values of credential keys, at any depth, replaced by Redacted; and past
// maxEventBytes, the name and a note of the size only.
func shownArgs(args []json.RawMessage) json.RawMessage {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if size > maxEventBytes && len(args) > 0 {
		note, _ := json.Marshal("(" + strconv.Itoa(size) + " bytes, not shown)")
		return mustArray(args[0], note)
	}
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		out[i] = redact(a)
	}
	return mustArray(out...)
}

func mustArray(elems ...json.RawMessage) json.RawMessage {
	b, err := json.Marshal(elems)
	if err != nil {
		return json.RawMessage(`[]`)
	}
	return b
}

// redact returns v with the values of credential keys replaced. A value
// without any credential key is returned as it was.
func redact(v json.RawMessage) json.RawMessage {
	if !bytes.ContainsAny(v, "{") {
		return v // no object, no key
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // numbers shown as sent
	var x any
	if dec.Decode(&x) != nil {
		return json.RawMessage(`"?"`)
	}
	if !redactValue(x) {
		return v
	}
	b, err := json.Marshal(x)
	if err != nil {
		return json.RawMessage(`"?"`)
	}
	return b
}

// redactValue replaces credentials in x in place and reports whether it
// found any.
func redactValue(x any) bool {
	found := false
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			if isSecretKey(k) {
				t[k] = Redacted
				found = true
				continue
			}
			found = redactValue(v) || found
		}
	case []any:
		for _, v := range t {
			found = redactValue(v) || found
		}
	}
	return found
}
