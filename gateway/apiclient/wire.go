package apiclient

import (
	"encoding/json"
	"net/url"

	"github.com/operate/realtime/gateway/events"
)

// Paths of the API.
const (
	PathEvents   = "/api/v1/events"
	PathBatch    = "/api/v1/events/batch"
	PathSchema   = "/api/v1/schema"
	PathDevToken = "/dev/token"
	// PathPresence is GET /api/v1/organizations/{org}/presence, with the
	// organization id path-escaped (PresencePath builds it).
	PathPresence = "/api/v1/organizations/{org}/presence"
	// PathOrganizationEvents and PathUserEvents read the history (GET):
	// the events addressed to an organization, or to a user of one
	// (?organizationId= required), after ?since=, at most ?limit=.
	PathOrganizationEvents = "/api/v1/organizations/{organizationId}/events"
	PathUserEvents         = "/api/v1/users/{userId}/events"
)

// PresencePath returns the presence path of an organization.
func PresencePath(org string) string {
	return "/api/v1/organizations/" + url.PathEscape(org) + "/presence"
}

// Presence is who is online in an organization: GET
// /api/v1/organizations/{org}/presence, and the acknowledgement of the
// socket event "presence".
type Presence struct {
	OrganizationID string `json:"organizationId"`
	// Users are the organization's users connected on any node, by user
	// id. A user whose last connection dropped less than the grace period
	// ago is still listed, with Connections 0: a reconnection within it is
	// not a departure.
	Users []PresenceUser `json:"users"`
}

// PresenceUser is one online user of an organization.
type PresenceUser struct {
	UserID string `json:"userId"`
	// Connections counts the user's sockets in the organization, over
	// every node.
	Connections int `json:"connections"`
	// Since is when the user's current presence began (its earliest
	// connection still counted), as JavaScript's toISOString writes it.
	Since string `json:"since"`
}

// PublishRequest is one event of the HTTP API: the body of POST
// /api/v1/events, and an element of a batch.
type PublishRequest struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Target  *events.Target  `json:"target,omitempty"`
}

// PublishResponse answers POST /api/v1/events.
type PublishResponse struct {
	ID string `json:"id"`
	// Offset is the event's position in the history (absent when the
	// gateway keeps none): GET .../events?since=<offset> returns what
	// was published after it.
	Offset string `json:"offset,omitempty"`
}

// BatchResponse answers POST /api/v1/events/batch: the ids in request order.
type BatchResponse struct {
	IDs []string `json:"ids"`
	// Offsets are the events' positions in the history, in request order
	// (absent when the gateway keeps none).
	Offsets []string `json:"offsets,omitempty"`
}

// HistoryResponse answers GET PathOrganizationEvents and PathUserEvents:
// the events after since, oldest first; offset covers the page (pass it
// as since for what follows); more says the page stopped at its limit.
type HistoryResponse = events.HistoryPage

// DevTokenRequest asks POST /dev/token for a token.
type DevTokenRequest struct {
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	Role           string `json:"role,omitempty"`
	Email          string `json:"email,omitempty"`
	// TTL is a Go duration ("15m", "2h"); empty means the default.
	TTL string `json:"ttl,omitempty"`
}

// DevTokenResponse answers POST /dev/token.
type DevTokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// IDs lists, for a batch that failed while publishing, the ids of the
	// events published before the failure.
	IDs []string `json:"ids,omitempty"`
	// Result, for a control request that reached only part of the cluster
	// (503 cluster_unavailable), says what was done.
	Result *ControlResponse `json:"result,omitempty"`
}

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
	CodeOutcomeUnknown        = "publish_outcome_unknown" // 503: Redis did not answer the append: every node gets the event, or none
	CodeInvalidSelector       = "invalid_selector"        // a control request that selects nothing, or mixes selectors
	CodeInvalidRevocation     = "invalid_revocation"      // a revocation of neither a token nor a user, or with fields that do not go together
	CodeControlDisabled       = "control_disabled"        // 404: this server has no control API
	CodeControlFailed         = "control_failed"          // 500: the control operation failed
	CodePresenceUnavailable   = "presence_unavailable"    // 503: presence cannot be read (Redis down)
	CodeInvalidOrganization   = "invalid_organization"    // 400: the organization id in the path is not a valid id
	CodeHistoryGap            = "history_gap"             // 410: the history no longer holds the events after since
	CodeHistoryUnavailable    = "history_unavailable"     // 501: no history is kept; 503: it cannot be read now
)
