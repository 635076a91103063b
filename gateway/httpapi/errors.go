package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

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
