// Package control connects the gateway's control operations (disconnects,
// token revocations, organization rooms: see gateway.Gateway.Disconnect,
// Revoke and SetOrganizationRoom) to the outside: the HTTP API's
// httpapi.Controller (API), and the revocations kept in Redis so that
// every node refuses a revoked token, including one that starts later or
// missed the notification (RedisStore).
//
// # Revocations in Redis
//
// Each revocation is one key, "<KeyPrefix>:revoked:<hash>", holding the
// revocation as JSON and expiring when the revocation may be forgotten
// (every token it names has expired). The nodes are told of a new
// revocation at once through the adapter (server-side events), and read
// every key back every gateway.Config.RevocationSync (SCAN and MGET): a
// connect or a refresh checks only the node's memory, never Redis, so
// that connects stay as cheap as before.
package control
