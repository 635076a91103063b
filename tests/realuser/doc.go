// Package realuser tests the realtime server the way its users live with
// it: the real `realtime` binary, the real socket.io-client 4.8 from npm,
// connections that stay open, mostly idle, on the transports browsers
// use, through networks that fail.
//
// Why: with socket.io-client's default options (HTTP long-polling first,
// then the upgrade to WebSocket) every upgraded connection was cut at its
// first server write more than 10 s after the upgrade. More than a thousand
// tests passed meanwhile, because they all ran for seconds with clients
// that went straight to WebSocket. These tests close that gap. Each one
// runs a population of clients over several organizations in the three
// transport modes a browser population has (default: polling then
// upgrade, which is asserted; polling only; WebSocket only), publishes
// events through the HTTP API (POST /api/v1/events, each payload carrying
// a per-organization seq), and checks every client for:
//
//   - every event of its organization received exactly once and in order,
//     and none of another organization's;
//   - every disconnect counted and explained: none where nothing went
//     wrong, exactly those a fault explains (with its reason: "transport
//     close", "transport error", "ping timeout") where something did, and
//     the server's log agreeing;
//   - nothing left behind in the server: its /metrics (connections, engine
//     sessions, open files, goroutines) back where they were, and a clean,
//     race-free exit on SIGTERM.
//
// What they prove:
//
//   - idle: clients stay connected while idle past the ping interval, the
//     ping timeout and the write timeout (shortened), and on the server's
//     defaults past 30 s (the first heartbeat: where the original bug cut
//     every upgraded connection);
//   - token refresh: answering auth:expiring with auth:refresh keeps a
//     connection through several token expiries;
//   - faults, through internal/faultproxy with RECOVERY_WINDOW set: every
//     connection cut, one connection per transport mode stalled past the
//     ping timeout, new connections refused for seconds, and connections
//     that go dead where the client notices first (a laptop waking up);
//     clients reconnect by themselves and come back recovered, missing
//     nothing and receiving nothing twice.
//
// TestMain builds the binary once (with -race, so the server's own races
// fail the tests too). REALTIME_BINARY=/path/to/realtime runs the tests
// against another build instead, e.g. an older commit's, to see a test
// fail where a bug was.
//
// The package holds only tests; Node.js 20 and the npm packages of
// tests/node (`make deps`) are required.
package realuser
