// testserver.mjs: a small reference socket.io 4.8 server used to test the Go driver helper
// (internal/testutil/sioclient) against real Node.js socket.io, before the Go server exists.
//
// It listens on an ephemeral port on 127.0.0.1 and prints the port as the first stdout line.
// It exits when stdin closes (so it never outlives the Go test that started it).
//
// Behaviour, on the namespaces "/" and "/chat":
//   - on connection: emits "hello" {id, nsp, recovered, transport, auth, query}
//   - "echo" (...args): emits "echo" with the same args; acks with them too if asked
//   - "ack-me" (...args, cb): cb(...args)
//   - "request-ack" (...args): emits "need-ack" (...args) with an ack callback; when the client
//     acknowledges, emits "got-ack" with the ack's arguments
//   - "server-disconnect": the server disconnects the socket
// Namespace "/private": a middleware refuses the connection (Error "not authorized" with data
// {code: 4001, reason: "token missing"}) unless auth.token === "secret". (No binary in that data:
// socket.io-parser only encodes binary attachments for EVENT/ACK packets; a Buffer in CONNECT_ERROR
// data arrives as its JSON form {"type":"Buffer","data":[...]}.)
//
// With the argument --recovery, connection state recovery is enabled: a client whose engine drops
// reconnects with recovered=true, and (socket.io behaviour) every event emitted without an ack then
// carries the session offset as an extra, last argument.

import { createServer } from "node:http";
import { Server } from "socket.io";

console.log = console.error; // stdout carries only the port line

const httpServer = createServer();
const recovery = process.argv.includes("--recovery");
const io = new Server(httpServer, {
  ...(recovery && { connectionStateRecovery: { maxDisconnectionDuration: 60_000, skipMiddlewares: true } }),
  // Short heartbeat so a dead peer is noticed quickly in tests.
  pingInterval: 2_000,
  pingTimeout: 2_000,
});

function setup(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("hello", {
      id: socket.id,
      nsp: socket.nsp.name,
      recovered: socket.recovered,
      transport: socket.conn.transport.name,
      auth: socket.handshake.auth,
      query: socket.handshake.query,
    });

    socket.on("echo", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      socket.emit("echo", ...args);
      if (ack) ack(...args);
    });

    socket.on("ack-me", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      if (ack) ack(...args);
    });

    socket.on("request-ack", (...args) => {
      if (typeof args[args.length - 1] === "function") args.pop();
      socket.emit("need-ack", ...args, (...response) => {
        socket.emit("got-ack", ...response);
      });
    });

    socket.on("server-disconnect", () => socket.disconnect(true));
  });
}

setup(io.of("/"));
setup(io.of("/chat"));

const priv = io.of("/private");
priv.use((socket, next) => {
  if (socket.handshake.auth?.token === "secret") return next();
  const err = new Error("not authorized");
  err.data = { code: 4001, reason: "token missing" };
  next(err);
});
setup(priv);

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});

process.stdin.resume();
process.stdin.on("end", () => {
  io.close();
  process.exit(0);
});
