// Package filter compiles and evaluates the payload filters of gateway
// subscriptions: CEL expressions (https://cel.dev) over one catalog event,
// such as
//
//	payload.amount > 1000.0 && payload.currency == 'EUR'
//
// An expression is compiled and type-checked once per payload type of the
// catalog (InvoicePayload, ...): payload is an object with that type's
// fields and their declared types (string, double for numbers, int for
// integers, bool, timestamp for date-times, map(string, dyn) for objects,
// lists for arrays), and event is the event name, a string. An expression
// that names a field the type does not have, that is not boolean, or whose
// estimated cost is above the limit is refused with the reason.
//
// Evaluation is meant for fan-out: a Payload is decoded once per event
// and a Program evaluated against it once, however many recipients share
// the program (the Compiler returns the same Program for the same
// expression and type while it is in use). An expression that reads an
// optional field the payload does not carry, or hits any other runtime
// error, does not match: has(payload.amount) tests for presence.
package filter
