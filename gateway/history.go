package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/protocol/sio"
	"github.com/operate/realtime/socketio"
)

// Codes of refused history requests, beside invalid_request, unknown_field
// and unknown_event.
const (
	// CodeHistoryGap: the history no longer holds what followed since
	// (trimmed, expired, an offset of another server process or log).
	CodeHistoryGap = "history_gap"
	// CodeHistoryUnavailable: no history is kept (recovery and history
	// off, or a Redis mode without a log), or it cannot be read now.
	CodeHistoryUnavailable = "history_unavailable"
)

// HistoryOptions bound the per-organization and per-user histories
// (Config.History).
type HistoryOptions struct {
	// Size bounds each organization's and each user's history. Zero means
	// socketio.DefaultHistorySize (1,000).
	Size int
	// TTL is how long their events are kept. Zero means
	// socketio.DefaultHistoryTTL (7 days).
	TTL time.Duration
}

// errInvalidHistoryQuery marks a backend's history query that cannot be
// answered as asked (no organization, an unknown event).
var errInvalidHistoryQuery = errors.New("gateway: history: invalid query")

// historyTimeout bounds one read of the history (Redis, in streams mode).
const historyTimeout = 5 * time.Second

// tenantRoom selects the rooms with a history of their own: an
// organization's and a user's.
func tenantRoom(room string) bool {
	return strings.HasPrefix(room, "org:") || strings.HasPrefix(room, "user:")
}

// historyAck answers a history request.
type historyAck struct {
	Success bool `json:"success"`
	events.HistoryPage
}

// historyRequest is a parsed history request.
type historyRequest struct {
	since string
	limit int
	want  *eventSet // nil: every event
}

// onHistory answers EventHistory: the events of the socket's organization
// and user after since, as the socket would have received them (its
// subscriptions and their filters applied, and the request's events).
func (g *Gateway) onHistory(s *socketio.Socket, ev *socketio.Event) {
	sess := sessionOf(s)
	if sess == nil {
		return
	}
	req, err := g.parseHistory(ev.Args)
	if err != nil {
		g.stats.historyRequest(historyFromClient, err)
		var re *requestError
		errors.As(err, &re)
		_ = ev.Ack(errorAck{Error: re.message, Code: re.code})
		return
	}
	ctx, cancel := context.WithTimeout(s.Context(), historyTimeout)
	defer cancel()
	page, err := g.readHistory(ctx, req, sess.orgID, []string{events.OrgRoom(sess.orgID), events.UserRoom(sess.userID)}, sess.subs.Load())
	g.stats.historyRequest(historyFromClient, err)
	if err != nil {
		code, msg := historyError(err, req.since)
		_ = ev.Ack(errorAck{Error: msg, Code: code})
		return
	}
	_ = ev.Ack(historyAck{Success: true, HistoryPage: page})
}

// History implements events.HistoryReader for backends (the HTTP API):
// the events addressed to an organization (its room, or every socket), or
// with UserID to one user of it (the user's room), of that organization
// only.
func (g *Gateway) History(ctx context.Context, q events.HistoryQuery) (_ events.HistoryPage, err error) {
	defer func() { g.stats.historyRequest(historyFromAPI, err) }()
	if q.OrganizationID == "" {
		return events.HistoryPage{}, fmt.Errorf("%w: an organization is required", errInvalidHistoryQuery)
	}
	req := &historyRequest{since: q.Since, limit: q.Limit}
	if req.limit <= 0 {
		req.limit = events.DefaultHistoryLimit
	}
	req.limit = min(req.limit, events.MaxHistoryLimit)
	if len(q.Events) > 0 {
		req.want = g.catalog.emptySet()
		for _, n := range q.Events {
			bit, ok := g.catalog.bit[string(n)]
			if !ok {
				return events.HistoryPage{}, fmt.Errorf("%w: %q is not a catalog event", errInvalidHistoryQuery, n)
			}
			req.want.set(bit, true)
		}
	}
	rooms := []string{events.OrgRoom(q.OrganizationID)}
	if q.UserID != "" {
		rooms = []string{events.UserRoom(q.UserID)}
	}
	return g.readHistory(ctx, req, q.OrganizationID, rooms, nil)
}

// readHistory reads the log for a reader in rooms of organization org,
// with subs (nil: every event) and the request's own selection. Only
// catalog events of org pass: the user room spans organizations, and any
// publisher on a shared Redis can write to any room.
func (g *Gateway) readHistory(ctx context.Context, req *historyRequest, org string, rooms []string, subs *subscriptions) (events.HistoryPage, error) {
	keep := func(p *socketio.Packet) bool {
		name := p.Event()
		bit, ok := g.catalog.bit[name]
		if !ok || (req.want != nil && !req.want.has(bit)) {
			return false
		}
		payload, porg, ok := payloadOrganization(p.Data)
		if !ok || porg != org {
			return false
		}
		if subs == nil {
			return true
		}
		if !subs.events.has(bit) {
			return false
		}
		if prg := subs.filterOf(bit); prg != nil {
			g.stats.filterEvaluations.Add(1)
			return prg.Match(g.filters.Decode(name, payload))
		}
		return true
	}
	page, err := g.nsp.History(ctx, socketio.HistoryQuery{Since: req.since, Rooms: rooms, Limit: req.limit, Keep: keep})
	switch {
	case errors.Is(err, socketio.ErrNoHistory):
		return events.HistoryPage{}, fmt.Errorf("gateway: history: %w", events.ErrNoHistory)
	case errors.Is(err, socketio.ErrHistoryGap):
		return events.HistoryPage{}, fmt.Errorf("gateway: history since %q: %w", req.since, events.ErrHistoryGap)
	case err != nil:
		return events.HistoryPage{}, fmt.Errorf("gateway: history: %w", err)
	}
	out := events.HistoryPage{Events: make([]events.HistoryEvent, 0, len(page.Packets)), Offset: page.Through, More: page.More}
	for _, p := range page.Packets {
		var args [3][]byte
		parts, ok := sio.SplitArray(args[:0], p.Data)
		if !ok || len(parts) < 2 {
			continue
		}
		out.Events = append(out.Events, events.HistoryEvent{Event: events.Name(p.Event()), Payload: json.RawMessage(parts[1]), Offset: p.Offset})
	}
	return out, nil
}

// historyError returns the code and message of a failed history read.
func historyError(err error, since string) (code, message string) {
	switch {
	case errors.Is(err, events.ErrHistoryGap):
		return CodeHistoryGap, fmt.Sprintf("history: the events after %q are no longer kept: reload the data shown, then go on from a fresh offset", since)
	case errors.Is(err, events.ErrNoHistory):
		return CodeHistoryUnavailable, "history: no event history is kept by this server (RECOVERY_WINDOW and HISTORY_SIZE are off, or the Redis mode keeps none)"
	}
	return CodeHistoryUnavailable, "history: the history cannot be read now, retry later"
}

// parseHistory reads {since?, limit?, events?}. Any other field is
// refused.
func (g *Gateway) parseHistory(args socketio.Args) (*historyRequest, error) {
	const usage = EventHistory + " expects {since?: \"<offset>\", limit?: 1 to 500, events?: [...]} with event names, \"<domain>:*\" wildcards or \"*\""
	req := &historyRequest{limit: events.DefaultHistoryLimit}
	raw := args.Raw(0)
	if raw == nil || string(raw) == "null" {
		return req, nil // everything kept, from the oldest
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, &requestError{CodeInvalidRequest, usage}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != "since" && k != "limit" && k != "events" {
			return nil, &requestError{CodeUnknownField, fmt.Sprintf("%s: unknown field %q: %s", EventHistory, k, usage)}
		}
	}
	if v, ok := m["since"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &req.since) != nil {
			return nil, &requestError{CodeInvalidRequest, usage + ": since is not a string"}
		}
		if len(req.since) > 256 {
			return nil, &requestError{CodeInvalidRequest, usage + ": since is too long to be an offset"}
		}
	}
	if v, ok := m["limit"]; ok && string(v) != "null" {
		var f float64
		if json.Unmarshal(v, &f) != nil || f != float64(int(f)) || f < 1 || f > events.MaxHistoryLimit {
			return nil, &requestError{CodeInvalidRequest, fmt.Sprintf("%s: limit must be an integer from 1 to %d", EventHistory, events.MaxHistoryLimit)}
		}
		req.limit = int(f)
	}
	if v, ok := m["events"]; ok && string(v) != "null" {
		wrapped, err := socketio.NewArgs(json.RawMessage(`[{"events":`+string(v)+`}]`), nil)
		if err != nil {
			return nil, &requestError{CodeInvalidRequest, usage + ": events is not valid"}
		}
		sub, err := g.parseSubscription(EventHistory, wrapped, false)
		if err != nil {
			return nil, err
		}
		if !sub.all {
			req.want = g.catalog.emptySet()
			for _, b := range sub.bits {
				req.want.set(b, true)
			}
		}
	}
	return req, nil
}
