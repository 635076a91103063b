package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCodeMessages(t *testing.T) {
	// These strings are the wire contract with the clients.
	want := map[Code]string{
		CodeNoToken:        "Unauthorized: No token provided",
		CodeInvalidToken:   "Unauthorized: Invalid token",
		CodeTokenExpired:   "Unauthorized: Token expired",
		CodeNoUser:         "Unauthorized: Token has no user",
		CodeNoOrganization: "Unauthorized: Token has no organization",
	}
	for code, msg := range want {
		if got := code.Message(); got != msg {
			t.Errorf("%s.Message() = %q, want %q", code, got, msg)
		}
		if got := newError(code, nil).Message; got != msg {
			t.Errorf("newError(%s).Message = %q, want %q", code, got, msg)
		}
	}
	if m := CodeAuthUnavailable.Message(); !strings.Contains(m, "temporarily unavailable") || strings.HasPrefix(m, "Unauthorized") {
		t.Errorf("AUTH_UNAVAILABLE message = %q", m)
	}
}

func TestErrorWrapping(t *testing.T) {
	cause := errors.New("signature mismatch")
	var err error = newError(CodeInvalidToken, cause)
	wrapped := fmt.Errorf("handshake: %w", err)

	if !errors.Is(wrapped, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got := CodeOf(wrapped); got != CodeInvalidToken {
		t.Errorf("CodeOf = %q", got)
	}
	if got := MessageOf(wrapped); got != "Unauthorized: Invalid token" {
		t.Errorf("MessageOf = %q", got)
	}
	if s := err.Error(); !strings.Contains(s, "INVALID_TOKEN") || !strings.Contains(s, "signature mismatch") {
		t.Errorf("Error() = %q, want code and detail", s)
	}
	if s := newError(CodeNoToken, nil).Error(); !strings.Contains(s, "No token provided") {
		t.Errorf("Error() without cause = %q", s)
	}
	if CodeOf(nil) != "" || CodeOf(errors.New("x")) != "" {
		t.Error("CodeOf of nil / foreign error should be empty")
	}
	if MessageOf(nil) != "" {
		t.Error("MessageOf(nil) should be empty")
	}
	if got := MessageOf(errors.New("db password is hunter2")); got != "Unauthorized: Invalid token" {
		t.Errorf("MessageOf(foreign) = %q, must not leak details", got)
	}
}
