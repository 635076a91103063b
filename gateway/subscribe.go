package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/filter"
	"github.com/operate/realtime/protocol/sio"
	"github.com/operate/realtime/socketio"
)

// Codes of the {success: false, error, code} acknowledgements.
const (
	CodeInvalidRequest   = "invalid_request"       // the request is not {events: [non-empty strings]}
	CodeUnknownEvent     = events.CodeUnknownEvent // an event name or domain is not in the catalog
	CodeUnknownField     = "unknown_field"         // the request has a field this event does not take
	CodeInvalidFilter    = "invalid_filter"        // the filter is not a valid, boolean, affordable expression for the events
	CodeUnsupportedEvent = "unsupported_event"     // clients may not send this event
)

// AllEvents is the subscription pattern for every event of the catalog.
const AllEvents = "*"

// catalogIndex numbers the catalog's events: bit i of an eventSet is event
// names[i].
type catalogIndex struct {
	bit         map[string]int
	names       []events.Name
	payloadType []string       // by bit
	domainSize  map[string]int // events per domain
}

func newCatalogIndex() catalogIndex {
	all := events.Events()
	c := catalogIndex{
		bit:         make(map[string]int, len(all)),
		names:       make([]events.Name, len(all)),
		payloadType: make([]string, len(all)),
		domainSize:  make(map[string]int),
	}
	for i, e := range all {
		c.bit[string(e.Name)] = i
		c.names[i] = e.Name
		c.payloadType[i] = e.PayloadType
		c.domainSize[e.Domain]++
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

// subscriptions is what a socket receives: the events of set, each through
// its filter when it has one. It is immutable: changes replace it.
type subscriptions struct {
	events *eventSet
	// filters holds the filter of each event by catalog index, nil for an
	// event received unfiltered; the slice is nil when no event has one.
	filters []*filter.Program
}

// filterOf returns the filter of event bit, nil when it has none.
func (s *subscriptions) filterOf(bit int) *filter.Program {
	if s.filters == nil {
		return nil
	}
	return s.filters[bit]
}

// deliveryFilter is the namespace's delivery filter, run on every node, for
// live and replayed events alike. It enforces tenancy: a catalog event is
// delivered only to sockets of the organization its payload names, whatever
// room it was sent to and whoever sent it (this gateway, another node, a
// Node server or emitter on the same Redis). Rooms only narrow delivery;
// the payload's organization bounds it. An event whose organization cannot
// be read reaches nobody. Then it applies each socket's subscriptions and
// their payload filters. Packets marked as direct emits (Packet.Direct)
// get no exemption: the mark comes through Redis, where anyone who can
// write may set it, and the gateway's own direct emits are control events,
// which it never filters.
//
// The organization and the event's catalog index are read once per
// broadcast; each recipient costs a string comparison and a bit of its
// subscriptions (one atomic load when it never subscribed). Payload
// filters cost once per broadcast and distinct program: the payload is
// decoded for the first recipient with a filter, each program evaluated
// for the first recipient that has it, and the others reuse the result.
func (g *Gateway) deliveryFilter(p *socketio.Packet) func(*socketio.Socket) bool {
	name := p.Event()
	bit, ok := g.catalog.bit[name]
	if !ok {
		if name == EventPresenceJoined || name == EventPresenceLeft {
			return presenceFilter(p) // tenancy, as for catalog events
		}
		return nil // control events are never filtered
	}
	payload, org, ok := payloadOrganization(p.Data)
	if !ok {
		g.stats.tenancyUnknown.Add(1)
		return deliverNowhere
	}
	d := &delivery{g: g, bit: bit, org: org, event: name, payload: payload}
	return d.keep
}

func deliverNowhere(*socketio.Socket) bool { return false }

// delivery is the recipient test of one broadcast. The namespace calls it
// for one recipient after another on one goroutine, so its memo of filter
// results needs no lock.
type delivery struct {
	g       *Gateway
	bit     int
	org     string
	event   string
	payload []byte // the event's payload (JSON)

	decoded *filter.Payload // payload, decoded for the first filter
	// The results of the programs evaluated so far: the first few in an
	// array, scanned (recipients share few distinct filters, and a scan
	// of a few pointers beats a map), the rest in a map.
	progs   [8]*filter.Program
	results [8]bool
	n       int
	more    map[*filter.Program]bool
}

func (d *delivery) keep(s *socketio.Socket) bool {
	sess := sessionOf(s)
	if sess == nil {
		return false // not authenticated (yet): no tenant, no events
	}
	if sess.orgID != d.org {
		d.g.stats.tenancyRefused.Add(1)
		return false
	}
	subs := sess.subs.Load()
	if subs == nil {
		return true
	}
	if !subs.events.has(d.bit) {
		return false
	}
	prg := subs.filterOf(d.bit)
	return prg == nil || d.match(prg)
}

// match evaluates prg once per broadcast.
func (d *delivery) match(prg *filter.Program) bool {
	for i := range d.n {
		if d.progs[i] == prg {
			return d.results[i]
		}
	}
	if r, ok := d.more[prg]; ok {
		return r
	}
	if d.decoded == nil {
		d.decoded = d.g.filters.Decode(d.event, d.payload)
	}
	r := prg.Match(d.decoded)
	d.g.stats.filterEvaluations.Add(1)
	if d.n < len(d.progs) {
		d.progs[d.n], d.results[d.n] = prg, r
		d.n++
	} else {
		if d.more == nil {
			d.more = make(map[*filter.Program]bool)
		}
		d.more[prg] = r
	}
	return r
}

// payloadOrganization returns the payload of an event packet (its first
// argument) and the payload's organizationId: a non-empty string, present
// once.
func payloadOrganization(data []byte) (payload []byte, org string, ok bool) {
	var args [3][]byte
	parts, ok := sio.SplitArray(args[:0], data)
	if !ok || len(parts) < 2 {
		return nil, "", false
	}
	raw, n := sio.ObjectMember(parts[1], "organizationId")
	if n != 1 {
		return nil, "", false
	}
	org, ok = sio.UnquoteString(raw)
	return parts[1], org, ok && org != ""
}

// subscribeAck answers a successful subscribe or unsubscribe.
// Subscriptions lists every event the socket receives afterwards, in
// catalog order, whether filtered or not; Filter repeats the filter of a
// subscribe that had one.
type subscribeAck struct {
	Success          bool          `json:"success"`
	SubscribedTo     []string      `json:"subscribedTo,omitempty"`
	UnsubscribedFrom []string      `json:"unsubscribedFrom,omitempty"`
	Filter           string        `json:"filter,omitempty"`
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

// subscriptionRequest is a parsed subscribe or unsubscribe request.
type subscriptionRequest struct {
	patterns []string // as sent, trimmed
	all      bool     // "*" is among them
	bits     []int    // the catalog events of the other patterns
	filter   string   // subscribe only; "" when none
}

// changeSubscriptions applies a subscribe (add) or unsubscribe request. A
// socket that never subscribed receives everything; its first subscribe
// narrows that to the subscribed events. Unsubscribe removes events from
// whatever the socket receives. "*" stands for every event.
//
// A subscribe with a filter receives its events only when their payload
// passes the filter; without one, it receives them all. Either way, it
// replaces what an earlier subscribe said for those events: subscribing
// again to an event changes or removes its filter. Unsubscribe removes
// events together with their filters.
func (g *Gateway) changeSubscriptions(s *socketio.Socket, ev *socketio.Event, add bool) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	req, err := g.parseSubscription(ev.Name, ev.Args, add)
	var prgs []*filter.Program // by catalog index
	if err == nil && req.filter != "" {
		prgs, err = g.compileFilter(ev.Name, req)
	}
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		_ = ev.Ack(errorAck{Error: re.message, Code: re.code})
		return
	}

	sess.mu.Lock()
	next := g.nextSubscriptions(sess.subs.Load(), req, prgs, add)
	sess.subs.Store(next)
	sess.mu.Unlock()

	var list []events.Name
	if next == nil {
		list = g.catalog.list(nil)
	} else {
		list = g.catalog.list(next.events)
	}
	ack := subscribeAck{Success: true, Subscriptions: list, Filter: req.filter}
	if add {
		ack.SubscribedTo = req.patterns
	} else {
		ack.UnsubscribedFrom = req.patterns
	}
	_ = ev.Ack(ack)
}

// nextSubscriptions returns cur changed by req; prgs holds the request's
// filter by catalog index (nil without a filter). nil is every event,
// unfiltered.
func (g *Gateway) nextSubscriptions(cur *subscriptions, req *subscriptionRequest, prgs []*filter.Program, add bool) *subscriptions {
	if add && req.all && prgs == nil {
		return nil // everything, as before any subscription
	}
	if !add && req.all {
		return &subscriptions{events: g.catalog.emptySet()}
	}
	next := &subscriptions{}
	switch {
	case cur == nil && add:
		next.events = g.catalog.emptySet()
	case cur == nil:
		next.events = g.catalog.fullSet()
	default:
		next.events = cur.events.clone()
		if cur.filters != nil {
			next.filters = slices.Clone(cur.filters)
		}
	}
	bits := g.requestBits(req)
	if prgs != nil && next.filters == nil {
		next.filters = make([]*filter.Program, len(g.catalog.names))
	}
	for _, b := range bits {
		next.events.set(b, add)
		if next.filters != nil {
			var p *filter.Program // unsubscribed, or subscribed without a filter
			if add && prgs != nil {
				p = prgs[b]
			}
			next.filters[b] = p
		}
	}
	if next.filters != nil && !slices.ContainsFunc(next.filters, func(p *filter.Program) bool { return p != nil }) {
		next.filters = nil
	}
	return next
}

// compileFilter compiles the request's filter for the payload type of each
// of its events (once per type), and returns the programs by catalog index.
func (g *Gateway) compileFilter(event string, req *subscriptionRequest) ([]*filter.Program, error) {
	bits := slices.Sorted(slices.Values(g.requestBits(req)))
	prgs := make([]*filter.Program, len(g.catalog.names))
	for _, b := range bits {
		if prgs[b] != nil {
			continue
		}
		p, err := g.filters.Compile(req.filter, g.catalog.names[b])
		if err != nil {
			var fe *filter.Error
			if !errors.As(err, &fe) {
				return nil, &requestError{CodeInvalidFilter, event + ": invalid filter: " + err.Error()}
			}
			if fe.PayloadType == "" {
				return nil, &requestError{CodeInvalidFilter, event + ": invalid filter: " + fe.Reason}
			}
			return nil, &requestError{CodeInvalidFilter, fmt.Sprintf("%s: invalid filter for %s (%s): %s",
				event, g.describe(bits, fe.PayloadType), fe.PayloadType, fe.Reason)}
		}
		// The program serves every event of the request with its payload type.
		for _, o := range bits {
			if prgs[o] == nil && g.catalog.payloadType[o] == p.PayloadType() {
				prgs[o] = p
			}
		}
	}
	return prgs, nil
}

// requestBits returns the catalog bits a request covers: every event for
// "*".
func (g *Gateway) requestBits(req *subscriptionRequest) []int {
	if !req.all {
		return req.bits
	}
	bits := make([]int, len(g.catalog.names))
	for i := range bits {
		bits[i] = i
	}
	return bits
}

// describe names the events among bits with the given payload type, a
// whole domain as "<domain>:*".
func (g *Gateway) describe(bits []int, payloadType string) string {
	var names []events.Name
	for _, b := range bits {
		if g.catalog.payloadType[b] == payloadType {
			names = append(names, g.catalog.names[b])
		}
	}
	var parts []string
	for i := 0; i < len(names); {
		domain := names[i].Domain()
		j := i
		for j < len(names) && names[j].Domain() == domain {
			j++
		}
		if j-i == g.catalog.domainSize[domain] && j-i > 1 {
			parts = append(parts, domain+":*")
		} else {
			for _, n := range names[i:j] {
				parts = append(parts, string(n))
			}
		}
		i = j
	}
	return strings.Join(parts, ", ")
}

// parseSubscription reads {events: [...]} (and, for a subscribe, filter)
// and resolves the patterns to catalog bits. Any other field is refused:
// a client that believes it asked for something must not be ignored.
func (g *Gateway) parseSubscription(event string, args socketio.Args, add bool) (*subscriptionRequest, error) {
	usage := event + " expects {events: [...]} with event names, \"<domain>:*\" wildcards or \"*\""
	if add {
		usage = event + " expects {events: [...]} or {events: [...], filter: \"<CEL expression>\"} with event names, \"<domain>:*\" wildcards or \"*\""
	}
	var req map[string]json.RawMessage
	if raw := args.Raw(0); raw == nil || json.Unmarshal(raw, &req) != nil || req == nil {
		return nil, &requestError{CodeInvalidRequest, usage}
	}
	for _, k := range slices.Sorted(maps.Keys(req)) {
		switch {
		case k == "events", k == "filter" && add:
		case k == "filter":
			return nil, &requestError{CodeUnknownField,
				event + ": unknown field \"filter\": unsubscribe takes only events, and removes them with their filters"}
		default:
			return nil, &requestError{CodeUnknownField, fmt.Sprintf("%s: unknown field %q: %s", event, k, usage)}
		}
	}
	rawEvents, ok := req["events"]
	if !ok || string(rawEvents) == "null" {
		return nil, &requestError{CodeInvalidRequest, usage + ": events is missing"}
	}
	var list []json.RawMessage
	if json.Unmarshal(rawEvents, &list) != nil {
		return nil, &requestError{CodeInvalidRequest, usage + ": events is not an array"}
	}
	switch {
	case len(list) == 0:
		return nil, &requestError{CodeInvalidRequest, usage + ": events is empty"}
	case len(list) > g.maxPatterns:
		return nil, &requestError{CodeInvalidRequest,
			fmt.Sprintf("%s: events has %d entries, at most %d are allowed", event, len(list), g.maxPatterns)}
	}
	r := &subscriptionRequest{patterns: make([]string, 0, len(list))}
	named := make([]string, 0, len(list))
	for i, raw := range list {
		var p string
		if json.Unmarshal(raw, &p) != nil {
			return nil, &requestError{CodeInvalidRequest, fmt.Sprintf("%s: events[%d] is not a string", event, i)}
		}
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, &requestError{CodeInvalidRequest, fmt.Sprintf("%s: events[%d] is empty", event, i)}
		}
		r.patterns = append(r.patterns, p)
		if p == AllEvents {
			r.all = true
		} else {
			named = append(named, p)
		}
	}
	names, err := events.ExpandPatterns(named)
	if err != nil {
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			return nil, &requestError{ve.Code, event + ": " + ve.Message}
		}
		return nil, &requestError{CodeUnknownEvent, event + ": " + err.Error()}
	}
	r.bits = make([]int, 0, len(names))
	for _, n := range names {
		r.bits = append(r.bits, g.catalog.bit[string(n)])
	}
	if raw, ok := req["filter"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &r.filter) != nil {
			return nil, &requestError{CodeInvalidFilter, event + ": invalid filter: filter is not a string"}
		}
		if strings.TrimSpace(r.filter) == "" {
			return nil, &requestError{CodeInvalidFilter, event + ": invalid filter: filter is empty (leave it out to receive the events unfiltered)"}
		}
	}
	return r, nil
}

// onUnsupported refuses every other client event without harm: an
// acknowledgement with an error when the client waits for one, nothing
// otherwise (in particular, a client cannot publish catalog events).
func (g *Gateway) onUnsupported(s *socketio.Socket, ev *socketio.Event) {
	if !ev.WantsAck() {
		return
	}
	allowed := EventSubscribe + ", " + EventUnsubscribe + ", " + EventHistory
	if g.presence != nil {
		allowed += ", " + EventPresence
	}
	_ = ev.Ack(errorAck{
		Error: fmt.Sprintf("unsupported event %q: clients may send only %s and %s",
			ev.Name, allowed, EventAuthRefresh),
		Code: CodeUnsupportedEvent,
	})
}
