package main

import (
	"bytes"
	"fmt"
	"go/format"
	"strconv"
)

// generateClient writes client/events_gen.go: one typed handler registration per event for
// the Go subscriber client (package client).
func generateClient(c *catalog) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s\n\npackage client\n", header)
	p("import \"github.com/operate/realtime/gateway/events\"\n")
	for _, ev := range c.Events {
		method := "On" + goEventConst(ev.Name)
		for _, line := range wrap(fmt.Sprintf("%s registers fn for %s, with its payload decoded: %s The returned function removes the registration.",
			method, ev.Name, ev.Description), 96) {
			p("// %s", line)
		}
		p("func (c *Client) %s(fn func(events.%s)) (off func()) {", method, ev.Payload)
		p("return on(c, events.%s, fn)\n}\n", goEventConst(ev.Name))
	}
	return gofmt(b.Bytes())
}

// generateClientTest writes client/events_gen_test.go: for every event, its typed
// registration, its typed emitter and a payload with every field set, for a test that sends
// each event through a gateway and expects the payload back, field for field. The test file
// defines sampleOrg, sampleUser, sampleTime and ptr.
func generateClientTest(c *catalog) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s\n\npackage client_test\n", header)
	p("import (\n\"context\"\n\n\"github.com/operate/realtime/client\"\n\"github.com/operate/realtime/gateway/events\"\n)\n")
	p("// typedCases has one entry per catalog event, in catalog order.")
	p("var typedCases = []typedCase{")
	for _, ev := range c.Events {
		name := goEventConst(ev.Name)
		p("{")
		p("name: events.%s,", name)
		p("on: func(c *client.Client, got chan<- any) func() { return c.On%s(func(p events.%s) { got <- p }) },", name, ev.Payload)
		p("emit: func(ctx context.Context, svc *events.EventsService, p any) (string, error) { return svc.Emit%s(ctx, p.(events.%s)) },", name, ev.Payload)
		pt, _ := c.payloadType(ev.Payload)
		p("sample: events.%s{", ev.Payload)
		for _, f := range c.fields(pt) {
			p("%s: %s,", goIdent(f.Name), sampleValue(c, f))
		}
		p("},")
		p("},")
	}
	p("}")
	return gofmt(b.Bytes())
}

// sampleValue is a Go expression for a value of the field: organizationId and userId are the
// test's own, the rest fixed values of the field's type.
func sampleValue(c *catalog, f field) string {
	switch f.Name {
	case "organizationId":
		return "sampleOrg"
	case "userId":
		return "sampleUser"
	}
	v := sampleElem(c, f.typeRef, f.Name)
	switch f.Type {
	case typeNumber, typeInteger, typeBoolean:
		if !f.Required {
			return "ptr(" + v + ")"
		}
	}
	return v
}

func sampleElem(c *catalog, t typeRef, name string) string {
	switch t.Type {
	case typeNumber:
		return "float64(1234.5)"
	case typeInteger:
		return "int64(42)"
	case typeBoolean:
		return "true"
	case typeEnum:
		e, _ := c.enum(t.Enum)
		return fmt.Sprintf("events.%s%s", e.Name, goIdent(e.Values[len(e.Values)-1]))
	case typeDateTime:
		return "sampleTime"
	case typeObject:
		return `map[string]any{"note": "sample", "nested": map[string]any{"ok": true}}`
	case typeArray:
		return fmt.Sprintf("%s{%s, %s}", goElemType(t), sampleElem(c, *t.Items, name+"0"), sampleElem(c, *t.Items, name+"1"))
	}
	return strconv.Quote(name + " sample")
}

func (c *catalog) payloadType(name string) (payloadType, bool) {
	for _, pt := range c.PayloadTypes {
		if pt.Name == name {
			return pt, true
		}
	}
	return payloadType{}, false
}

func gofmt(src []byte) ([]byte, error) {
	out, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("gofmt: %w\n%s", err, src)
	}
	return out, nil
}
