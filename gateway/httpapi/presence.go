package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/internal/logbudget"
)

// presenceTimeout bounds reading an organization's presence.
const presenceTimeout = 5 * time.Second

// servePresence answers GET /api/v1/organizations/{org}/presence: who is
// online in the organization, across the cluster. Like publishing, it
// takes an API key: backend services only.
func (h *Handler) servePresence(w http.ResponseWriter, r *http.Request) {
	if _, aerr := h.authenticate(r); aerr != nil {
		if aerr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime"`)
		}
		h.refusalLog.Log(h.log, slog.LevelWarn, "httpapi: presence refused", "status", aerr.status, "code", aerr.body.Code,
			"address", r.RemoteAddr, "path", logbudget.Clip(r.URL.Path))
		writeError(w, aerr)
		return
	}
	org := r.PathValue("org")
	// The ids a token can carry: valid text, no U+FFFD (which an unpaired
	// surrogate or invalid UTF-8 becomes), no control characters.
	if org == "" || len(org) > maxOrganizationBytes || !utf8.ValidString(org) ||
		strings.ContainsRune(org, utf8.RuneError) || strings.ContainsFunc(org, isControl) {
		writeError(w, badRequest(CodeInvalidOrganization,
			"the organization id in the path must be 1 to 256 bytes of valid text", "organizationId"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), presenceTimeout)
	p, err := h.presence(ctx, org)
	cancel()
	if err != nil {
		h.log.Warn("httpapi: presence unavailable", "organizationId", logbudget.Clip(org), "error", err)
		writeError(w, newError(http.StatusServiceUnavailable, CodePresenceUnavailable,
			"presence cannot be read now, try again later", ""))
		return
	}
	if p.Users == nil {
		p.Users = []apiclient.PresenceUser{}
	}
	writeResponse(w, jsonResponse(http.StatusOK, p))
}

// maxOrganizationBytes bounds an organization id in a path.
const maxOrganizationBytes = 256

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
