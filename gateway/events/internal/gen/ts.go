package main

import (
	"bytes"
	"fmt"
	"strings"
)

// generateTS writes events.ts: strict TypeScript mirroring the Go package, with const objects
// per domain shaped like the seed's enums (InvoiceEvent.CREATED === 'invoice:created').
func generateTS(c *catalog) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	doc := func(indent, text string) {
		lines := wrap(strings.ReplaceAll(text, "*/", "*\\/"), 96)
		if len(lines) == 1 {
			p("%s/** %s */", indent, lines[0])
			return
		}
		p("%s/**", indent)
		for _, l := range lines {
			p("%s * %s", indent, l)
		}
		p("%s */", indent)
	}

	p("%s", header)
	p("//")
	for _, l := range wrap(c.Description, 96) {
		p("// %s", l)
	}
	p("")

	doc("", "Event domains, in catalog order.")
	p("export const EVENT_DOMAINS = [")
	for _, d := range c.Domains {
		p("  %s,", tsString(d.Name))
	}
	p("] as const;\n")
	doc("", "An event domain: the part of an event name before the colon.")
	p("export type EventDomain = (typeof EVENT_DOMAINS)[number];\n")

	for _, d := range c.Domains {
		name := tsDomainConst(d.Name)
		doc("", fmt.Sprintf("%s events: %s", d.Name, d.Description))
		p("export const %s = {", name)
		for _, ev := range c.Events {
			if ev.Domain == d.Name {
				doc("  ", ev.Description)
				p("  %s: %s,", tsMember(ev.Name), tsString(ev.Name))
			}
		}
		p("} as const;")
		p("export type %s = (typeof %s)[keyof typeof %s];\n", name, name, name)
	}

	doc("", "Every event name, in catalog order.")
	p("export const EVENT_NAMES = [")
	for _, ev := range c.Events {
		p("  %s,", tsString(ev.Name))
	}
	p("] as const;\n")
	doc("", "An event name.")
	p("export type EventName = (typeof EVENT_NAMES)[number];\n")

	doc("", "Every event in one object, its whole name in capitals: WebSocketEvent.INVOICE_CREATED === "+
		"'invoice:created'. As a type, any event name (EventName), as the NestJS front end's WebSocketEvent "+
		"(the union of its domain enums) was.")
	p("export const WebSocketEvent = {")
	for _, ev := range c.Events {
		doc("  ", ev.Description)
		p("  %s: %s,", tsWebSocketMember(ev.Name), tsString(ev.Name))
	}
	p("} as const;")
	p("export type WebSocketEvent = EventName;\n")

	for _, e := range c.Enums {
		doc("", e.Description)
		p("export const %s = {", e.Name)
		for _, v := range e.Values {
			p("  %s: %s,", strings.ToUpper(v), tsString(v))
		}
		p("} as const;")
		p("export type %s = (typeof %s)[keyof typeof %s];\n", e.Name, e.Name, e.Name)
	}

	doc("", "Fields common to every payload.")
	p("export interface EventPayloadBase {")
	tsFields(c.CommonFields, p, doc)
	p("}\n")
	for _, pt := range c.PayloadTypes {
		doc("", pt.Description+" Events: "+eventList(c.eventsOf(pt.Name))+".")
		p("export interface %s extends EventPayloadBase {", pt.Name)
		tsFields(pt.Fields, p, doc)
		p("}\n")
	}

	doc("", "Fields common to every payload, under the NestJS front end's name.")
	p("export type WebSocketEventPayload = EventPayloadBase;\n")
	for _, d := range c.Domains {
		doc("", fmt.Sprintf("Payload of the %s:* events, under the NestJS front end's name.", d.Name))
		p("export type %s = %s;\n", tsDomainPayloadAlias(d.Name), strings.Join(c.payloadsOf(d.Name), " | "))
	}
	doc("", "Any event payload, under the NestJS front end's name.")
	var all []string
	for _, pt := range c.PayloadTypes {
		all = append(all, pt.Name)
	}
	p("export type WebSocketPayload =")
	for i, name := range all {
		end := ""
		if i == len(all)-1 {
			end = ";\n"
		}
		p("  | %s%s", name, end)
	}

	doc("", "The payload type of each event.")
	p("export interface EventPayloadMap {")
	for _, ev := range c.Events {
		p("  %s: %s;", tsString(ev.Name), ev.Payload)
	}
	p("}\n")
	doc("", "The payload type of event E.")
	p("export type EventPayload<E extends EventName> = EventPayloadMap[E];\n")

	doc("", "Who receives an event when the publisher gives no explicit target: an organisation's members, or one user.")
	p("export type Audience = 'organization' | 'user';\n")
	doc("", "The default audience of each event.")
	p("export const EVENT_AUDIENCE = {")
	for _, ev := range c.Events {
		p("  %s: %s,", tsString(ev.Name), tsString(ev.Audience))
	}
	p("} as const satisfies Record<EventName, Audience>;\n")
	doc("", "The domain of each event.")
	p("export const EVENT_DOMAIN = {")
	for _, ev := range c.Events {
		p("  %s: %s,", tsString(ev.Name), tsString(ev.Domain))
	}
	p("} as const satisfies Record<EventName, EventDomain>;")
	return b.Bytes()
}

func tsFields(fields []field, p func(string, ...any), doc func(string, string)) {
	for _, f := range fields {
		doc("  ", f.Description)
		opt := "?"
		if f.Required {
			opt = ""
		}
		p("  %s%s: %s;", f.Name, opt, tsType(f.typeRef))
	}
}

func tsType(t typeRef) string {
	switch t.Type {
	case typeNumber, typeInteger:
		return "number"
	case typeBoolean:
		return "boolean"
	case typeEnum:
		return t.Enum
	case typeObject:
		return "Record<string, unknown>"
	case typeArray:
		return tsType(*t.Items) + "[]"
	}
	return "string" // string, date-time
}

// tsString quotes a catalog name (checked to need no escaping) the way the seed code does.
func tsString(s string) string { return "'" + s + "'" }
