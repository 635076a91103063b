package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/logbudget"
)

// historyTimeout bounds one history read.
const historyTimeout = 10 * time.Second

// maxOffsetLength bounds the since parameter: offsets are short.
const maxOffsetLength = 256

// serveHistory answers GET PathOrganizationEvents (the events addressed to
// an organization: its room, or every socket) and PathUserEvents (those
// addressed to one user, within the organization named by the required
// ?organizationId=: the user room spans organizations, and tenancy is by
// organization). Both take ?since= (an offset; absent: the oldest kept),
// ?limit= (1 to events.MaxHistoryLimit, default events.DefaultHistoryLimit)
// and ?events= (comma-separated names or "<domain>:*" wildcards).
func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request) {
	if _, aerr := h.authenticate(r); aerr != nil {
		if aerr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime"`)
		}
		h.refusalLog.Log(h.log, slog.LevelWarn, "httpapi: history refused", "status", aerr.status, "code", aerr.body.Code,
			"address", r.RemoteAddr, "path", logbudget.Clip(r.URL.Path))
		writeError(w, aerr)
		return
	}
	q, aerr := parseHistoryQuery(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if h.history == nil {
		writeError(w, newError(http.StatusNotImplemented, CodeHistoryUnavailable, "this server keeps no event history", ""))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	page, err := h.history.History(ctx, q)
	switch {
	case errors.Is(err, events.ErrHistoryGap):
		writeError(w, newError(http.StatusGone, CodeHistoryGap,
			fmt.Sprintf("the events after %q are no longer kept: reload from the source of truth, then go on from a fresh offset", q.Since), "since"))
	case errors.Is(err, events.ErrNoHistory):
		writeError(w, newError(http.StatusNotImplemented, CodeHistoryUnavailable,
			"this server keeps no event history (RECOVERY_WINDOW and HISTORY_SIZE are off, or the Redis mode keeps none)", ""))
	case err != nil:
		h.log.Warn("httpapi: history read failed", "error", err)
		writeError(w, newError(http.StatusServiceUnavailable, CodeHistoryUnavailable, "the history cannot be read now; retry later", ""))
	default:
		if page.Events == nil {
			page.Events = []events.HistoryEvent{}
		}
		writeResponse(w, jsonResponse(http.StatusOK, page))
	}
}

// parseHistoryQuery reads the path and query of a history request.
func parseHistoryQuery(r *http.Request) (events.HistoryQuery, *apiError) {
	var q events.HistoryQuery
	values := r.URL.Query()
	for k := range values {
		switch k {
		case "since", "limit", "events", "organizationId":
		default:
			return q, badRequest(CodeInvalidRequest, fmt.Sprintf("unknown query parameter %q: use since, limit, events (and organizationId for a user)", k), k)
		}
	}
	if org := r.PathValue("organizationId"); org != "" {
		if values.Has("organizationId") {
			return q, badRequest(CodeInvalidRequest, "organizationId is in the path", "organizationId")
		}
		q.OrganizationID = org
	} else {
		q.UserID = r.PathValue("userId")
		q.OrganizationID = values.Get("organizationId")
		if q.OrganizationID == "" {
			return q, badRequest(events.CodeMissingField,
				"organizationId is required: a user's events are read within one organization (?organizationId=)", "organizationId")
		}
	}
	for _, id := range []struct{ name, v string }{{"organizationId", q.OrganizationID}, {"userId", q.UserID}} {
		if len(id.v) > maxIDLength || !utf8.ValidString(id.v) || strings.ContainsRune(id.v, utf8.RuneError) {
			return q, badRequest(events.CodeInvalidValue, id.name+" is not a valid id", id.name)
		}
	}
	q.Since = values.Get("since")
	if len(q.Since) > maxOffsetLength {
		return q, badRequest(CodeInvalidRequest, "since is too long to be an offset", "since")
	}
	q.Limit = events.DefaultHistoryLimit
	if v := values.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.MaxHistoryLimit {
			return q, badRequest(CodeInvalidRequest, fmt.Sprintf("limit must be an integer from 1 to %d", events.MaxHistoryLimit), "limit")
		}
		q.Limit = n
	}
	if v := values.Get("events"); v != "" {
		names, err := events.ExpandPatterns(strings.Split(v, ","))
		if err != nil {
			var ve *events.ValidationError
			if errors.As(err, &ve) {
				return q, badRequest(ve.Code, ve.Message, "events")
			}
			return q, badRequest(events.CodeUnknownEvent, err.Error(), "events")
		}
		q.Events = names
	}
	return q, nil
}
