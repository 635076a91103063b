// redis-node.mjs: a socket.io 4.8 server with @socket.io/redis-adapter 8.3 (classic or sharded) or
// @socket.io/redis-streams-adapter 0.3.1 (streams), for the Go tests of socketio/redisadapter (mixed Go/Node
// clusters). Driven over JSON lines like driver.mjs:
//
//   node redis-node.mjs --redis redis://127.0.0.1:PORT [--mode classic|sharded|streams]
//        [--subscription-mode dynamic|static|dynamic-private] [--key socket.io] [--nsps /,/custom]
//        [--requests-timeout 5000] [--ping-interval 2000] [--specific-response-channel]
//        [--recovery <maxDisconnectionDuration ms>] [--max-len 10000]
//
// With --recovery the server has connectionStateRecovery (skipMiddlewares: true, Node's default): a
// recovered socket keeps its rooms and data, and the middleware below does not run for it.
//
// stdout: first {"type":"ready","port":N}; then one reply per command
// {"type":"reply","id":N,"ok":true,"result":...} and events {"type":"sse",...} for server-side events.
// Binary data travels as {"$bin":"<base64>"} (see driver.mjs). Diagnostics go to stderr.
//
// Behaviour of every namespace in --nsps:
//   - a middleware makes each socket join the rooms listed in its handshake query "rooms" (comma-separated)
//     and sets socket.data = {name: query.name}
//   - server-side events "sse" (reported as {"type":"sse",nsp,event,args}) and "sse-ack" (reported, and
//     acknowledged with {"from":"node","got":args})
//
// Commands (all take "nsp", default "/"): broadcast {rooms, except, event, args, volatile, compress},
// broadcastAck {rooms, except, event, args, timeout} → {error, responses}, fetchSockets {rooms, except}
// → [{id, rooms, data, query, address}], serverSideEmit {event, args}, serverSideEmitWithAck {event, args}
// → {error, responses}, socketsJoin/socketsLeave {rooms, except, join}, disconnectSockets {rooms, except,
// close}, serverCount → N, allRooms → [...], localRooms → [...], benchEmit {rooms, count, payload},
// sockets → [{id, rooms, data, recovered}] (this server's own).

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";

console.log = console.error;
console.info = console.error;

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const redisURL = arg("redis");
const mode = arg("mode", "classic");
const subscriptionMode = arg("subscription-mode", "dynamic");
const key = arg("key", "socket.io");
const nsps = arg("nsps", "/").split(",");
const requestsTimeout = Number(arg("requests-timeout", "5000"));
const pingInterval = Number(arg("ping-interval", "2000"));
const publishOnSpecificResponseChannel = process.argv.includes("--specific-response-channel");
const recovery = arg("recovery", null);
const maxLen = Number(arg("max-len", "10000"));

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}
function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}
function toWire(v) {
  if (v === undefined) return null;
  if (isBinary(v)) {
    const b = Buffer.isBuffer(v) ? v : v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { $bin: b.toString("base64") };
  }
  if (Array.isArray(v)) return v.map(toWire);
  if (isPlainObject(v)) {
    const out = {};
    for (const [k, val] of Object.entries(v)) if (val !== undefined) out[k] = toWire(val);
    return out;
  }
  return v;
}
function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (isPlainObject(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(v.$bin, "base64");
    const out = {};
    for (const [k, val] of Object.entries(v)) out[k] = fromWire(val);
    return out;
  }
  return v;
}

const pub = createClient({ url: redisURL });
const sub = pub.duplicate();
pub.on("error", (err) => console.error("pub error:", err.message));
sub.on("error", (err) => console.error("sub error:", err.message));
await Promise.all([pub.connect(), sub.connect()]);

const adapter =
  mode === "sharded"
    ? createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode })
    : mode === "streams"
      ? createStreamsAdapter(pub, { channelPrefix: key, maxLen })
      : createAdapter(pub, sub, { key, requestsTimeout, publishOnSpecificResponseChannel });

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter,
  pingInterval,
  pingTimeout: pingInterval,
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: Number(recovery), skipMiddlewares: true } } : {}),
});

function setup(nsp) {
  nsp.use((socket, next) => {
    const q = socket.handshake.query;
    socket.data = { name: q.name ?? null };
    if (typeof q.rooms === "string" && q.rooms !== "") socket.join(q.rooms.split(","));
    next();
  });
  nsp.on("connection", (socket) => {
    socket.on("join", (room, cb) => {
      socket.join(room);
      if (typeof cb === "function") cb();
    });
  });
  nsp.on("sse", (...args) => send({ type: "sse", nsp: nsp.name, event: "sse", args: toWire(args) }));
  nsp.on("sse-ack", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    send({ type: "sse", nsp: nsp.name, event: "sse-ack", args: toWire(args) });
    if (cb) cb({ from: "node", got: args });
  });
}
for (const n of nsps) setup(io.of(n));

function target(cmd) {
  let op = io.of(cmd.nsp ?? "/");
  if (cmd.rooms && cmd.rooms.length) op = op.to(cmd.rooms);
  if (cmd.except && cmd.except.length) op = op.except(cmd.except);
  return op;
}

const commands = {
  async broadcast(cmd) {
    let op = target(cmd);
    if (cmd.volatile) op = op.volatile;
    if (cmd.compress === false) op = op.compress(false);
    op.emit(cmd.event, ...fromWire(cmd.args ?? []));
    // The adapter publishes (or XADDs) on pub without waiting; a PING
    // queued after it answers once it is done (node-redis keeps order), so
    // the reply means "published".
    await pub.ping();
    return null;
  },
  broadcastAck(cmd, reply) {
    target(cmd)
      .timeout(cmd.timeout ?? 2000)
      .emit(cmd.event, ...fromWire(cmd.args ?? []), (err, responses) => {
        reply(true, { error: err ? err.message : null, responses: toWire(responses) });
      });
    return reply.later;
  },
  async fetchSockets(cmd) {
    const sockets = await target(cmd).fetchSockets();
    return sockets.map((s) => ({
      id: s.id,
      rooms: [...s.rooms],
      data: toWire(s.data),
      query: s.handshake.query,
      address: s.handshake.address,
      headers: s.handshake.headers,
      time: s.handshake.time,
      issued: s.handshake.issued,
    }));
  },
  serverSideEmit(cmd) {
    io.of(cmd.nsp ?? "/").serverSideEmit(cmd.event, ...fromWire(cmd.args ?? []));
    return null;
  },
  async serverSideEmitWithAck(cmd) {
    try {
      const responses = await io.of(cmd.nsp ?? "/").serverSideEmitWithAck(cmd.event, ...fromWire(cmd.args ?? []));
      return { error: null, responses: toWire(responses) };
    } catch (err) {
      return { error: err.message, responses: null };
    }
  },
  socketsJoin(cmd) {
    target(cmd).socketsJoin(cmd.join);
    return null;
  },
  socketsLeave(cmd) {
    target(cmd).socketsLeave(cmd.leave);
    return null;
  },
  disconnectSockets(cmd) {
    target(cmd).disconnectSockets(!!cmd.close);
    return null;
  },
  async serverCount(cmd) {
    return await io.of(cmd.nsp ?? "/").adapter.serverCount();
  },
  async allRooms(cmd) {
    return [...(await io.of(cmd.nsp ?? "/").adapter.allRooms())];
  },
  localRooms(cmd) {
    return [...io.of(cmd.nsp ?? "/").adapter.rooms.keys()];
  },
  sockets(cmd) {
    return [...io.of(cmd.nsp ?? "/").sockets.values()].map((s) => ({
      id: s.id,
      rooms: [...s.rooms],
      data: toWire(s.data),
      recovered: s.recovered,
    }));
  },
  // benchEmit broadcasts count events ["bench", <wall clock ns>, payload] to rooms and answers once all
  // are published (for BenchmarkCrossNodeDelivery). At most 16 publishes are in flight, like the Go side's
  // 16 publishers: after every 16 emits a PING on the publishing connection waits for them (node-redis
  // keeps order), so latency measures delivery, not a queue of millions of pending publishes.
  async benchEmit(cmd) {
    const op = target(cmd);
    const payload = cmd.payload ?? null;
    for (let i = 0; i < cmd.count; i++) {
      op.emit("bench", Math.round((performance.timeOrigin + performance.now()) * 1e6), payload);
      if (i % 16 === 15) await pub.ping();
    }
    await pub.ping();
    return cmd.count;
  },
};

function handle(line) {
  if (line.trim() === "") return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    console.error("bad command", line);
    return;
  }
  let replied = false;
  const reply = (ok, value) => {
    if (replied) return;
    replied = true;
    send(ok ? { type: "reply", id: cmd.id, ok: true, result: value ?? null } : { type: "reply", id: cmd.id, ok: false, error: String(value) });
  };
  reply.later = Symbol("later");
  const fn = Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!fn) return reply(false, `unknown command ${cmd.cmd}`);
  Promise.resolve()
    .then(() => fn(cmd, reply))
    .then(
      (r) => {
        if (r !== reply.later) reply(true, r);
      },
      (err) => reply(false, err?.message ?? String(err)),
    );
}

process.on("uncaughtException", (err) => console.error("uncaught exception:", err));
process.on("unhandledRejection", (err) => console.error("unhandled rejection:", err));

httpServer.listen(0, "127.0.0.1", () => {
  send({ type: "ready", port: httpServer.address().port });
});

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", handle);
rl.on("close", async () => {
  io.close();
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
});
