// Package events is the catalog of business events the Operate gateway pushes to browsers
// (invoice:created, bank:sync_error, ...), and the EventsService that business code uses to
// publish them.
//
// # Single source of truth
//
// catalog.json lists every event (name, domain, payload type, default audience, description)
// and every payload type. `go generate ./gateway/events` turns it into events_gen.go (name
// constants, payload structs, the event table and one typed EventsService method per event),
// schema.json (JSON Schema 2020-12, embedded here and returned by Schema) and the TypeScript
// types in clients/js/src/generated/events.ts. A test fails when a generated file is stale.
//
// # Delivery contract
//
// An Event is handed to an Emitter together with its Target. The transport delivers it to the
// Socket.IO rooms returned by Target.Rooms: "org:<organizationId>" for an organisation,
// "user:<userId>" for a user, or to every socket when Target.All is set. Without an explicit
// target, organisation-audience events go to the payload's organisation, and user-audience
// events (notification:*) to the payload's userId when it has one, else to the organisation.
//
// # Validation
//
// Every publish path (the typed Emit<Event> methods, Emit, and raw JSON from the HTTP API via
// Validate) runs the same validation against the catalog, so typed and untyped publishers
// cannot diverge. Fields the catalog does not know are accepted and passed through unchanged:
// publishers can then roll out a new field before the gateway is redeployed with the updated
// catalog, and clients ignore fields they do not know. Known fields are always type-checked.
package events

import _ "embed"

//go:generate go run ./internal/gen -catalog catalog.json -go events_gen.go -schema schema.json -ts ../../clients/js/src/generated/events.ts -client ../../client/events_gen.go -client-test ../../client/events_gen_test.go

// schemaJSON is a string, not a []byte, so that the embedded document cannot be modified.
//
//go:embed schema.json
var schemaJSON string

// Schema returns the JSON Schema (draft 2020-12) of every event payload, generated from the
// catalog. Its $defs hold one schema per payload type; its properties map each event name to
// that event's payload schema (#/properties/<event name>), like EventPayloadMap in TypeScript.
// The caller owns the returned slice.
func Schema() []byte { return []byte(schemaJSON) }
