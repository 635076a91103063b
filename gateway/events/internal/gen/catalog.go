package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// catalog is catalog.json. See that file for the meaning of each entry.
type catalog struct {
	Description  string        `json:"description"`
	CommonFields []field       `json:"commonFields"` // the first fields of every payload type
	Enums        []enum        `json:"enums"`
	Domains      []domain      `json:"domains"`
	PayloadTypes []payloadType `json:"payloadTypes"`
	Events       []event       `json:"events"`
}

type enum struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Values      []string `json:"values"`
}

type domain struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type payloadType struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Fields      []field `json:"fields"` // after the common fields
}

// typeRef is a field's type: one of the kinds below; enum names an enum for "enum", items is
// the element type for "array".
type typeRef struct {
	Type  string   `json:"type"`
	Enum  string   `json:"enum,omitempty"`
	Items *typeRef `json:"items,omitempty"`
}

type field struct {
	Name string `json:"name"`
	typeRef
	Required    bool   `json:"required,omitempty"`
	ServerSet   bool   `json:"serverSet,omitempty"` // set by the gateway when absent
	Description string `json:"description"`
}

type event struct {
	Name        string `json:"name"`
	Domain      string `json:"domain"`
	Payload     string `json:"payload"`
	Audience    string `json:"audience"`
	Description string `json:"description"`
}

// The field types of catalog.json.
const (
	typeString   = "string"
	typeNumber   = "number"
	typeInteger  = "integer"
	typeBoolean  = "boolean"
	typeEnum     = "enum"
	typeDateTime = "date-time"
	typeObject   = "object"
	typeArray    = "array"
)

// maxFields is what package events can track per payload (a uint64 bit set).
const maxFields = 64

var (
	eventNameRE  = regexp.MustCompile(`^([a-z][a-z0-9]*):[a-z][a-z0-9_]*$`)
	domainNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	fieldNameRE  = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	typeNameRE   = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	enumValueRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// parseCatalog decodes and checks a catalog. Unknown keys are errors, to catch typos.
func parseCatalog(data []byte) (*catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// fields returns all fields of a payload type: the common ones first.
func (c *catalog) fields(p payloadType) []field {
	return append(append([]field(nil), c.CommonFields...), p.Fields...)
}

func (c *catalog) enum(name string) (enum, bool) {
	for _, e := range c.Enums {
		if e.Name == name {
			return e, true
		}
	}
	return enum{}, false
}

// eventsOf returns the events whose payload is the named type.
func (c *catalog) eventsOf(payload string) []event {
	var evs []event
	for _, ev := range c.Events {
		if ev.Payload == payload {
			evs = append(evs, ev)
		}
	}
	return evs
}

// payloadsOf returns the payload types of a domain's events, without repeats, in the order of
// first use.
func (c *catalog) payloadsOf(domain string) []string {
	var types []string
	for _, ev := range c.Events {
		if ev.Domain == domain && !slices.Contains(types, ev.Payload) {
			types = append(types, ev.Payload)
		}
	}
	return types
}

// check reports every problem of the catalog at once.
func (c *catalog) check() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	need := func(what, desc string) {
		if strings.TrimSpace(desc) == "" {
			fail("%s: description is empty", what)
		}
	}
	need("catalog", c.Description)

	// Package events routes and timestamps events by these three fields.
	common := map[string]field{}
	for _, f := range c.CommonFields {
		common[f.Name] = f
	}
	for _, want := range []field{
		{Name: "timestamp", typeRef: typeRef{Type: typeDateTime}, Required: true, ServerSet: true},
		{Name: "organizationId", typeRef: typeRef{Type: typeString}, Required: true},
		{Name: "userId", typeRef: typeRef{Type: typeString}},
	} {
		got, ok := common[want.Name]
		if !ok || got.Type != want.Type || got.Required != want.Required || got.ServerSet != want.ServerSet {
			fail("commonFields: need %q of type %s, required=%t, serverSet=%t", want.Name, want.Type, want.Required, want.ServerSet)
		}
	}

	// Top-level names share one Go package and one TypeScript module.
	idents := map[string]string{}
	for _, reserved := range reservedIdents {
		idents[reserved] = "package events"
	}
	ident := func(name, what string) {
		if prev, ok := idents[name]; ok {
			fail("%s: identifier %s is already used by %s", what, name, prev)
		}
		idents[name] = what
	}

	for _, e := range c.Enums {
		what := "enum " + e.Name
		if !typeNameRE.MatchString(e.Name) {
			fail("%s: name must match %s", what, typeNameRE)
		}
		ident(e.Name, what)
		need(what, e.Description)
		if len(e.Values) == 0 {
			fail("%s: no values", what)
		}
		seen := map[string]bool{}
		for _, v := range e.Values {
			if !enumValueRE.MatchString(v) || seen[v] {
				fail("%s: value %q is a duplicate or does not match %s", what, v, enumValueRE)
			}
			seen[v] = true
			ident(e.Name+goIdent(v), what)
		}
	}

	domains := map[string]bool{}
	for _, d := range c.Domains {
		if !domainNameRE.MatchString(d.Name) || domains[d.Name] {
			fail("domain %q: duplicate or does not match %s", d.Name, domainNameRE)
		}
		domains[d.Name] = true
		need("domain "+d.Name, d.Description)
		ident(tsDomainConst(d.Name), "domain "+d.Name)
		ident(tsDomainPayloadAlias(d.Name), "domain "+d.Name)
	}

	payloads := map[string]bool{}
	for _, p := range c.PayloadTypes {
		what := "payload type " + p.Name
		if !typeNameRE.MatchString(p.Name) || !strings.HasSuffix(p.Name, "Payload") {
			fail("%s: name must match %s and end in Payload", what, typeNameRE)
		}
		if payloads[p.Name] {
			fail("%s: duplicate", what)
		}
		payloads[p.Name] = true
		ident(p.Name, what)
		need(what, p.Description)
		fields := c.fields(p)
		if len(fields) > maxFields {
			fail("%s: %d fields, at most %d", what, len(fields), maxFields)
		}
		names := map[string]bool{}
		for _, f := range fields {
			fwhat := what + " field " + f.Name
			if !fieldNameRE.MatchString(f.Name) || names[f.Name] {
				fail("%s: duplicate or does not match %s", fwhat, fieldNameRE)
			}
			names[f.Name] = true
			need(fwhat, f.Description)
			if err := c.checkType(f.typeRef, true); err != nil {
				fail("%s: %v", fwhat, err)
			}
			if f.ServerSet && (!f.Required || f.Type != typeDateTime) {
				fail("%s: only required date-time fields can be serverSet", fwhat)
			}
		}
		if len(c.eventsOf(p.Name)) == 0 {
			fail("%s: no event uses it", what)
		}
	}

	names := map[string]bool{}
	used := map[string]bool{}
	for _, ev := range c.Events {
		what := "event " + ev.Name
		m := eventNameRE.FindStringSubmatch(ev.Name)
		if m == nil {
			fail("%s: name must match %s", what, eventNameRE)
			continue
		}
		if names[ev.Name] {
			fail("%s: duplicate", what)
		}
		names[ev.Name] = true
		if ev.Domain != m[1] || !domains[ev.Domain] {
			fail("%s: domain %q must be the name's prefix and a declared domain", what, ev.Domain)
		}
		used[ev.Domain] = true
		if !payloads[ev.Payload] {
			fail("%s: unknown payload type %q", what, ev.Payload)
		}
		if ev.Audience != "organization" && ev.Audience != "user" {
			fail("%s: audience must be organization or user, not %q", what, ev.Audience)
		}
		need(what, ev.Description)
		ident(goEventConst(ev.Name), what)
		ident("Emit"+goEventConst(ev.Name), what)
	}
	for _, d := range c.Domains {
		if !used[d.Name] {
			fail("domain %s: no events", d.Name)
		}
	}
	return errors.Join(errs...)
}

func (c *catalog) checkType(t typeRef, top bool) error {
	switch t.Type {
	case typeString, typeNumber, typeInteger, typeBoolean, typeDateTime, typeObject:
	case typeEnum:
		if _, ok := c.enum(t.Enum); !ok {
			return fmt.Errorf("unknown enum %q", t.Enum)
		}
	case typeArray:
		if !top {
			return errors.New("arrays of arrays are not supported")
		}
		if t.Items == nil {
			return errors.New("array without items")
		}
		return c.checkType(*t.Items, false)
	default:
		return fmt.Errorf("unknown type %q", t.Type)
	}
	if t.Enum != "" && t.Type != typeEnum || t.Items != nil && t.Type != typeArray {
		return fmt.Errorf("enum/items do not apply to type %s", t.Type)
	}
	return nil
}

// reservedIdents are the hand-written top-level names of package events and of events.ts
// that generated names must not collide with.
var reservedIdents = []string{
	"Name", "Audience", "AudienceOrganization", "AudienceUser", "EventInfo", "Events", "Lookup",
	"Domains", "Target", "OrgRoom", "UserRoom", "DefaultTarget", "Event", "Emitter", "EventsService",
	"NewEventsService", "ServiceOption", "WithClock", "WithIDGenerator", "EmitOption", "WithTarget",
	"Emit", "Validate", "ValidationError", "Match", "ExpandPatterns", "NewEventID", "Schema",
	"EventName", "EventDomain", "EventPayloadBase", "EventPayloadMap", "EventPayload",
	"WebSocketEvent", "WebSocketEventPayload", "WebSocketPayload",
}
