package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/operate/realtime/protocol/sio"
)

// Codes of ValidationError. They are part of the HTTP API: clients may switch on them.
const (
	CodeUnknownEvent   = "unknown_event"   // the event name (or subscription pattern) is not in the catalog
	CodeInvalidPayload = "invalid_payload" // not JSON, not an object, or a duplicate field
	CodeMissingField   = "missing_field"   // a required field is absent, or an empty string
	CodeInvalidType    = "invalid_type"    // a known field has the wrong JSON type
	CodeInvalidValue   = "invalid_value"   // right type, wrong value: enum, date-time, number range
	CodeInvalidTarget  = "invalid_target"  // an explicit target is contradictory or crosses tenants
)

// ValidationError is a publish request the catalog rejects. Message names the event and, where
// there is one, the field; Field is the field's JSON name ("transactionIds[2]" for an array
// element).
type ValidationError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *ValidationError) Error() string { return e.Message }

// kind is the type of a payload field, as declared in catalog.json.
type kind uint8

const (
	kindString kind = iota + 1
	kindNumber
	kindInteger
	kindBoolean
	kindEnum
	kindDateTime
	kindObject
	kindArray
)

// fieldSpec is one field of a payload type; the generator writes them from catalog.json.
type fieldSpec struct {
	name      string
	kind      kind
	required  bool
	serverSet bool       // set by the gateway when absent (timestamp)
	enum      []string   // kindEnum: the allowed values
	items     *fieldSpec // kindArray: the element type (never an array itself)
}

// payloadSpec is a payload type. There are at most 64 fields (the generator checks), so a
// uint64 can record which ones a payload has.
type payloadSpec struct {
	name   string
	fields []fieldSpec
}

// jsTimeLayout formats like JavaScript's Date.prototype.toISOString(): UTC, milliseconds, "Z".
const jsTimeLayout = "2006-01-02T15:04:05.000Z"

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER: larger integers do not survive
// JSON.parse in the browser.
const maxSafeInteger = 1<<53 - 1

// Validate checks a payload against the catalog entry of the named event and returns it
// normalised: timestamp set to the current time when absent, and date-time fields rewritten
// in the toISOString format. Fields the catalog does not know are passed through unchanged.
// When nothing needs normalising the returned slice is payload itself. Errors are
// *ValidationError.
func Validate(name string, payload json.RawMessage) (json.RawMessage, error) {
	out, _, _, err := validate(name, payload, time.Now)
	return out, err
}

// validate is Validate that also returns the event's catalog entry and the routing fields,
// so that publishing reads the payload only once.
func validate(name string, payload []byte, now func() time.Time) (json.RawMessage, EventInfo, routing, error) {
	i := eventIndex(name)
	if i < 0 {
		return nil, EventInfo{}, routing{}, &ValidationError{Code: CodeUnknownEvent, Message: "unknown event " + quote(name)}
	}
	info := eventTable[i]
	out, r, err := validatePayload(info, payload, now)
	return out, info, r, err
}

// edit replaces payload[start:end] with repl when the payload is rebuilt.
type edit struct {
	start, end int
	repl       []byte
}

func validatePayload(info EventInfo, payload []byte, now func() time.Time) (json.RawMessage, routing, error) {
	start := sio.SkipSpace(payload, 0)
	switch {
	case start == len(payload):
		return nil, routing{}, payloadError(info.Name, "payload is empty")
	case !json.Valid(payload):
		return nil, routing{}, payloadError(info.Name, "payload is not valid JSON")
	case payload[start] != '{':
		return nil, routing{}, payloadError(info.Name, "payload must be a JSON object, got "+jsonType(payload[start]))
	}

	fields := info.payload.fields
	var (
		r       routing
		seen    uint64
		editBuf [2]edit // enough for the usual date-time rewrites without allocating
		edits   = editBuf[:0]
	)
	m := iterator{data: payload, pos: start}
	for m.nextMember() {
		fi := fieldIndex(fields, m.key)
		if fi < 0 {
			continue // unknown fields pass through: see the package doc
		}
		f := &fields[fi]
		if seen&(1<<fi) != 0 {
			// Rejected because JavaScript's JSON.parse keeps the last duplicate while we would
			// have checked (and routed on) the first.
			return nil, routing{}, &ValidationError{
				Code:    CodeInvalidPayload,
				Message: fmt.Sprintf("%s: field %q appears more than once", info.Name, f.name),
				Field:   f.name,
			}
		}
		seen |= 1 << fi
		val := payload[m.start:m.end]
		if f.kind != kindArray {
			repl, p := checkValue(f, val)
			if p != nil {
				return nil, routing{}, p.error(info.Name, f.name, -1)
			}
			if repl != nil {
				edits = append(edits, edit{start: m.start, end: m.end, repl: repl})
			}
		} else {
			if val[0] != '[' {
				return nil, routing{}, wrongType(f, val).error(info.Name, f.name, -1)
			}
			el := iterator{data: val}
			for i := 0; el.nextElement(); i++ {
				repl, p := checkValue(f.items, val[el.start:el.end])
				if p != nil {
					return nil, routing{}, p.error(info.Name, f.name, i)
				}
				if repl != nil {
					edits = append(edits, edit{start: m.start + el.start, end: m.start + el.end, repl: repl})
				}
			}
		}
		if f.required && f.kind == kindString && len(val) == 2 { // ""
			return nil, routing{}, missingField(info.Name, f.name, "must not be empty")
		}
		switch f.name {
		case "organizationId", "userId":
			if p := checkIdentifier(val); p != nil {
				return nil, routing{}, p.error(info.Name, f.name, -1)
			}
			if f.name == "organizationId" {
				r.organizationID = val
			} else {
				r.userID = val
			}
		}
	}

	var addBuf [1]string
	add := addBuf[:0] // server-set fields to append
	for fi := range fields {
		f := &fields[fi]
		if seen&(1<<fi) != 0 || !f.required {
			continue
		}
		if !f.serverSet {
			return nil, routing{}, missingField(info.Name, f.name, "is missing")
		}
		add = append(add, f.name)
	}
	if len(edits) == 0 && len(add) == 0 {
		return payload, r, nil
	}
	return rebuild(payload, edits, m.pos, m.count > 0, add, now), r, nil
}

// rebuild applies the edits (in payload order) and appends the server-set fields, with the
// current time, before the closing brace at closeAt.
func rebuild(payload []byte, edits []edit, closeAt int, hasMembers bool, add []string, now func() time.Time) []byte {
	out := make([]byte, 0, len(payload)+len(add)*48+len(edits)*8)
	last := 0
	for _, e := range edits {
		out = append(out, payload[last:e.start]...)
		out = append(out, e.repl...)
		last = e.end
	}
	out = append(out, payload[last:closeAt]...)
	if len(add) > 0 {
		stamp := now().UTC()
		for _, name := range add {
			if hasMembers {
				out = append(out, ',')
			}
			hasMembers = true
			out = append(out, '"')
			out = append(out, name...)
			out = append(out, `":"`...)
			out = stamp.AppendFormat(out, jsTimeLayout)
			out = append(out, '"')
		}
	}
	return append(out, payload[closeAt:]...)
}

// problem is a field-level validation failure, turned into a ValidationError by error.
type problem struct {
	code   string
	detail string // completes `field "x" ...`
}

// error names the field, and the array element at fault when index >= 0.
func (p *problem) error(event Name, field string, index int) *ValidationError {
	path := field
	if index >= 0 {
		path = fmt.Sprintf("%s[%d]", field, index)
	}
	return &ValidationError{Code: p.code, Field: path, Message: fmt.Sprintf("%s: field %q %s", event, path, p.detail)}
}

// checkValue checks one raw JSON value (an array element for array fields). For date-times
// that need normalising it returns the replacement JSON.
func checkValue(f *fieldSpec, val []byte) (repl []byte, p *problem) {
	c := val[0]
	switch f.kind {
	case kindString:
		if c != '"' {
			return nil, wrongType(f, val)
		}
	case kindBoolean:
		if c != 't' && c != 'f' {
			return nil, wrongType(f, val)
		}
	case kindObject:
		if c != '{' {
			return nil, wrongType(f, val)
		}
	case kindNumber, kindInteger:
		if c != '-' && (c < '0' || c > '9') {
			return nil, wrongType(f, val)
		}
		return nil, checkNumber(f, val)
	case kindEnum:
		if c != '"' {
			return nil, wrongType(f, val)
		}
		s := stringContent(val)
		for _, allowed := range f.enum {
			if string(s) == allowed {
				return nil, nil
			}
		}
		return nil, &problem{code: CodeInvalidValue, detail: "must be one of " + quoteList(f.enum) + ", got " + quoteBytes(s)}
	case kindDateTime:
		if c != '"' {
			return nil, wrongType(f, val)
		}
		return checkDateTime(val)
	}
	return nil, nil
}

// checkIdentifier refuses an id that decoders would not keep as it is: an
// unpaired UTF-16 surrogate (\ud800) or invalid UTF-8 decodes to U+FFFD,
// so distinct ids would name the same room and the same tenant.
func checkIdentifier(quoted []byte) *problem {
	if s := stringContent(quoted); !utf8.Valid(s) || bytes.ContainsRune(s, utf8.RuneError) {
		return &problem{code: CodeInvalidValue, detail: "holds an unpaired surrogate, invalid UTF-8 or U+FFFD: ids must be valid text"}
	}
	return nil
}

func checkNumber(f *fieldSpec, val []byte) *problem {
	x, err := strconv.ParseFloat(string(val), 64)
	if err != nil { // only ErrRange: the syntax passed json.Valid
		return &problem{code: CodeInvalidValue, detail: "is out of range: " + string(val)}
	}
	if f.kind == kindInteger {
		if x != math.Trunc(x) {
			return &problem{code: CodeInvalidType, detail: "must be an integer, got " + string(val)}
		}
		if math.Abs(x) > maxSafeInteger {
			return &problem{code: CodeInvalidValue, detail: "must be at most 2^53-1 in magnitude, got " + string(val)}
		}
	}
	return nil
}

// checkDateTime accepts any RFC 3339 date-time and, unless it is already in the toISOString
// format, returns the replacement in that format.
func checkDateTime(val []byte) ([]byte, *problem) {
	s := stringContent(val)
	if isCanonicalTime(s) {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return nil, &problem{code: CodeInvalidValue,
			detail: `must be an RFC 3339 date-time such as "2025-01-31T09:30:00.000Z", got ` + quoteBytes(s)}
	}
	repl := make([]byte, 0, len(jsTimeLayout)+2)
	repl = append(t.UTC().AppendFormat(append(repl, '"'), jsTimeLayout), '"')
	if len(repl) != len(jsTimeLayout)+2 { // the UTC year left 0000-9999
		return nil, &problem{code: CodeInvalidValue, detail: "is out of range: " + quoteBytes(s)}
	}
	return repl, nil
}

// isCanonicalTime reports whether s is a valid time written exactly as toISOString writes it.
// It is the allocation-free path for what publishers (and this package) normally send.
func isCanonicalTime(s []byte) bool {
	if len(s) != len(jsTimeLayout) {
		return false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	for i, c := range []byte(jsTimeLayout) {
		if (c < '0' || c > '9') && s[i] != c { // the separators: - - T : : . Z
			return false
		}
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec, milli := num(11, 2), num(14, 2), num(17, 2), num(20, 3)
	if year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || sec < 0 || milli < 0 {
		return false
	}
	// time.Date normalises out-of-range parts (month 13, hour 24, ...): a round trip catches them.
	t := time.Date(year, time.Month(month), day, hour, minute, sec, milli*int(time.Millisecond), time.UTC)
	y, mo, d := t.Date()
	h, mi, se := t.Clock()
	return y == year && int(mo) == month && d == day && h == hour && mi == minute && se == sec
}

func wrongType(f *fieldSpec, val []byte) *problem {
	return &problem{code: CodeInvalidType, detail: "must be " + kindDescription(f) + ", got " + jsonType(val[0])}
}

func kindDescription(f *fieldSpec) string {
	switch f.kind {
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	case kindInteger:
		return "an integer"
	case kindBoolean:
		return "a boolean"
	case kindEnum:
		return "a string, one of " + quoteList(f.enum)
	case kindDateTime:
		return "an RFC 3339 date-time string"
	case kindObject:
		return "a JSON object"
	case kindArray:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(kindDescription(f.items), "an "), "a ") + " values"
	}
	return "unknown"
}

func payloadError(event Name, msg string) *ValidationError {
	return &ValidationError{Code: CodeInvalidPayload, Message: string(event) + ": " + msg}
}

func missingField(event Name, field, why string) *ValidationError {
	return &ValidationError{
		Code:    CodeMissingField,
		Message: fmt.Sprintf("%s: required field %q %s", event, field, why),
		Field:   field,
	}
}

// fieldIndex returns the index of the field named by the raw (quoted) key, or -1.
func fieldIndex(fields []fieldSpec, key []byte) int {
	name := stringContent(key)
	for i := range fields {
		if string(name) == fields[i].name {
			return i
		}
	}
	return -1
}

// jsonType names the JSON type of the value that starts with c.
func jsonType(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// JSONType names the JSON type of a valid JSON value ("object", "array",
// "string", "boolean", "null", "number"), or "nothing" for empty input:
// how error messages describe what was sent instead.
func JSONType(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	return jsonType(v[0])
}

func quote(s string) string { return strconv.Quote(s) }

// quoteBytes quotes a value for an error message, shortened: it may be large or sensitive.
func quoteBytes(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return strconv.Quote(string(b[:limit]) + "...")
	}
	return strconv.Quote(string(b))
}

func quoteList(values []string) string {
	var sb strings.Builder
	for i, v := range values {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Quote(v))
	}
	return sb.String()
}
