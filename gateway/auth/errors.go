package auth

import "errors"

// Code classifies a verification failure. Its value is sent to clients (as
// connect_error data) so they can react: refresh the token on TOKEN_EXPIRED,
// retry later on AUTH_UNAVAILABLE, go back to login otherwise.
type Code string

// The failure codes. They are part of the wire contract with the web and
// mobile clients: do not rename them.
const (
	CodeNoToken         Code = "NO_TOKEN"
	CodeInvalidToken    Code = "INVALID_TOKEN"
	CodeTokenExpired    Code = "TOKEN_EXPIRED"
	CodeNoUser          Code = "NO_USER"
	CodeNoOrganization  Code = "NO_ORGANIZATION"
	CodeAuthUnavailable Code = "AUTH_UNAVAILABLE"
)

// Message returns the client-facing message for c. The messages of the first
// five codes are the ones the NestJS gateway sent, which clients match on.
// AUTH_UNAVAILABLE deliberately does not start with "Unauthorized:" so that
// clients do not treat it as a reason to log the user out: the token may be
// perfectly good, we just cannot check it right now.
func (c Code) Message() string {
	switch c {
	case CodeNoToken:
		return "Unauthorized: No token provided"
	case CodeTokenExpired:
		return "Unauthorized: Token expired"
	case CodeNoUser:
		return "Unauthorized: Token has no user"
	case CodeNoOrganization:
		return "Unauthorized: Token has no organization"
	case CodeAuthUnavailable:
		return "Authentication temporarily unavailable, please retry"
	default:
		return "Unauthorized: Invalid token"
	}
}

// Error is a verification failure. Code and Message are safe to send to the
// client; Err carries the detailed reason (bad signature, wrong issuer, JWKS
// fetch error, ...) for server logs only and must never reach the wire.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// newError builds an *Error whose Message is the canonical one for code.
func newError(code Code, err error) *Error {
	return &Error{Code: code, Message: code.Message(), Err: err}
}

// Error returns a log-oriented description including the detailed reason.
// Send e.Message (or [MessageOf]) to clients, never e.Error().
func (e *Error) Error() string {
	if e.Err == nil {
		return "auth " + string(e.Code) + ": " + e.Message
	}
	return "auth " + string(e.Code) + ": " + e.Err.Error()
}

// Unwrap returns the detailed cause.
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of the first *Error in err's chain, "" if err is nil
// or carries no *Error (every error returned by Verify carries one).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// MessageOf returns the client-safe message for err: the Message of its *Error,
// or the generic invalid-token message for any other non-nil error so that an
// unexpected error can never leak details to a client. It returns "" for nil.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return CodeInvalidToken.Message()
}
