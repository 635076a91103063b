package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/logbudget"
)

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	h.servePublish(w, r, false)
}

func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request) {
	h.servePublish(w, r, true)
}

// servePublish runs a publish request: authentication before the body is
// read, then idempotency, validation of every event, publication.
func (h *Handler) servePublish(w http.ResponseWriter, r *http.Request, batch bool) {
	key, aerr := h.authenticate(r)
	if aerr != nil {
		if aerr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime"`)
		}
		// Anyone can be refused: within a budget, so that requests without
		// a key cannot write the log as fast as they are sent.
		h.refusalLog.Log(h.log, slog.LevelWarn, "httpapi: publish refused", "status", aerr.status, "code", aerr.body.Code,
			"address", r.RemoteAddr, "path", logbudget.Clip(r.URL.Path))
		writeError(w, aerr)
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	if idemKey != "" && !validIdempotencyKey(idemKey) {
		writeError(w, badRequest(CodeInvalidIdempotencyKey,
			fmt.Sprintf("Idempotency-Key must be 1 to %d visible ASCII characters", MaxIdempotencyKeyLength), "Idempotency-Key"))
		return
	}
	body, aerr := h.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}

	if idemKey != "" {
		scope := key.id + " " + r.URL.Path + " " + idemKey
		owned, replay, err := h.idem.begin(r.Context(), scope, body)
		switch {
		case errors.Is(err, errKeyReused):
			writeError(w, newError(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused,
				"this Idempotency-Key was already used with a different request body", "Idempotency-Key"))
			return
		case err != nil:
			writeError(w, newError(http.StatusServiceUnavailable, CodeUnavailable, "request abandoned: "+err.Error(), ""))
			return
		case replay != nil:
			w.Header().Set("Idempotent-Replayed", "true")
			writeResponse(w, *replay)
			return
		}
		// Finish the entry even if publish panics (net/http recovers the
		// panic): waiting retries must not hang on it.
		resp := newError(http.StatusInternalServerError, CodePublishFailed, "internal error", "").response()
		defer func() { h.idem.finish(owned, resp) }()
		resp = h.publish(r.Context(), body, batch, key, onceScope(&key.digest, r.URL.Path, idemKey, &owned.fingerprint))
		writeResponse(w, resp)
		return
	}
	writeResponse(w, h.publish(r.Context(), body, batch, key, ""))
}

// publish validates the request's events and hands them to the Emitter. No
// event is published unless every event of the request is valid and the
// key's budget has room for all of them. With a scope (onceScope: the
// request has an Idempotency-Key) and an Emitter that can, each event is
// published at most once per key (events.OnceEmitter), so that a retry
// after 503 publish_outcome_unknown, on any node, does not publish twice
// what the first attempt did publish, and answers its ids and offsets.
func (h *Handler) publish(ctx context.Context, body []byte, batch bool, key *apiKey, scope string) response {
	keyID := key.id
	reqs, aerr := parseBody(body, batch, h.maxBatch)
	if aerr != nil {
		h.log.Debug("httpapi: invalid request", "code", aerr.body.Code, "field", aerr.body.Field, "message", aerr.body.Message, "apiKey", keyID)
		return aerr.response()
	}

	// Validation, target resolution, timestamps and ids are exactly those of
	// EventsService.Emit (events.NewEvent is its first half); nothing is
	// published until every event of the request is known to be valid.
	now := time.Now()
	evs := make([]events.Event, 0, len(reqs))
	for i, req := range reqs {
		var target events.Target
		if req.Target != nil {
			target = *req.Target
		}
		ev, err := events.NewEvent(events.Name(req.Event), req.Payload, target, now)
		if err != nil {
			aerr := validationError(err, batch, i)
			h.log.Debug("httpapi: invalid event", "code", aerr.body.Code, "field", aerr.body.Field, "message", aerr.body.Message, "apiKey", keyID)
			return aerr.response()
		}
		evs = append(evs, ev)
	}

	// Only valid requests spend the budget: a caller fixing its payloads
	// is not also throttled for its mistakes.
	if aerr := overBudget(key, len(evs), time.Now()); aerr != nil {
		h.limited.Add(int64(len(evs)))
		// Debug only: a runaway publisher must not flood the log too; the
		// metric counts the refused events.
		h.log.Debug("httpapi: publish rate limited", "events", len(evs), "retryAfter", aerr.retryAfter, "apiKey", keyID)
		return aerr.response()
	}

	// Publishing is not abandoned when the caller goes away half-way
	// through a batch; it is bounded by its own timeout instead.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	ids := make([]string, 0, len(evs))
	offsets := make([]string, 0, len(evs))
	var clusterErr error
	oe, withOffsets := h.emitter.(events.OffsetEmitter)
	once, withOnce := h.emitter.(events.OnceEmitter)
	for i, ev := range evs {
		var (
			offset string
			err    error
		)
		switch {
		case withOnce && scope != "":
			ev.ID, offset, err = once.PublishOnce(pctx, ev, onceKey(scope, i), h.onceKeep)
		case withOffsets:
			offset, err = oe.PublishOffset(pctx, ev)
		default:
			err = h.emitter.Publish(pctx, ev)
		}
		offsets = append(offsets, offset)
		if err != nil && errors.Is(err, events.ErrOutcomeUnknown) {
			// Redis may hold it or not; the rest of the batch would wait
			// as long. ids lists the events published before it.
			h.log.Warn("httpapi: publish outcome unknown", "event", string(ev.Name), "id", ev.ID, "error", err, "published", len(ids), "apiKey", keyID)
			e := newError(http.StatusServiceUnavailable, CodeOutcomeUnknown,
				"event "+ev.ID+" may or may not have been published (Redis did not answer in time): it reaches every node's clients or none; the events after it in the batch were not published", "")
			e.body.IDs = ids
			return e.response()
		}
		if err != nil && errors.Is(err, events.ErrClusterUnavailable) {
			// Delivered to this node's clients only. Local delivery goes on
			// for the rest of the batch; the answer says what happened.
			clusterErr = err
			ids = append(ids, ev.ID)
			continue
		}
		if err != nil {
			h.log.Error("httpapi: publish failed", "event", string(ev.Name), "id", ev.ID, "error", err, "published", len(ids), "apiKey", keyID)
			e := newError(http.StatusInternalServerError, CodePublishFailed, "publishing "+string(ev.Name)+" failed: "+err.Error(), "")
			e.body.IDs = ids
			return e.response()
		}
		ids = append(ids, ev.ID)
	}
	if clusterErr != nil {
		h.log.Warn("httpapi: published to this node only", "events", len(ids), "error", clusterErr, "apiKey", keyID)
		e := newError(http.StatusServiceUnavailable, CodeClusterUnavailable,
			"published to this node's clients only: the other nodes cannot be reached ("+clusterErr.Error()+"); retrying may repeat the event for this node's clients", "")
		e.body.IDs = ids
		return e.response()
	}
	h.log.Debug("httpapi: published", "events", len(ids), "apiKey", keyID)
	if !slices.ContainsFunc(offsets, func(o string) bool { return o != "" }) {
		offsets = nil // no history kept: the answer stays as it was
	}
	if batch {
		return jsonResponse(http.StatusAccepted, BatchResponse{IDs: ids, Offsets: offsets})
	}
	resp := PublishResponse{ID: ids[0]}
	if offsets != nil {
		resp.Offset = offsets[0]
	}
	return jsonResponse(http.StatusAccepted, resp)
}

// overBudget takes n events from key's budget, or says when to retry if it
// has not that many; then it takes none.
func overBudget(key *apiKey, n int, now time.Time) *apiError {
	if key.budget == nil {
		return nil
	}
	res := key.budget.ReserveN(now, n) // n <= MaxBatch <= burst: always OK
	wait := res.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	res.CancelAt(now)
	secs := int(math.Ceil(wait.Seconds()))
	e := newError(http.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf(
		"this API key is over its publish rate of %g events/s (%d at once): nothing was published; retry in %d s",
		float64(key.budget.Limit()), key.budget.Burst(), secs), "")
	e.retryAfter = secs
	return e
}

// validationError turns a validation error (events.NewEvent) into a 400 whose field is a
// path in the request body.
func validationError(err error, batch bool, i int) *apiError {
	prefix, msgPrefix := "", ""
	if batch {
		prefix, msgPrefix = "["+strconv.Itoa(i)+"].", "event "+strconv.Itoa(i)+": "
	}
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return badRequest(CodeInvalidRequest, msgPrefix+err.Error(), "")
	}
	var field string
	switch {
	case ve.Code == events.CodeUnknownEvent:
		field = "event"
	case ve.Code == events.CodeInvalidTarget:
		field = ve.Field // already "target" or "target.organizationId"
	case ve.Field == "":
		field = "payload"
	default:
		field = "payload." + ve.Field
	}
	return badRequest(ve.Code, msgPrefix+ve.Message, prefix+field)
}

// parseBody decodes one event, or a batch (a JSON array of events).
func parseBody(body []byte, batch bool, maxBatch int) ([]PublishRequest, *apiError) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, badRequest(CodeInvalidJSON, "request body is empty", "")
	case !json.Valid(trimmed):
		return nil, badRequest(CodeInvalidJSON, "request body is not valid JSON", "")
	}
	if !batch {
		req, aerr := parseEvent(trimmed, "", "")
		if aerr != nil {
			return nil, aerr
		}
		return []PublishRequest{req}, nil
	}
	if trimmed[0] != '[' {
		return nil, badRequest(CodeInvalidRequest, "a batch must be a JSON array of events", "")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, badRequest(CodeInvalidRequest, "a batch must be a JSON array of events", "")
	}
	switch {
	case len(items) == 0:
		return nil, badRequest(CodeEmptyBatch, "the batch has no events", "")
	case len(items) > maxBatch:
		return nil, badRequest(CodeTooManyEvents, fmt.Sprintf("the batch has %d events, at most %d are allowed", len(items), maxBatch), "")
	}
	reqs := make([]PublishRequest, len(items))
	for i, item := range items {
		req, aerr := parseEvent(item, "["+strconv.Itoa(i)+"].", "event "+strconv.Itoa(i)+": ")
		if aerr != nil {
			return nil, aerr
		}
		reqs[i] = req
	}
	return reqs, nil
}

// parseEvent decodes {"event", "payload", "target"?} strictly: an unknown
// member is refused, since a misspelt "target" or "payload" must not be
// silently ignored. prefix is prepended to field paths, msgPrefix to
// messages.
func parseEvent(raw json.RawMessage, prefix, msgPrefix string) (PublishRequest, *apiError) {
	fail := func(code, msg, field string) (PublishRequest, *apiError) {
		path := prefix + field
		if field == "" {
			path = strings.TrimSuffix(prefix, ".") // the whole event: "[2]", or "" for a single event
		}
		return PublishRequest{}, badRequest(code, msgPrefix+msg, path)
	}
	if raw[0] != '{' {
		return fail(CodeInvalidRequest, `an event must be a JSON object {"event", "payload", "target"?}, got `+events.JSONType(raw), "")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail(CodeInvalidRequest, "an event must be a JSON object: "+err.Error(), "")
	}
	for k := range m {
		if k != "event" && k != "payload" && k != "target" {
			return fail(CodeInvalidRequest, fmt.Sprintf(`unknown field %q: an event has "event", "payload" and "target"`, k), k)
		}
	}
	var req PublishRequest
	switch v, ok := m["event"]; {
	case !ok || isNull(v):
		return fail(events.CodeMissingField, `required field "event" is missing`, "event")
	case v[0] != '"':
		return fail(events.CodeInvalidType, `field "event" must be a string, got `+events.JSONType(v), "event")
	default:
		_ = json.Unmarshal(v, &req.Event)
		if req.Event == "" {
			return fail(events.CodeMissingField, `required field "event" must not be empty`, "event")
		}
	}
	switch v, ok := m["payload"]; {
	case !ok || isNull(v):
		return fail(events.CodeMissingField, `required field "payload" is missing`, "payload")
	case v[0] != '{':
		return fail(events.CodeInvalidType, `field "payload" must be a JSON object, got `+events.JSONType(v), "payload")
	default:
		req.Payload = v
	}
	if v, ok := m["target"]; ok && !isNull(v) {
		t, aerr := parseTarget(v)
		if aerr != nil {
			return fail(aerr.body.Code, aerr.body.Message, aerr.body.Field)
		}
		req.Target = &t
	}
	return req, nil
}

// parseTarget decodes {"organizationId"?, "userId"?, "all"?}.
func parseTarget(raw json.RawMessage) (events.Target, *apiError) {
	if raw[0] != '{' {
		return events.Target{}, badRequest(events.CodeInvalidType, `field "target" must be a JSON object, got `+events.JSONType(raw), "target")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return events.Target{}, badRequest(CodeInvalidRequest, `field "target": `+err.Error(), "target")
	}
	var t events.Target
	for k, v := range m {
		field := "target." + k
		switch k {
		case "organizationId", "userId":
			if isNull(v) {
				continue
			}
			var s string
			if v[0] != '"' || json.Unmarshal(v, &s) != nil {
				return events.Target{}, badRequest(events.CodeInvalidType, fmt.Sprintf("field %q must be a string, got %s", field, events.JSONType(v)), field)
			}
			if s == "" {
				return events.Target{}, badRequest(events.CodeInvalidTarget, fmt.Sprintf("field %q must not be empty (leave it out instead)", field), field)
			}
			if k == "organizationId" {
				t.OrganizationID = s
			} else {
				t.UserID = s
			}
		case "all":
			if isNull(v) {
				continue
			}
			if err := json.Unmarshal(v, &t.All); err != nil {
				return events.Target{}, badRequest(events.CodeInvalidType, fmt.Sprintf("field %q must be a boolean, got %s", field, events.JSONType(v)), field)
			}
		default:
			return events.Target{}, badRequest(CodeInvalidRequest,
				fmt.Sprintf(`unknown field %q: a target has "organizationId", "userId" and "all"`, field), field)
		}
	}
	if t.IsZero() && len(m) > 0 && !onlyNulls(m) {
		// {"all": false} alone: say so rather than silently use the default.
		return events.Target{}, badRequest(events.CodeInvalidTarget, `field "target" names no recipient; leave it out for the default target`, "target")
	}
	return t, nil
}

func onlyNulls(m map[string]json.RawMessage) bool {
	for _, v := range m {
		if !isNull(v) {
			return false
		}
	}
	return true
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }
