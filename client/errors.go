package client

import (
	"errors"
	"fmt"
)

// Errors of the client's methods (compare with errors.Is).
var (
	// ErrClosed: the client was closed, or gave up (Err says why).
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected: the request needs a connection and there is none.
	ErrNotConnected = errors.New("client: not connected")
	// ErrServerDisconnect: the server ended the session (a namespace
	// disconnect, for a reason other than an expired token). Like
	// socket.io-client, the client does not reconnect after it.
	ErrServerDisconnect = errors.New("client: disconnected by the server")
	// errConnLost ends a request whose connection was lost before its
	// answer; requests that can be repeated are sent again on the next
	// connection.
	errConnLost = errors.New("client: connection lost before the answer")
)

// Connection refusal codes of the gateway (ConnectError.Code).
const (
	CodeNoToken          = "NO_TOKEN"
	CodeInvalidToken     = "INVALID_TOKEN"
	CodeTokenExpired     = "TOKEN_EXPIRED"
	CodeNoOrganization   = "NO_ORGANIZATION"
	CodeNoUser           = "NO_USER"
	CodeAuthUnavailable  = "AUTH_UNAVAILABLE"
	CodeInvalidNamespace = "INVALID_NAMESPACE" // Socket.IO's "Invalid namespace", which has no code
)

// ConnectError is the server's refusal of a connection (socket.io-client's
// connect_error): Message as the server wrote it, Code from its data (see
// docs/gateway.md for the gateway's codes).
type ConnectError struct {
	Message string
	Code    string
}

func (e *ConnectError) Error() string {
	if e.Code == "" {
		return "client: connection refused: " + e.Message
	}
	return fmt.Sprintf("client: connection refused: %s (%s)", e.Message, e.Code)
}

// retryable reports whether another attempt may succeed: the key server is
// unavailable, or the token expired and the source may have a newer one.
func (e *ConnectError) retryable(haveSource bool) bool {
	return e.Code == CodeAuthUnavailable || (e.Code == CodeTokenExpired && haveSource)
}

// RequestError is a request the server answered with a refusal:
// {success: false, code, error} for subscribe and unsubscribe, {ok: false,
// code, error} for auth:refresh.
type RequestError struct {
	Event   string // subscribe, unsubscribe, auth:refresh
	Code    string // e.g. unknown_event, invalid_request, invalid_filter, IDENTITY_MISMATCH, rate_limited
	Message string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("client: %s refused: %s (%s)", e.Event, e.Message, e.Code)
}
