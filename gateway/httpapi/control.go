package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/logbudget"
)

// Wire types of the control API (see apiclient).
type (
	DisconnectRequest  = apiclient.DisconnectRequest
	ControlResponse    = apiclient.ControlResponse
	RevocationRequest  = apiclient.RevocationRequest
	RevocationResponse = apiclient.RevocationResponse
)

// ControlSelector picks the sockets of a disconnect: one socket, a user's
// (within an organization when set), or an organization's.
type ControlSelector struct {
	SocketID, UserID, OrganizationID string
}

// Controller carries out the control API's operations across the cluster:
// the gateway, through package gateway/control. An error wrapping
// events.ErrClusterUnavailable means part of the cluster was not reached
// (the answer says what was done); a *ControlRequestError is the caller's
// mistake (400).
type Controller interface {
	Disconnect(ctx context.Context, sel ControlSelector, reason string) (ControlResponse, error)
	Revoke(ctx context.Context, req RevocationRequest) (RevocationResponse, error)
	SetOrganizationRoom(ctx context.Context, org, user string, join bool) (ControlResponse, error)
}

// ControlRequestError is a control request the Controller refused as
// invalid: answered 400 with its code.
type ControlRequestError struct {
	Code, Message, Field string
}

func (e *ControlRequestError) Error() string { return e.Message }

// maxIDLength bounds an id in a control path, in bytes.
const maxIDLength = 512

func (h *Handler) controlRoutes(m *http.ServeMux, allowed map[string]string) {
	routes := map[string]http.HandlerFunc{
		"/api/v1/organizations/{org}/disconnect":         h.serveDisconnectOrganization,
		"/api/v1/users/{user}/disconnect":                h.serveDisconnectUser,
		"/api/v1/sockets/{id}/disconnect":                h.serveDisconnectSocket,
		"/api/v1/organizations/{org}/users/{user}/leave": h.serveRoom(false),
		"/api/v1/organizations/{org}/users/{user}/join":  h.serveRoom(true),
		PathRevocations: h.serveRevoke,
	}
	for path, f := range routes {
		m.HandleFunc("POST "+path, f)
		allowed[path] = "POST"
	}
}

// PathRevocations is POST /api/v1/revocations.
const PathRevocations = apiclient.PathRevocations

// controlStart authenticates a control request and reads its JSON body
// into v (an empty body is {}); nil when an answer was written.
func (h *Handler) controlStart(w http.ResponseWriter, r *http.Request, v any) bool {
	if _, aerr := h.authenticate(r); aerr != nil {
		if aerr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime"`)
		}
		h.refusalLog.Log(h.log, slog.LevelWarn, "httpapi: control request refused", "status", aerr.status, "code", aerr.body.Code,
			"address", r.RemoteAddr, "path", logbudget.Clip(r.URL.Path))
		writeError(w, aerr)
		return false
	}
	if h.control == nil {
		writeError(w, newError(http.StatusNotFound, apiclient.CodeControlDisabled, "this server has no control API", ""))
		return false
	}
	body, aerr := h.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		code := CodeInvalidRequest
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
			code = CodeInvalidJSON
		}
		writeError(w, badRequest(code, "the request body: "+err.Error(), ""))
		return false
	}
	if dec.More() {
		writeError(w, badRequest(CodeInvalidJSON, "data after the JSON body", ""))
		return false
	}
	return true
}

// controlID checks an id of the path or body: not empty, at most
// maxIDLength bytes, valid text (an id a JSON decoder would change, such
// as U+FFFD, could name another tenant).
func controlID(v, field string) *apiError {
	switch {
	case v == "":
		return badRequest(apiclient.CodeInvalidSelector, field+" is empty", field)
	case len(v) > maxIDLength:
		return badRequest(apiclient.CodeInvalidSelector, fmt.Sprintf("%s is longer than %d bytes", field, maxIDLength), field)
	case !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError):
		return badRequest(apiclient.CodeInvalidSelector, field+" holds invalid UTF-8 or U+FFFD", field)
	}
	return nil
}

func (h *Handler) serveDisconnectOrganization(w http.ResponseWriter, r *http.Request) {
	var req DisconnectRequest
	if !h.controlStart(w, r, &req) {
		return
	}
	org := r.PathValue("org")
	if aerr := firstError(controlID(org, "organizationId"), notSet(req.OrganizationID, "organizationId")); aerr != nil {
		writeError(w, aerr)
		return
	}
	h.disconnect(w, r, ControlSelector{OrganizationID: org}, req.Reason)
}

func (h *Handler) serveDisconnectUser(w http.ResponseWriter, r *http.Request) {
	var req DisconnectRequest
	if !h.controlStart(w, r, &req) {
		return
	}
	user := r.PathValue("user")
	aerr := controlID(user, "userId")
	if aerr == nil && req.OrganizationID != "" {
		aerr = controlID(req.OrganizationID, "organizationId")
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	h.disconnect(w, r, ControlSelector{UserID: user, OrganizationID: req.OrganizationID}, req.Reason)
}

func (h *Handler) serveDisconnectSocket(w http.ResponseWriter, r *http.Request) {
	var req DisconnectRequest
	if !h.controlStart(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if aerr := firstError(controlID(id, "socketId"), notSet(req.OrganizationID, "organizationId")); aerr != nil {
		writeError(w, aerr)
		return
	}
	h.disconnect(w, r, ControlSelector{SocketID: id}, req.Reason)
}

func notSet(v, field string) *apiError {
	if v != "" {
		return badRequest(CodeInvalidRequest, field+" goes only with a user's disconnect", field)
	}
	return nil
}

func firstError(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request, sel ControlSelector, reason string) {
	ctx, cancel := h.controlContext(r)
	defer cancel()
	res, err := h.control.Disconnect(ctx, sel, reason)
	h.controlAnswer(w, "disconnect", http.StatusOK, res, res, err)
}

func (h *Handler) serveRoom(join bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct{}
		if !h.controlStart(w, r, &req) {
			return
		}
		org, user := r.PathValue("org"), r.PathValue("user")
		if aerr := firstError(controlID(org, "organizationId"), controlID(user, "userId")); aerr != nil {
			writeError(w, aerr)
			return
		}
		ctx, cancel := h.controlContext(r)
		defer cancel()
		res, err := h.control.SetOrganizationRoom(ctx, org, user, join)
		h.controlAnswer(w, "room", http.StatusOK, res, res, err)
	}
}

func (h *Handler) serveRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevocationRequest
	if !h.controlStart(w, r, &req) {
		return
	}
	var aerr *apiError
	switch {
	case req.TokenID != "" && len(req.TokenID) > maxIDLength:
		aerr = badRequest(apiclient.CodeInvalidRevocation, fmt.Sprintf("jti is longer than %d bytes", maxIDLength), "jti")
	case req.UserID != "":
		aerr = controlID(req.UserID, "userId")
		if aerr == nil && req.OrganizationID != "" {
			aerr = controlID(req.OrganizationID, "organizationId")
		}
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ctx, cancel := h.controlContext(r)
	defer cancel()
	res, err := h.control.Revoke(ctx, req)
	h.controlAnswer(w, "revoke", http.StatusCreated, res, res.ControlResponse, err)
}

// controlContext bounds a control operation; it goes on when the caller
// leaves (the nodes were told already), within the publish timeout.
func (h *Handler) controlContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), h.publishTimeout)
}

// controlAnswer writes a control operation's answer.
func (h *Handler) controlAnswer(w http.ResponseWriter, op string, status int, body any, res ControlResponse, err error) {
	var reqErr *ControlRequestError
	switch {
	case err == nil:
		h.controlStats.count(op, "ok")
		writeResponse(w, jsonResponse(status, body))
	case errors.As(err, &reqErr):
		h.controlStats.count(op, "invalid")
		writeError(w, badRequest(reqErr.Code, reqErr.Message, reqErr.Field))
	case errors.Is(err, events.ErrClusterUnavailable):
		h.controlStats.count(op, "partial")
		h.log.Warn("httpapi: control operation reached part of the cluster", "operation", op, "error", err,
			"sockets", res.Sockets, "nodes", res.Nodes)
		e := newError(http.StatusServiceUnavailable, CodeClusterUnavailable,
			"the operation reached only part of the cluster (result says what was done): "+err.Error(), "")
		e.body.Result = &res
		writeError(w, e)
	default:
		h.controlStats.count(op, "failed")
		h.log.Error("httpapi: control operation failed", "operation", op, "error", err)
		writeError(w, newError(http.StatusInternalServerError, apiclient.CodeControlFailed, op+" failed: "+err.Error(), ""))
	}
}

// ControlRequestKind is an operation of the control API ("disconnect",
// "revoke", "room") and the result of a request ("ok", "invalid",
// "partial": part of the cluster was not reached, "failed").
type ControlRequestKind struct{ Operation, Result string }

// controlStats counts control requests by operation and result.
type controlStats struct {
	mu sync.Mutex
	n  map[ControlRequestKind]int64
}

func (c *controlStats) count(op, result string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = make(map[ControlRequestKind]int64)
	}
	c.n[ControlRequestKind{op, result}]++
	c.mu.Unlock()
}

// ControlRequests returns the control requests answered so far that
// reached the Controller, by operation and result.
func (h *Handler) ControlRequests() map[ControlRequestKind]int64 {
	c := &h.controlStats
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[ControlRequestKind]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}
