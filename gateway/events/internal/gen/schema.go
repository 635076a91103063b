package main

import (
	"bytes"
	"encoding/json"
)

// generateSchema writes schema.json: a JSON Schema (draft 2020-12) whose $defs hold the enums
// and payload types, and whose properties map each event name to its payload (like
// EventPayloadMap in TypeScript), so that #/properties/<event name> is an event's schema.
func generateSchema(c *catalog) ([]byte, error) {
	defs := object{}
	for _, e := range c.Enums {
		defs = defs.with(e.Name, object{{"description", e.Description}, {"type", "string"}, {"enum", e.Values}})
	}
	for _, pt := range c.PayloadTypes {
		props := object{}
		required := []string{}
		for _, f := range c.fields(pt) {
			props = props.with(f.Name, append(object{{"description", f.Description}}, fieldSchema(f.typeRef)...))
			if f.Required {
				required = append(required, f.Name)
			}
		}
		defs = defs.with(pt.Name, object{
			{"description", pt.Description + " Fields not listed here are allowed and passed through unchanged."},
			{"type", "object"},
			{"properties", props},
			{"required", required},
			{"additionalProperties", true},
		})
	}

	events := object{}
	for _, ev := range c.Events {
		events = events.with(ev.Name, object{
			{"$ref", "#/$defs/" + ev.Payload},
			{"description", ev.Description},
			{"x-domain", ev.Domain},
			{"x-audience", ev.Audience},
		})
	}

	root := object{
		// JSON has no comments: the generated-code marker goes in $comment.
		{"$comment", header[len("// "):]},
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", "urn:operate:realtime:events"},
		{"title", "Operate real-time event payloads"},
		{"description", c.Description + " The root schema maps each event name to its payload schema: use #/properties/<event name>; x-domain and x-audience give the event's domain and default audience."},
		{"type", "object"},
		{"properties", events},
		{"additionalProperties", false},
		{"$defs", defs},
	}
	out, err := marshal(root)
	if err != nil {
		return nil, err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, out, "", "  "); err != nil {
		return nil, err
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}

func fieldSchema(t typeRef) object {
	switch t.Type {
	case typeEnum:
		return object{{"$ref", "#/$defs/" + t.Enum}}
	case typeDateTime:
		return object{{"type", "string"}, {"format", "date-time"}}
	case typeArray:
		return object{{"type", "array"}, {"items", fieldSchema(*t.Items)}}
	}
	return object{{"type", t.Type}} // string, number, integer, boolean, object: same names
}

// object is a JSON object that keeps its keys in order, so that the schema reads like the
// catalog and is byte-for-byte deterministic.
type object []member

type member struct {
	key   string
	value any
}

func (o object) with(key string, value any) object { return append(o, member{key, value}) }

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping (descriptions may contain < > &).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
