// Package apiclient is the Go client of the gateway's HTTP API (package
// gateway/httpapi): it publishes catalog events with an API key
// (POST /api/v1/events, /api/v1/events/batch) and asks a development server
// for tokens (POST /dev/token). It also defines the API's request, answer
// and error types, which the server shares.
//
// It is light on purpose: a service that only publishes imports this package
// and gateway/events, never the server (no engineio, socketio, WebSocket or
// JWT library; tests/layers keeps it so). A Client is an events.Emitter, so
// the typed EventsService works over it as it does inside the gateway:
//
//	svc := events.NewEventsService(apiclient.New("https://realtime.internal", apiKey))
//	id, err := svc.EmitInvoicePaid(ctx, events.InvoicePayload{OrganizationID: org, InvoiceID: inv})
//
// The service validates locally; the gateway validates again. A Client is
// safe for concurrent use.
package apiclient
