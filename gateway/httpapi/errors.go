package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of the HTTP API, beside the catalog's validation codes
// (events.CodeUnknownEvent, events.CodeMissingField, ...). Clients may
// switch on them.
const (
	CodeInvalidJSON           = "invalid_json"            // the body is empty or not JSON
	CodeInvalidRequest        = "invalid_request"         // JSON of the wrong shape (unknown field, wrong type, ...)
	CodeEmptyBatch            = "empty_batch"             // a batch without events
	CodeTooManyEvents         = "too_many_events"         // a batch over the limit
	CodeBodyTooLarge          = "body_too_large"          // 413
	CodeUnauthorized          = "unauthorized"            // 401: no API key
	CodeForbidden             = "forbidden"               // 403: wrong API key, or none configured
	CodeInvalidIdempotencyKey = "invalid_idempotency_key" // malformed Idempotency-Key
	CodeIdempotencyKeyReused  = "idempotency_key_reused"  // 422: same key, different body
	CodeNotFound              = "not_found"               // 404
	CodeMethodNotAllowed      = "method_not_allowed"      // 405
	CodeRateLimited           = "rate_limited"            // 429: the API key is over its publish rate
	CodePublishFailed         = "publish_failed"          // 500: the Emitter failed
	CodeUnavailable           = "unavailable"             // 503: shutting down, or the request was abandoned
	CodeClusterUnavailable    = "cluster_unavailable"     // 503: delivered on this node only (Redis down)
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// IDs lists, for a batch that failed while publishing, the ids of the
	// events published before the failure.
	IDs []string `json:"ids,omitempty"`
}

// apiError is an error answer about to be written.
type apiError struct {
	status     int
	body       ErrorBody
	retryAfter int // seconds, for 429
}

func (e *apiError) Error() string { return e.body.Message }

func newError(status int, code, message, field string) *apiError {
	return &apiError{status: status, body: ErrorBody{Code: code, Message: message, Field: field}}
}

func badRequest(code, message, field string) *apiError {
	return newError(http.StatusBadRequest, code, message, field)
}

// response is an answer: its status and JSON body, kept as bytes so that an
// idempotent replay is byte-identical.
type response struct {
	status int
	body   []byte
	// retryAfter, in whole seconds, is sent as Retry-After when positive.
	retryAfter int
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled: cannot happen
		return response{status: http.StatusInternalServerError, body: []byte(`{"code":"internal","message":"encoding the answer failed"}`)}
	}
	return response{status: status, body: append(b, '\n')}
}

func (e *apiError) response() response {
	r := jsonResponse(e.status, e.body)
	r.retryAfter = e.retryAfter
	return r
}

func writeResponse(w http.ResponseWriter, r response) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	h.Set("Cache-Control", "no-store")
	if r.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(r.retryAfter))
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func writeError(w http.ResponseWriter, e *apiError) { writeResponse(w, e.response()) }
