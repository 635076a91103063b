// Package auth verifies the JWTs that clients present when they open a
// Socket.IO connection to the Operate realtime gateway.
//
// The job is narrow: find the token in a handshake ([ExtractToken]), check its
// signature and registered claims against a configured key ([Verifier.Verify]),
// and turn it into the tenant identity the gateway needs ([Claims]: user,
// organization, role, email). Every failure is an [*Error] whose Code and
// Message are safe to send to the client as a Socket.IO connect_error; the
// detailed reason stays in Error.Err for server logs.
//
// # Keys
//
// Exactly one key source is configured (see [Config]):
//
//   - a shared secret for HS256/HS384/HS512, with an optional previous secret
//     accepted during a rotation;
//   - a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or a
//     "CERTIFICATE") for RS*, PS*, ES* or EdDSA;
//   - a JWKS URL, fetched in the background, cached, and re-fetched when a token
//     names an unknown kid (at most once per JWKSMinRefreshInterval).
//
// The accepted algorithms are pinned per verifier and must fit the key kind:
// "none" is never accepted and an asymmetric public key is never used as an
// HMAC secret.
//
// HS256 tokens with the standard header, what the NestJS API issues, take a
// fast path (fast.go) that verifies them by hand and only ever accepts;
// every other token, and every one it does not accept, goes through
// golang-jwt, which gives the verdict and the error.
//
// # Policy
//
// Decisions a reviewer should know about (details on [Config]):
//
//   - exp is required by default (Config.AllowMissingExpiry relaxes it);
//     exp, nbf and iat are checked with a 30 s leeway.
//   - The user id comes from "sub" only, with no userId/id fallback: other
//     tokens signed with the same secret (reset links, invitations) must not
//     pass as sessions. The organization comes from "orgId", then
//     "organizationId" (or one configured claim name).
//   - Without Config.Algorithms, exactly one algorithm is accepted, derived
//     from the key (HS256 for a secret, RS256 for RSA, ES256/384/512 by
//     curve, EdDSA for Ed25519; per key for a JWKS).
//   - A token that is wrong in any way other than being expired (bad
//     signature, iss, aud, nbf, ...) is INVALID_TOKEN even if it is also
//     expired, because TOKEN_EXPIRED invites the client to refresh and retry.
//
// # Concurrency
//
// A [Verifier] is immutable after [New] except for its JWKS key cache, which is
// swapped atomically. Verify is safe for concurrent use by any number of
// goroutines and does not block on the network, except that, with a JWKS, a
// token with an unknown kid (or arriving before any key was fetched) may wait,
// bounded by its context, for a refresh that is in flight or that it starts
// (at most one per JWKSMinRefreshInterval). [Verifier.Close] stops the background
// refresh; it is idempotent and safe to call concurrently with Verify.
//
// The package holds no mutable package-level state; [ExtractToken], [Mint],
// [Redact] and [RedactURL] are pure functions.
//
// Tokens are credentials: never log them. Use [Redact] for a token and
// [RedactURL] for a request URL that may carry one in its query string.
package auth
