package httpapi

import "github.com/operate/realtime/gateway/apiclient"

// The API's wire types, paths and error codes are defined in package
// apiclient, which Go publishers import without the server; the names below
// are the same types and values, so that both sides of the contract cannot
// drift apart.

// Paths of the API.
const (
	PathEvents   = apiclient.PathEvents
	PathBatch    = apiclient.PathBatch
	PathSchema   = apiclient.PathSchema
	PathDevToken = apiclient.PathDevToken

	PathOrganizationEvents = apiclient.PathOrganizationEvents
	PathUserEvents         = apiclient.PathUserEvents
)

type (
	// PublishRequest is one event of the HTTP API.
	PublishRequest = apiclient.PublishRequest
	// PublishResponse answers POST /api/v1/events.
	PublishResponse = apiclient.PublishResponse
	// BatchResponse answers POST /api/v1/events/batch: the ids in request order.
	BatchResponse = apiclient.BatchResponse
	// DevTokenRequest asks POST /dev/token for a token.
	DevTokenRequest = apiclient.DevTokenRequest
	// DevTokenResponse answers POST /dev/token.
	DevTokenResponse = apiclient.DevTokenResponse
	// ErrorBody is the JSON body of every error answer.
	ErrorBody = apiclient.ErrorBody
)

// Error codes of the HTTP API (see apiclient for their meaning).
const (
	CodeInvalidJSON           = apiclient.CodeInvalidJSON
	CodeInvalidRequest        = apiclient.CodeInvalidRequest
	CodeEmptyBatch            = apiclient.CodeEmptyBatch
	CodeTooManyEvents         = apiclient.CodeTooManyEvents
	CodeBodyTooLarge          = apiclient.CodeBodyTooLarge
	CodeUnauthorized          = apiclient.CodeUnauthorized
	CodeForbidden             = apiclient.CodeForbidden
	CodeInvalidIdempotencyKey = apiclient.CodeInvalidIdempotencyKey
	CodeIdempotencyKeyReused  = apiclient.CodeIdempotencyKeyReused
	CodeNotFound              = apiclient.CodeNotFound
	CodeMethodNotAllowed      = apiclient.CodeMethodNotAllowed
	CodeRateLimited           = apiclient.CodeRateLimited
	CodePublishFailed         = apiclient.CodePublishFailed
	CodeUnavailable           = apiclient.CodeUnavailable
	CodeClusterUnavailable    = apiclient.CodeClusterUnavailable
	CodeOutcomeUnknown        = apiclient.CodeOutcomeUnknown
	CodePresenceUnavailable   = apiclient.CodePresenceUnavailable
	CodeInvalidOrganization   = apiclient.CodeInvalidOrganization
	CodeHistoryGap            = apiclient.CodeHistoryGap
	CodeHistoryUnavailable    = apiclient.CodeHistoryUnavailable
)

// Client is the Go client of the API.
//
// Deprecated: use apiclient.Client; importing httpapi for it links the
// whole server into a publisher.
type Client = apiclient.Client

// APIError is an error answer of the API.
//
// Deprecated: use apiclient.APIError.
type APIError = apiclient.APIError

// NewClient returns a Client for baseURL authenticated with apiKey.
//
// Deprecated: use apiclient.New.
func NewClient(baseURL, apiKey string) *Client { return apiclient.New(baseURL, apiKey) }
