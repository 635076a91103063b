// soak-clients.mjs: a population of real socket.io-client 4.8 sockets in one process, for the soak
// (cmd/realtime-soak). It keeps nothing but counters: everything a client sees is reported at once as a
// JSON line on stdout, and the Go side judges.
//
// Commands arrive on stdin, one JSON object per line:
//
//   {"cmd":"connect","c":7,"url":"http://127.0.0.1:PORT/events","transports":["polling"],"token":"…"}
//       transports null: socket.io-client's default (polling, then the upgrade to WebSocket)
//   {"cmd":"refresh","c":7,"token":"…"}      answer an auth:expiring: set socket.auth, emit auth:refresh
//   {"cmd":"close"}                          disconnect every client, report "closed", exit
//
// Reports (stdout, one per line; "c" is the client's number, "ts" Date.now() in ms):
//
//   {"t":"connect","c","ts","rec":bool,"tr":"polling"|"websocket"}
//   {"t":"disconnect","c","ts","reason","desc"}
//   {"t":"cerr","c","ts","msg"}                                   connect_error
//   {"t":"upgradeError","c","ts","msg"}                       the probe failed; the client stays on polling
//   {"t":"upgrade","c","ts","tr","took"}                      took: ms since the probe transport was created
//   {"t":"ev","c","ts","n":event,"o":organizationId,"u":userId,"s":seq}   a catalog event
//   {"t":"gap","c","ts","reason","from"}                          history:gap
//   {"t":"expiring","c","ts","exp"}  {"t":"expired","c","ts","exp"}
//   {"t":"refreshed","c","ts","ok":bool,"exp","err"}
//   {"t":"lag","ts","max"}   every 10 s: the event loop's worst delay (ms) meanwhile: how late this
//                            process may have noticed what happened to its sockets
//   {"t":"ready"} first; {"t":"closed"} last.
//
// Nothing else may go to stdout: diagnostics go to stderr.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import { Socket as EngineSocket } from "engine.io-client";

console.log = console.error;
console.info = console.error;

// When each transport was created, so that an upgrade can say how long it
// took from the probe's start: the server gives up on a probe after its
// upgrade timeout (10 s), and a client whose event loop is late may finish
// an upgrade the server already abandoned.
const createTransport = EngineSocket.prototype.createTransport;
EngineSocket.prototype.createTransport = function (name) {
  const t = createTransport.call(this, name);
  t.soakCreatedAt = Date.now();
  return t;
};

let closing = false;
function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function describe(d) {
  if (d === undefined || d === null) return null;
  if (typeof d === "string") return d;
  if (d instanceof Error) {
    const inner = d.description !== undefined ? describe(d.description) : null;
    return inner ? `${d.message}: ${inner}` : d.message;
  }
  if (typeof d === "object") {
    if (typeof d.description === "string") return d.description;
    if (typeof d.message === "string") return d.message;
    if (typeof d.type === "string") return d.type;
  }
  return String(d);
}

/** @type {Map<number, any>} client number → socket */
const sockets = new Map();

function connect(cmd) {
  const c = cmd.c;
  const opts = { forceNew: true, auth: { token: cmd.token } };
  if (Array.isArray(cmd.transports)) opts.transports = cmd.transports;
  const socket = io(cmd.url, opts);
  sockets.set(c, socket);
  const tr = () => socket.io.engine?.transport?.name ?? null;
  socket.io.on("open", () => {
    socket.io.engine.on("upgradeError", (err) => send({ t: "upgradeError", c, ts: Date.now(), msg: err?.message ?? String(err) }));
    socket.io.engine.on("upgrade", (t) => {
      const ts = Date.now();
      send({ t: "upgrade", c, ts, tr: t.name, took: t.soakCreatedAt ? ts - t.soakCreatedAt : -1 });
    });
  });
  socket.on("connect", () => send({ t: "connect", c, ts: Date.now(), rec: !!socket.recovered, tr: tr() }));
  socket.on("disconnect", (reason, description) => {
    if (closing) return;
    send({ t: "disconnect", c, ts: Date.now(), reason, desc: describe(description) });
  });
  socket.on("connect_error", (err) => {
    if (closing) return;
    send({ t: "cerr", c, ts: Date.now(), msg: err?.message ?? String(err) });
  });
  socket.onAny((event, ...args) => {
    const p = args[0] ?? {};
    const ts = Date.now();
    switch (event) {
      case "connected":
        return;
      case "history:gap":
        send({ t: "gap", c, ts, reason: p.reason ?? null, from: p.from ?? null, off: logged(args) });
        return;
      case "auth:expiring":
        send({ t: "expiring", c, ts, exp: p.expiresAt ?? null, off: logged(args) });
        return;
      case "auth:expired":
        send({ t: "expired", c, ts, exp: p.expiresAt ?? null, off: logged(args) });
        return;
      default:
        send({ t: "ev", c, ts, n: event, o: p.organizationId ?? null, u: p.userId ?? null, s: typeof p.seq === "number" ? p.seq : -1 });
    }
  });
}

// logged reports whether a notice carried a recovery offset: one more, last,
// string argument after its payload (what socket.io-client keeps as its
// position), which only logged, replayable packets carry.
function logged(args) {
  return args.length > 1 && typeof args[args.length - 1] === "string";
}

function refresh(cmd) {
  const socket = sockets.get(cmd.c);
  if (!socket) return;
  socket.auth = { token: cmd.token }; // for a reconnection, should one come
  if (!socket.connected) {
    // Refused for its expired token, socket.io-client does not try again
    // by itself: the application connects again with the new one.
    if (!socket.active) socket.connect();
    return;
  }
  socket
    .timeout(10000)
    .emitWithAck("auth:refresh", { token: cmd.token })
    .then(
      (res) => send({ t: "refreshed", c: cmd.c, ts: Date.now(), ok: !!res?.ok, exp: res?.expiresAt ?? null, err: res?.error ?? null }),
      (err) => send({ t: "refreshed", c: cmd.c, ts: Date.now(), ok: false, exp: null, err: err?.message ?? String(err) }),
    );
}

function closeAll() {
  closing = true;
  for (const s of sockets.values()) {
    try {
      s.disconnect();
    } catch (err) {
      console.error("closing:", err);
    }
  }
  sockets.clear();
  send({ t: "closed" });
  process.stdout.write("", () => process.exit(0));
}

process.on("uncaughtException", (err) => console.error("[soak-clients] uncaught exception:", err));
process.on("unhandledRejection", (err) => console.error("[soak-clients] unhandled rejection:", err));

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (line.trim() === "") return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    console.error("[soak-clients] bad command:", line.slice(0, 200));
    return;
  }
  switch (cmd.cmd) {
    case "connect":
      connect(cmd);
      break;
    case "refresh":
      refresh(cmd);
      break;
    case "close":
      closeAll();
      break;
    default:
      console.error("[soak-clients] unknown command:", cmd.cmd);
  }
});
rl.on("close", () => {
  if (!closing) closeAll();
});

// The event loop's delay, sampled every 100 ms, reported every 10 s.
let lagMax = 0;
let lagLast = Date.now();
setInterval(() => {
  const now = Date.now();
  lagMax = Math.max(lagMax, now - lagLast - 100);
  lagLast = now;
}, 100).unref();
setInterval(() => {
  if (!closing) send({ t: "lag", ts: Date.now(), max: lagMax });
  lagMax = 0;
}, 10000).unref();

send({ t: "ready" });
