// Package client is the Go subscriber of the Operate realtime gateway: what a
// backend worker uses to react to business events (bank:transactions_synced,
// invoice:paid, ...) as a browser does with socket.io-client.
//
//	c, err := client.New(client.Config{
//		URL:         "https://realtime.internal",
//		TokenSource: func(ctx context.Context) (string, error) { return auth.ServiceToken(ctx) },
//	})
//	if err != nil { ... }
//	c.OnBankTransactionsSynced(func(p events.BankPayload) { reconcile(p.AccountID) })
//	c.OnHistoryGap(func(client.HistoryGap) { resyncEverything() })
//	if err := c.Connect(ctx); err != nil { ... }
//	defer c.Close(context.Background())
//	_, err = c.Subscribe(ctx, []string{"bank:*"})
//
// It speaks Engine.IO v4 / Socket.IO v5 to the gateway's /events namespace as
// socket.io-client 4.x does, and works against Node's socket.io 4.8 as well:
//
//   - Transports: WebSocket, falling back to HTTP long-polling (and then
//     trying the upgrade) when a WebSocket cannot be opened; or
//     socket.io-client's default, long-polling first then the upgrade; or one
//     transport only (Config.Transport). It answers the server's pings and
//     drops a connection whose pings stop (ping interval + ping timeout).
//   - Authentication: a token, or a TokenSource asked for one on every
//     connection, and again when the gateway sends auth:expiring, answered
//     with auth:refresh, so a connection lives through any number of token
//     expiries. A token that expired anyway (auth:expired) is replaced from
//     the source on the reconnection.
//   - Reconnection with exponential backoff and jitter (Config.Backoff) after
//     anything but a refusal that a retry cannot fix (an invalid token, an
//     unknown namespace), which stops the client with a *ConnectError.
//   - Recovery: the client keeps its session id and the offset of the last
//     event it received, and presents them on reconnection; the gateway then
//     replays what was missed (ConnectInfo.Recovered, Recovered). When it
//     cannot, it says so with history:gap (OnHistoryGap): reload what you
//     derived from the events.
//   - Subscriptions: Subscribe and Unsubscribe (with an optional filter
//     expression) are acknowledged by the gateway, and restored on a new
//     connection that did not recover its session.
//   - Payloads: one typed method per catalog event (OnInvoicePaid(func(
//     events.InvoicePayload)), generated from gateway/events/catalog.json),
//     and OnEvent for the raw JSON of any event.
//
// # Concurrency
//
// Every method is safe for concurrent use. Handlers (the On... functions)
// run one at a time on the client's dispatch goroutine, in the order the
// events arrived, each connection's OnConnect first and its OnDisconnect
// last; a handler that blocks delays the handlers after it, not the
// connection (pings are answered by the reader, and events queue meanwhile,
// without bound). Handlers may call any method of the client, Subscribe and
// Close included. A handler registered while events are being dispatched
// sees every event dispatched after its registration.
//
// A Client is used once: New, register handlers, Connect, and eventually
// Close. Connect returns when the first connection is established; the
// client then reconnects by itself until Close, or until a refusal that a
// retry cannot fix. Done is closed, and Err tells why, once the client has
// stopped and its last handler has returned; Close does not wait for a
// handler that is running (a handler may call Close).
//
// The package imports no part of the server: `go list -deps` shows only the
// wire codecs (protocol/eio, protocol/sio, internal/wsframe) and the event
// catalog (gateway/events).
package client
