package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/operate/realtime/gateway/auth"
)

// DevTokens configures POST /dev/token, the development-only endpoint that
// mints connection tokens for the demo page and the `realtime token`
// command. Never enable it with a production secret.
type DevTokens struct {
	// Secret signs the tokens (HS256); it must be the gateway's secret.
	Secret string
	// DefaultTTL is the lifetime of a token when the request gives none.
	// Zero means 1 h.
	DefaultTTL time.Duration
	// MaxTTL bounds the lifetime a request may ask for. Zero means 24 h.
	MaxTTL time.Duration
}

func (d *DevTokens) check() error {
	if d.Secret == "" {
		return errors.New("httpapi: DevTokens.Secret is required")
	}
	return nil
}

func (d *DevTokens) ttls() (def, max time.Duration) {
	def, max = d.DefaultTTL, d.MaxTTL
	if def <= 0 {
		def = time.Hour
	}
	if max <= 0 {
		max = 24 * time.Hour
	}
	return min(def, max), max
}

func (h *Handler) serveDevToken(w http.ResponseWriter, r *http.Request) {
	body, aerr := h.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var req DevTokenRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("unexpected data after the JSON object")
	}
	if err != nil {
		writeError(w, badRequest(CodeInvalidRequest, "the body must be {organizationId, userId, role?, email?, ttl?}: "+err.Error(), ""))
		return
	}
	switch {
	case req.OrganizationID == "":
		writeError(w, badRequest("missing_field", `required field "organizationId" is missing`, "organizationId"))
		return
	case req.UserID == "":
		writeError(w, badRequest("missing_field", `required field "userId" is missing`, "userId"))
		return
	}
	def, maxTTL := h.dev.ttls()
	ttl := def
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > maxTTL {
			writeError(w, badRequest("invalid_value", fmt.Sprintf(`field "ttl" must be a positive duration of at most %s, such as "15m"`, maxTTL), "ttl"))
			return
		}
		ttl = d
	}
	now := time.Now()
	tok, err := auth.Mint(h.dev.Secret, auth.MintClaims{
		UserID: req.UserID, OrganizationID: req.OrganizationID, Role: req.Role, Email: req.Email,
	}, ttl, now)
	if err != nil {
		writeError(w, newError(http.StatusInternalServerError, "internal", err.Error(), ""))
		return
	}
	writeResponse(w, jsonResponse(http.StatusOK, DevTokenResponse{
		Token:     tok,
		ExpiresAt: time.Unix(now.Add(ttl).Unix(), 0).UTC().Format("2006-01-02T15:04:05.000Z"),
	}))
}
