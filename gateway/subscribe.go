package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/protocol/sio"
	"github.com/operate/realtime/socketio"
)

// Codes of the {success: false, error, code} acknowledgements.
const (
	CodeInvalidRequest   = "invalid_request"       // the request is not {events: [non-empty strings]}
	CodeUnknownEvent     = events.CodeUnknownEvent // an event name or domain is not in the catalog
	CodeUnsupportedEvent = "unsupported_event"     // clients may not send this event
)

// AllEvents is the subscription pattern for every event of the catalog.
const AllEvents = "*"

// catalogIndex numbers the catalog's events: bit i of an eventSet is event
// names[i].
type catalogIndex struct {
	bit   map[string]int
	names []events.Name
}

func newCatalogIndex() catalogIndex {
	all := events.Events()
	c := catalogIndex{bit: make(map[string]int, len(all)), names: make([]events.Name, len(all))}
	for i, e := range all {
		c.bit[string(e.Name)] = i
		c.names[i] = e.Name
	}
	return c
}

// eventSet is an immutable set of catalog events, a bitset by catalogIndex.
type eventSet struct{ words []uint64 }

func (c catalogIndex) emptySet() *eventSet {
	return &eventSet{words: make([]uint64, (len(c.names)+63)/64)}
}

func (c catalogIndex) fullSet() *eventSet {
	s := c.emptySet()
	for i := range c.names {
		s.words[i/64] |= 1 << (i % 64)
	}
	return s
}

func (s *eventSet) has(i int) bool { return s.words[i/64]&(1<<(i%64)) != 0 }

func (s *eventSet) clone() *eventSet {
	return &eventSet{words: append([]uint64(nil), s.words...)}
}

func (s *eventSet) set(i int, on bool) {
	if on {
		s.words[i/64] |= 1 << (i % 64)
	} else {
		s.words[i/64] &^= 1 << (i % 64)
	}
}

// list returns the events of s in catalog order; a nil s is every event.
func (c catalogIndex) list(s *eventSet) []events.Name {
	out := make([]events.Name, 0, len(c.names))
	for i, n := range c.names {
		if s == nil || s.has(i) {
			out = append(out, n)
		}
	}
	return out
}

// deliveryFilter is the namespace's delivery filter, run on every node, for
// live and replayed events alike. It enforces tenancy: a catalog event is
// delivered only to sockets of the organization its payload names, whatever
// room it was sent to and whoever sent it (this gateway, another node, a
// Node server or emitter on the same Redis). Rooms only narrow delivery;
// the payload's organization bounds it. An event whose organization cannot
// be read reaches nobody.
//
// The organization and the event's catalog index are read once per
// broadcast; each recipient costs a string comparison and a bit of its
// subscriptions (one atomic load when it never subscribed).
func (g *Gateway) deliveryFilter(p *socketio.Packet) func(*socketio.Socket) bool {
	bit, ok := g.catalog.bit[p.Event()]
	if !ok {
		return nil // control events are never filtered
	}
	org, ok := payloadOrganization(p.Data)
	if !ok {
		g.stats.tenancyUnknown.Add(1)
		return deliverNowhere
	}
	return func(s *socketio.Socket) bool {
		sess := sessionOf(s)
		if sess == nil {
			return false // not authenticated (yet): no tenant, no events
		}
		if sess.orgID != org {
			g.stats.tenancyRefused.Add(1)
			return false
		}
		subs := sess.subs.Load()
		return subs == nil || subs.has(bit)
	}
}

func deliverNowhere(*socketio.Socket) bool { return false }

// payloadOrganization returns the organizationId of an event packet's
// payload (its first argument): a non-empty string, present once.
func payloadOrganization(data []byte) (string, bool) {
	var args [3][]byte
	parts, ok := sio.SplitArray(args[:0], data)
	if !ok || len(parts) < 2 {
		return "", false
	}
	raw, n := sio.ObjectMember(parts[1], "organizationId")
	if n != 1 {
		return "", false
	}
	org, ok := sio.UnquoteString(raw)
	return org, ok && org != ""
}

// subscribeAck answers a successful subscribe or unsubscribe.
// Subscriptions lists every event the socket receives afterwards, in
// catalog order.
type subscribeAck struct {
	Success          bool          `json:"success"`
	SubscribedTo     []string      `json:"subscribedTo,omitempty"`
	UnsubscribedFrom []string      `json:"unsubscribedFrom,omitempty"`
	Subscriptions    []events.Name `json:"subscriptions"`
}

// errorAck answers a refused client request.
type errorAck struct {
	Success bool   `json:"success"` // always false
	Error   string `json:"error"`
	Code    string `json:"code"`
}

// requestError is a refused client request.
type requestError struct {
	code, message string
}

func (e *requestError) Error() string { return e.message }

func (g *Gateway) onSubscribe(s *socketio.Socket, ev *socketio.Event) {
	g.changeSubscriptions(s, ev, true)
}

func (g *Gateway) onUnsubscribe(s *socketio.Socket, ev *socketio.Event) {
	g.changeSubscriptions(s, ev, false)
}

// changeSubscriptions applies a subscribe (add) or unsubscribe request. A
// socket that never subscribed receives everything; its first subscribe
// narrows that to the subscribed events. Unsubscribe removes events from
// whatever the socket receives. "*" stands for every event.
func (g *Gateway) changeSubscriptions(s *socketio.Socket, ev *socketio.Event, add bool) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	patterns, all, bits, err := g.parsePatterns(ev.Name, ev.Args)
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		_ = ev.Ack(errorAck{Error: re.message, Code: re.code})
		return
	}

	sess.mu.Lock()
	cur := sess.subs.Load()
	var next *eventSet
	switch {
	case add && all:
		next = nil // everything, as before any subscription
	case add:
		if cur == nil {
			next = g.catalog.emptySet()
		} else {
			next = cur.clone()
		}
		for _, b := range bits {
			next.set(b, true)
		}
	case all:
		next = g.catalog.emptySet()
	default:
		if cur == nil {
			next = g.catalog.fullSet()
		} else {
			next = cur.clone()
		}
		for _, b := range bits {
			next.set(b, false)
		}
	}
	sess.subs.Store(next)
	sess.mu.Unlock()

	ack := subscribeAck{Success: true, Subscriptions: g.catalog.list(next)}
	if add {
		ack.SubscribedTo = patterns
	} else {
		ack.UnsubscribedFrom = patterns
	}
	_ = ev.Ack(ack)
}

// parsePatterns reads {events: [...]} and resolves the patterns to catalog
// bits. all is set when "*" is among them.
func (g *Gateway) parsePatterns(event string, args socketio.Args) (patterns []string, all bool, bits []int, err error) {
	usage := event + " expects {events: [...]} with event names, \"<domain>:*\" wildcards or \"*\""
	var req map[string]json.RawMessage
	if raw := args.Raw(0); raw == nil || json.Unmarshal(raw, &req) != nil || req == nil {
		return nil, false, nil, &requestError{CodeInvalidRequest, usage}
	}
	rawEvents, ok := req["events"]
	if !ok || string(rawEvents) == "null" {
		return nil, false, nil, &requestError{CodeInvalidRequest, usage + ": events is missing"}
	}
	var list []json.RawMessage
	if json.Unmarshal(rawEvents, &list) != nil {
		return nil, false, nil, &requestError{CodeInvalidRequest, usage + ": events is not an array"}
	}
	switch {
	case len(list) == 0:
		return nil, false, nil, &requestError{CodeInvalidRequest, usage + ": events is empty"}
	case len(list) > g.maxPatterns:
		return nil, false, nil, &requestError{CodeInvalidRequest,
			fmt.Sprintf("%s: events has %d entries, at most %d are allowed", event, len(list), g.maxPatterns)}
	}
	patterns = make([]string, 0, len(list))
	named := make([]string, 0, len(list))
	for i, raw := range list {
		var p string
		if json.Unmarshal(raw, &p) != nil {
			return nil, false, nil, &requestError{CodeInvalidRequest, fmt.Sprintf("%s: events[%d] is not a string", event, i)}
		}
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, false, nil, &requestError{CodeInvalidRequest, fmt.Sprintf("%s: events[%d] is empty", event, i)}
		}
		patterns = append(patterns, p)
		if p == AllEvents {
			all = true
		} else {
			named = append(named, p)
		}
	}
	names, err := events.ExpandPatterns(named)
	if err != nil {
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			return nil, false, nil, &requestError{ve.Code, event + ": " + ve.Message}
		}
		return nil, false, nil, &requestError{CodeUnknownEvent, event + ": " + err.Error()}
	}
	bits = make([]int, 0, len(names))
	for _, n := range names {
		bits = append(bits, g.catalog.bit[string(n)])
	}
	return patterns, all, bits, nil
}

// onUnsupported refuses every other client event without harm: an
// acknowledgement with an error when the client waits for one, nothing
// otherwise (in particular, a client cannot publish catalog events).
func (g *Gateway) onUnsupported(s *socketio.Socket, ev *socketio.Event) {
	if !ev.WantsAck() {
		return
	}
	_ = ev.Ack(errorAck{
		Error: fmt.Sprintf("unsupported event %q: clients may send only %s, %s and %s",
			ev.Name, EventSubscribe, EventUnsubscribe, EventAuthRefresh),
		Code: CodeUnsupportedEvent,
	})
}
