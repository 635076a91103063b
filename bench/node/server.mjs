// The Node.js peer of the benchmark harness (cmd/realtime-bench): socket.io 4.8 with the semantics of our
// gateway, so that both servers do the same work per connection and per event:
//
//   - a CONNECT middleware on the /events namespace verifies an HS256 JWT (jsonwebtoken, as the NestJS
//     WsJwtGuard did) taken from auth.token, else an Authorization: Bearer header, else ?token=; refusals
//     are connect_errors with data.code (NO_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED, NO_USER, NO_ORGANIZATION);
//   - an accepted socket joins org:<orgId> and user:<sub>, receives "connected" {message, userId,
//     organizationId, expiresAt}, and is disconnected when its token expires (one timer per socket);
//   - POST /api/v1/events {event, payload} and POST /api/v1/events/batch [...] (Authorization: Bearer
//     <API key>, SHA-256 digests compared in constant time) broadcast payload to org:<payload.organizationId>
//     and answer 202 {id} / {ids}; a payload without "timestamp" gets one;
//   - GET /healthz;
//   - with REDIS_URL, the rooms span every server through @socket.io/redis-adapter 8.3 (scenario 5), or, with
//     --redis-mode streams, through @socket.io/redis-streams-adapter 0.3.1 (Redis Streams: the streams
//     scenarios);
//   - with --recovery-window MS, connection state recovery (connectionStateRecovery, maxDisconnectionDuration
//     MS; skipMiddlewares false, so that a recovering client's JWT is verified again, as ours does).
//
// It validates less than our gateway (no event catalog, no payload schema, no per-recipient subscription
// filter): the comparison favours Node slightly, never us.
//
//   JWT_SECRET=... API_KEYS=... node server.mjs --addr 127.0.0.1:9200 [--redis redis://127.0.0.1:6379]
//                                              [--redis-mode classic|streams] [--recovery-window MS]
//                                              [--ping-interval MS] [--ping-timeout MS]
//
// --ping-interval and --ping-timeout set engine.io's pingInterval and pingTimeout (default 25000 and 20000), so
// that the harness can run both servers on the same shortened heartbeat.
//
// Prints "listening <addr>" on stdout when ready.

import { createServer } from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { Server } from "socket.io";
import jwt from "jsonwebtoken";

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const [host, portStr] = (arg("addr", "127.0.0.1:9200")).split(/:(?=[^:]*$)/);
const port = Number(portStr);
const secret = process.env.JWT_SECRET;
if (!secret) {
  console.error("JWT_SECRET is required");
  process.exit(2);
}
const apiKeyDigests = (process.env.API_KEYS || "")
  .split(",")
  .map((k) => k.trim())
  .filter(Boolean)
  .map((k) => createHash("sha256").update(k).digest());
const maxBody = Number(process.env.MAX_BODY_BYTES || 1048576);
const maxBatch = Number(process.env.MAX_BATCH_EVENTS || 100);
const redisURL = arg("redis", process.env.REDIS_URL || "");
const namespace = process.env.EVENTS_NAMESPACE || "/events";
const redisMode = arg("redis-mode", "classic");
if (redisMode !== "classic" && redisMode !== "streams") {
  console.error(`--redis-mode must be classic or streams, got ${redisMode}`);
  process.exit(2);
}
const recoveryWindow = Number(arg("recovery-window", "0"));
if (!Number.isInteger(recoveryWindow) || recoveryWindow < 0) {
  console.error(`--recovery-window must be a number of milliseconds, got ${arg("recovery-window", "")}`);
  process.exit(2);
}

// ---- Socket.IO ---------------------------------------------------------------------------------------

const httpServer = createServer(serveAPI);
const heartbeat = {};
for (const [flag, option] of [["ping-interval", "pingInterval"], ["ping-timeout", "pingTimeout"]]) {
  const v = arg(flag, "");
  if (v === "") continue;
  const ms = Number(v);
  if (!Number.isInteger(ms) || ms <= 0) {
    console.error(`--${flag} must be a positive number of milliseconds, got ${v}`);
    process.exit(2);
  }
  heartbeat[option] = ms;
}
const recovery = recoveryWindow > 0
  ? { connectionStateRecovery: { maxDisconnectionDuration: recoveryWindow, skipMiddlewares: false } }
  : {};
const io = new Server(httpServer, { serveClient: false, ...heartbeat, ...recovery });
const nsp = io.of(namespace);

class AuthError extends Error {
  constructor(message, code) {
    super(message);
    this.data = { code };
  }
}

function bearer(v) {
  if (typeof v !== "string") return "";
  v = v.trim();
  return v.toLowerCase().startsWith("bearer ") ? v.slice(7).trim() : v;
}

nsp.use((socket, next) => {
  const hs = socket.handshake;
  let token = "";
  if (hs.auth && hs.auth.token != null) token = bearer(hs.auth.token);
  else if (hs.headers.authorization) token = bearer(hs.headers.authorization);
  else if (hs.query && hs.query.token) token = bearer(hs.query.token);
  if (!token) return next(new AuthError("Unauthorized: No token provided", "NO_TOKEN"));
  let claims;
  try {
    claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
  } catch (e) {
    if (e.name === "TokenExpiredError") return next(new AuthError("Unauthorized: Token expired", "TOKEN_EXPIRED"));
    return next(new AuthError("Unauthorized: Invalid token", "INVALID_TOKEN"));
  }
  const userId = typeof claims.sub === "string" ? claims.sub : "";
  const orgId = claims.orgId || claims.organizationId;
  if (!userId) return next(new AuthError("Unauthorized: Token has no user", "NO_USER"));
  if (typeof orgId !== "string" || !orgId) return next(new AuthError("Unauthorized: Token has no organization", "NO_ORGANIZATION"));
  socket.data = { userId, orgId, role: claims.role, email: claims.email, exp: claims.exp };
  socket.join(["org:" + orgId, "user:" + userId]);
  next();
});

nsp.on("connection", (socket) => {
  const { userId, orgId, exp } = socket.data;
  let expiresAt;
  if (typeof exp === "number") {
    expiresAt = new Date(exp * 1000).toISOString();
    const timer = setTimeout(() => {
      socket.emit("auth:expired", { message: "Unauthorized: Token expired", code: "TOKEN_EXPIRED", expiresAt });
      socket.disconnect(true);
    }, Math.max(0, Math.min(exp * 1000 - Date.now(), 2 ** 31 - 1)));
    timer.unref();
    socket.once("disconnect", () => clearTimeout(timer));
  }
  socket.emit("connected", {
    message: "Successfully connected to real-time updates",
    userId,
    organizationId: orgId,
    expiresAt,
  });
});

// ---- HTTP API ----------------------------------------------------------------------------------------

function send(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

function authorized(req) {
  const key = bearer(req.headers.authorization || "");
  if (!key || apiKeyDigests.length === 0) return false;
  const d = createHash("sha256").update(key).digest();
  let ok = false;
  for (const k of apiKeyDigests) ok = timingSafeEqual(d, k) || ok;
  return ok;
}

let nextID = 0;
const idPrefix = Date.now().toString(36) + "-";

function publishOne(ev) {
  if (ev === null || typeof ev !== "object" || typeof ev.event !== "string" || !ev.event) {
    return "invalid event";
  }
  const p = ev.payload;
  if (p === null || typeof p !== "object" || Array.isArray(p) || typeof p.organizationId !== "string" || !p.organizationId) {
    return "payload.organizationId is required";
  }
  if (p.timestamp === undefined) p.timestamp = new Date().toISOString();
  nsp.to("org:" + p.organizationId).emit(ev.event, p);
  return null;
}

function serveAPI(req, res) {
  if (req.method === "GET" && (req.url === "/healthz" || req.url === "/readyz")) {
    return send(res, 200, { status: "ok" });
  }
  const batch = req.url === "/api/v1/events/batch";
  if (req.url !== "/api/v1/events" && !batch) return send(res, 404, { code: "not_found", message: "not found" });
  if (req.method !== "POST") return send(res, 405, { code: "method_not_allowed", message: "use POST" });
  if (!authorized(req)) return send(res, 403, { code: "forbidden", message: "invalid API key" });
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on("data", (c) => {
    size += c.length;
    if (size > maxBody) tooLarge = true;
    else chunks.push(c);
  });
  req.on("end", () => {
    if (tooLarge) return send(res, 413, { code: "body_too_large", message: "body too large" });
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(res, 400, { code: "invalid_json", message: "request body is not valid JSON" });
    }
    const list = batch ? body : [body];
    if (!Array.isArray(list) || list.length === 0 || list.length > maxBatch) {
      return send(res, 400, { code: "invalid_request", message: "bad batch" });
    }
    for (const ev of list) {
      const err = publishOne(ev);
      if (err) return send(res, 400, { code: "invalid_request", message: err });
    }
    const ids = list.map(() => idPrefix + (nextID++).toString(36));
    send(res, 202, batch ? { ids } : { id: ids[0] });
  });
}

// ---- start -------------------------------------------------------------------------------------------

// redisClient is the streams adapter's Redis connection, closed at shutdown once the sessions queued by the
// sockets' disconnection are written (node-redis answers close() after the commands sent before it).
let redisClient = null;

async function main() {
  if (redisURL && redisMode === "streams") {
    const { createClient } = await import("redis");
    const { createAdapter } = await import("@socket.io/redis-streams-adapter");
    redisClient = createClient({ url: redisURL });
    redisClient.on("error", (e) => console.error("redis:", e.message));
    await redisClient.connect();
    io.adapter(createAdapter(redisClient));
  } else if (redisURL) {
    const { createClient } = await import("redis");
    const { createAdapter } = await import("@socket.io/redis-adapter");
    const pub = createClient({ url: redisURL });
    const sub = pub.duplicate();
    pub.on("error", (e) => console.error("redis pub:", e.message));
    sub.on("error", (e) => console.error("redis sub:", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  // The same accept backlog as the Go server (net.Listen uses somaxconn): Node's default, 511, would drop
  // SYNs in a handshake storm that Go's listener queues.
  httpServer.listen({ host, port, backlog: 4096 }, () => {
    process.stdout.write(`listening ${host}:${httpServer.address().port}\n`);
  });
}

// A graceful shutdown: the sockets are closed ("server shutting down", a reason connection state recovery
// persists the session for), then, in streams mode, the Redis connection once those sessions are written, at
// most 5 s (ours' --shutdown-timeout in the harness).
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    if (!redisClient) process.exit(0);
    setTimeout(() => process.exit(0), 5000).unref();
    const done = redisClient.close ? redisClient.close() : redisClient.quit();
    Promise.resolve(done).catch(() => {}).finally(() => process.exit(0));
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
