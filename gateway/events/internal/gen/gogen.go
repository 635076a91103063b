package main

import (
	"bytes"
	"fmt"
	"go/format"
	"strconv"
	"strings"
)

// generateGo writes events_gen.go: names, payload structs, the event table with the
// validation specs, and the typed EventsService methods.
func generateGo(c *catalog) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	comment := func(indent, text string) {
		for _, line := range wrap(text, 96) {
			p("%s// %s", indent, line)
		}
	}

	p("%s\n\npackage events\n", header)
	p("import (\n\"context\"\n\"time\"\n)\n")

	p("// Event names, in catalog order.")
	p("const (")
	for _, ev := range c.Events {
		comment("\t", fmt.Sprintf("%s (%s): %s", goEventConst(ev.Name), ev.Name, ev.Description))
		p("%s Name = %q", goEventConst(ev.Name), ev.Name)
	}
	p(")\n")

	for _, e := range c.Enums {
		comment("", e.Name+": "+e.Description)
		p("type %s string\n", e.Name)
		p("// Values of %s.", e.Name)
		p("const (")
		for _, v := range e.Values {
			p("%s%s %s = %q", e.Name, goIdent(v), e.Name, v)
		}
		p(")\n")
	}

	for _, pt := range c.PayloadTypes {
		comment("", pt.Name+": "+pt.Description)
		p("//")
		comment("", "Events: "+eventList(c.eventsOf(pt.Name))+".")
		p("type %s struct {", pt.Name)
		for _, f := range c.fields(pt) {
			comment("\t", f.Description)
			p("%s %s `json:%q`", goIdent(f.Name), goType(f), jsonTag(f))
		}
		p("}\n")
	}

	p("// domainTable lists the domains in catalog order.")
	p("var domainTable = [...]string{")
	for _, d := range c.Domains {
		p("%q,", d.Name)
	}
	p("}\n")

	p("// eventTable is the catalog, in catalog order.")
	p("var eventTable = [...]EventInfo{")
	for _, ev := range c.Events {
		audience := "AudienceOrganization"
		if ev.Audience == "user" {
			audience = "AudienceUser"
		}
		p("{Name: %s, Domain: %q, PayloadType: %q, Audience: %s, Description: %q, payload: &%s},",
			goEventConst(ev.Name), ev.Domain, ev.Payload, audience, ev.Description, specVar(ev.Payload))
	}
	p("}\n")

	p("// eventIndex returns the index of the named event in eventTable, or -1.")
	p("func eventIndex(name string) int {")
	p("switch name {")
	for i, ev := range c.Events {
		p("case %q:\nreturn %d", ev.Name, i)
	}
	p("}\nreturn -1\n}\n")

	for _, e := range c.Enums {
		p("var %s = []string{%s}\n", enumVar(e.Name), quotedList(e.Values, strconv.Quote))
	}
	for _, pt := range c.PayloadTypes {
		p("var %s = payloadSpec{name: %q, fields: []fieldSpec{", specVar(pt.Name), pt.Name)
		for _, f := range c.fields(pt) {
			p("{name: %q, %s},", f.Name, specFields(f))
		}
		p("}}\n")
	}

	for _, ev := range c.Events {
		method := "Emit" + goEventConst(ev.Name)
		comment("", fmt.Sprintf("%s validates and publishes %s and returns the event id. %s",
			method, ev.Name, ev.Description))
		p("func (s *EventsService) %s(ctx context.Context, p %s, opts ...EmitOption) (string, error) {", method, ev.Payload)
		p("return s.emit(ctx, %s, p, opts)\n}\n", goEventConst(ev.Name))
	}

	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt: %w\n%s", err, b.Bytes())
	}
	return src, nil
}

// goType is the Go type of a field. Optional numbers and booleans are pointers so that 0 and
// false can be sent; other optional fields are left out when empty (omitempty/omitzero).
func goType(f field) string {
	t := goElemType(f.typeRef)
	switch f.Type {
	case typeNumber, typeInteger, typeBoolean:
		if !f.Required {
			return "*" + t
		}
	}
	return t
}

func goElemType(t typeRef) string {
	switch t.Type {
	case typeNumber:
		return "float64"
	case typeInteger:
		return "int64"
	case typeBoolean:
		return "bool"
	case typeEnum:
		return t.Enum
	case typeDateTime:
		return "time.Time"
	case typeObject:
		return "map[string]any"
	case typeArray:
		return "[]" + goElemType(*t.Items)
	}
	return "string"
}

// jsonTag: date-times are omitzero even when required, so that a zero time.Time is absent
// (then set by the server, or reported missing) rather than sent as year 1.
func jsonTag(f field) string {
	switch {
	case f.Type == typeDateTime:
		return f.Name + ",omitzero"
	case f.Required:
		return f.Name
	}
	return f.Name + ",omitempty"
}

func specFields(f field) string {
	s := specType(f.typeRef)
	if f.Required {
		s += ", required: true"
	}
	if f.ServerSet {
		s += ", serverSet: true"
	}
	return s
}

func specType(t typeRef) string {
	switch t.Type {
	case typeEnum:
		return "kind: kindEnum, enum: " + enumVar(t.Enum)
	case typeArray:
		return "kind: kindArray, items: &fieldSpec{" + specType(*t.Items) + "}"
	case typeDateTime:
		return "kind: kindDateTime"
	}
	return "kind: kind" + title(t.Type)
}

func specVar(payloadType string) string { return unexport(payloadType) + "Spec" }

func enumVar(enumName string) string { return unexport(enumName) + "Values" }

// unexport lower-cases the first word of a Go name: "HRPayload" -> "hrPayload".
func unexport(name string) string {
	n := 0
	for n < len(name) && 'A' <= name[n] && name[n] <= 'Z' {
		n++
	}
	if n > 1 && n < len(name) {
		n-- // the last capital starts the next word
	}
	return strings.ToLower(name[:n]) + name[n:]
}

func eventList(evs []event) string {
	names := make([]string, len(evs))
	for i, ev := range evs {
		names[i] = ev.Name
	}
	return strings.Join(names, ", ")
}

func quotedList(values []string, quote func(string) string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quote(v)
	}
	return strings.Join(q, ", ")
}
