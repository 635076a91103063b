// Package httpapi is the HTTP API of the Operate events gateway: how services
// that are not linked with the gateway publish catalog events, plus the
// health endpoints and, in development mode only, a token-minting endpoint.
//
// # Endpoints
//
//	POST /api/v1/events        one event: {"event", "payload", "target"?}
//	POST /api/v1/events/batch  a JSON array of events, all validated before any is published
//	GET  /api/v1/schema        the JSON Schema of every event payload (no authentication)
//	GET  /api/v1/organizations/{org}/presence
//	                           who is online in the organization, across the cluster (when
//	                           Config.Presence is set)
//	GET  /healthz              the process is alive
//	GET  /readyz               the gateway accepts connections and publishes (503 while shutting down
//	                           or cut off from the cluster; the reason only with an API key)
//	POST /dev/token            development mode only: a token for {organizationId, userId}
//
// and, with Config.Control, the control API (same API keys; see control.go):
//
//	POST /api/v1/users/{user}/disconnect                 {reason?, organizationId?}
//	POST /api/v1/organizations/{org}/disconnect          {reason?}
//	POST /api/v1/sockets/{id}/disconnect                 {reason?}
//	POST /api/v1/revocations                             {jti, expiresAt?} or {userId, organizationId?, issuedBefore?}
//	POST /api/v1/organizations/{org}/users/{user}/leave  the user's sockets leave the organization's room
//	POST /api/v1/organizations/{org}/users/{user}/join   ... and join it again
//
// An event mirrors EventsService.Emit(event, payload, target): without a
// target it goes to payload.organizationId, or to payload.userId for
// user-audience events (notification:*) that have one; an explicit target is
// {"organizationId"?, "userId"?, "all"?}, and an explicit organization must
// be the payload's own. Every event goes through the same catalog validation
// as the Go EventsService ([events.NewEvent]).
//
// # Answers
//
// 202 Accepted with {"id"} (or {"ids"} for a batch) once the events are
// handed to the gateway's Emitter. Errors are JSON {"code", "message",
// "field"?}: 400 for invalid input (field is a path such as
// "payload.invoiceId", "target.organizationId" or, in a batch,
// "[2].payload.invoiceId"), 401 without an API key, 403 with a wrong one (or
// when no key is configured), 404/405 for unknown routes and methods, 413
// for a body over the limit, 422 for an Idempotency-Key reused with another
// body, 429 (with Retry-After) when the API key is over its publish rate,
// 500 when the Emitter fails.
//
// # API keys and idempotency
//
// Requests carry "Authorization: Bearer <key>". Keys are compared in
// constant time against SHA-256 digests of the configured keys, so neither
// timing nor memory dumps reveal them. An optional Idempotency-Key header (1
// to 255 visible ASCII characters) makes retries safe: the first successful
// answer for a key (scoped to the API key and endpoint) is stored, in memory
// and bounded in number and age, and replayed for retries with the same
// body, with the header "Idempotent-Replayed: true"; a concurrent retry
// waits for the first attempt. Failed attempts are not stored. With an
// Emitter that is an events.OnceEmitter (the gateway), each event of such a
// request is also published at most once per cluster key (a digest of the
// API key, endpoint, Idempotency-Key, body and the event's index, kept
// min(IdempotencyTTL, MaxOnceKeep)): a retry on any node, such as after
// 503 publish_outcome_unknown, publishes nothing twice and answers the
// first attempt's ids and offsets.
//
// With Config.PublishRate set, each key has a token bucket of events: a
// request takes as many tokens as it has events, or none and is refused
// whole, so one runaway publisher cannot starve the others.
//
// # Client
//
// The Go client and the request, answer and error types are in package
// gateway/apiclient, which publishers import without the server; the names
// here are aliases of its types.
//
// # Concurrency
//
// A Handler is safe for concurrent use.
package httpapi
