// gatewaypeer.mjs: Node's socket.io 4.8 with the events gateway's wire contract, for testing the Go client
// (package client) against a server that is not ours. The same semantics as bench/node/server.mjs, on
// tests/node's packages (no jsonwebtoken: HS256 is checked with node:crypto), plus what a subscriber meets:
//
//   - /events namespace; a CONNECT middleware takes auth.token (else Authorization: Bearer, else ?token=) and
//     verifies an HS256 JWT: refusals are connect_errors with data.code (NO_TOKEN, INVALID_TOKEN,
//     TOKEN_EXPIRED, NO_USER, NO_ORGANIZATION);
//   - an accepted socket joins org:<orgId> and user:<sub> and receives "connected" {message, userId,
//     organizationId, expiresAt};
//   - "auth:expiring" halfway to the token's expiry (at most --warning ms before it), "auth:refresh" {token}
//     acknowledged {ok, expiresAt} or {ok: false, error, code} (IDENTITY_MISMATCH for another identity);
//     at expiry "auth:expired" and a namespace disconnect;
//   - "subscribe"/"unsubscribe" {events: [...]} with names, "<domain>:*" or "*", acknowledged {success,
//     subscribedTo|unsubscribedFrom, subscriptions}; a socket that never subscribed receives everything;
//   - POST /api/v1/events {event, payload} (Authorization: Bearer <API key>) broadcasts the payload, as
//     given (no validation), to org:<payload.organizationId>, or user:<payload.userId> for notification:*;
//   - with --recovery, connection state recovery (connectionStateRecovery, 60 s, middlewares skipped).
//
//   node gatewaypeer.mjs --secret S --api-key K [--recovery] [--warning MS] [--ping-interval MS] [--ping-timeout MS]
//
// Listens on 127.0.0.1 on a free port and prints the port as the first stdout line; exits when stdin closes.

import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Server } from "socket.io";

console.log = console.error; // stdout carries only the port line

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const secret = arg("secret", "");
const apiKey = arg("api-key", "");
if (!secret || !apiKey) {
  console.error("--secret and --api-key are required");
  process.exit(2);
}
const warning = Number(arg("warning", "60000"));
const heartbeat = {};
if (arg("ping-interval")) heartbeat.pingInterval = Number(arg("ping-interval"));
if (arg("ping-timeout")) heartbeat.pingTimeout = Number(arg("ping-timeout"));

class AuthError extends Error {
  constructor(message, code) {
    super(message);
    this.data = { code };
  }
}

function b64url(buf) {
  return Buffer.from(buf).toString("base64url");
}

// verify checks an HS256 JWT and returns its claims, or throws an AuthError.
function verify(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) throw new AuthError("Unauthorized: Invalid token", "INVALID_TOKEN");
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    throw new AuthError("Unauthorized: Invalid token", "INVALID_TOKEN");
  }
  const want = Buffer.from(b64url(createHmac("sha256", secret).update(parts[0] + "." + parts[1]).digest()));
  const got = Buffer.from(parts[2]);
  if (header.alg !== "HS256" || got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new AuthError("Unauthorized: Invalid token", "INVALID_TOKEN");
  }
  if (typeof claims.exp !== "number") throw new AuthError("Unauthorized: Invalid token", "INVALID_TOKEN");
  if (claims.exp * 1000 <= Date.now()) throw new AuthError("Unauthorized: Token expired", "TOKEN_EXPIRED");
  const userId = typeof claims.sub === "string" ? claims.sub : "";
  const orgId = claims.orgId || claims.organizationId;
  if (!userId) throw new AuthError("Unauthorized: Token has no user", "NO_USER");
  if (typeof orgId !== "string" || !orgId) throw new AuthError("Unauthorized: Token has no organization", "NO_ORGANIZATION");
  return { userId, orgId, exp: claims.exp };
}

function bearer(v) {
  if (typeof v !== "string") return "";
  v = v.trim();
  return v.toLowerCase().startsWith("bearer ") ? v.slice(7).trim() : v;
}

const httpServer = createServer(serveAPI);
const io = new Server(httpServer, {
  serveClient: false,
  ...heartbeat,
  ...(process.argv.includes("--recovery") && {
    connectionStateRecovery: { maxDisconnectionDuration: 60_000, skipMiddlewares: true },
  }),
});
const nsp = io.of("/events");

nsp.use((socket, next) => {
  const hs = socket.handshake;
  let token = "";
  if (hs.auth && hs.auth.token != null) token = bearer(hs.auth.token);
  else if (hs.headers.authorization) token = bearer(hs.headers.authorization);
  else if (hs.query && hs.query.token) token = bearer(hs.query.token);
  if (!token) return next(new AuthError("Unauthorized: No token provided", "NO_TOKEN"));
  try {
    socket.data = verify(token);
  } catch (e) {
    return next(e);
  }
  next();
});

// The catalog's domains as far as subscriptions need them: any "<domain>:<name>" is an event.
const eventPattern = /^[a-z][a-z0-9]*:[a-z][a-z0-9_]*$/;
const wildcardPattern = /^[a-z][a-z0-9]*:\*$/;

// Subscriptions are rooms, so that a broadcast reaches exactly the subscribed sockets and connection state
// recovery replays what a socket missed by its rooms: "<audience>|<pattern>", the audience being the
// organization or the user within it, the pattern an event, "<domain>:*", or "*" (never subscribed).
function audiences(data) {
  return ["org:" + data.orgId, "user:" + data.userId + "|org:" + data.orgId];
}

function setSubscriptions(socket, subs) {
  for (const room of [...socket.rooms]) if (room.includes("|")) socket.leave(room);
  socket.data.subs = subs;
  const patterns = subs === null ? ["*"] : [...subs];
  for (const a of audiences(socket.data)) for (const p of patterns) socket.join(a + "|" + p);
}

function expiresAt(exp) {
  return new Date(exp * 1000).toISOString();
}

// arm (re)starts the socket's expiry timers for its current token.
function arm(socket) {
  clearTimeout(socket.data.warnTimer);
  clearTimeout(socket.data.expireTimer);
  const left = socket.data.exp * 1000 - Date.now();
  const warnIn = left - Math.min(warning, left / 2);
  socket.data.warnTimer = setTimeout(() => {
    socket.emit("auth:expiring", { message: "Token expires soon", expiresAt: expiresAt(socket.data.exp) });
  }, Math.max(0, warnIn));
  socket.data.expireTimer = setTimeout(() => {
    socket.emit("auth:expired", { message: "Unauthorized: Token expired", code: "TOKEN_EXPIRED", expiresAt: expiresAt(socket.data.exp) });
    socket.disconnect();
  }, Math.max(0, left));
}

nsp.on("connection", (socket) => {
  const { userId, orgId, exp } = socket.data;
  if (!socket.recovered) setSubscriptions(socket, null);
  arm(socket);
  socket.once("disconnect", () => {
    clearTimeout(socket.data.warnTimer);
    clearTimeout(socket.data.expireTimer);
  });
  socket.emit("connected", {
    message: "Successfully connected to real-time updates",
    userId,
    organizationId: orgId,
    expiresAt: expiresAt(exp),
  });

  for (const kind of ["subscribe", "unsubscribe"]) {
    socket.on(kind, (req, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const list = req && Array.isArray(req.events) ? req.events : null;
      if (!list || list.length === 0 || list.some((e) => typeof e !== "string")) {
        return reply({ success: false, error: `${kind} expects {events: [...]}`, code: "invalid_request" });
      }
      const unknown = list.filter((e) => e !== "*" && !eventPattern.test(e) && !wildcardPattern.test(e));
      if (unknown.length) return reply({ success: false, error: `unknown events: ${unknown.join(", ")}`, code: "unknown_event" });
      let subs = socket.data.subs;
      if (kind === "subscribe") {
        subs = list.includes("*") ? null : new Set([...(subs ?? []), ...list]);
      } else if (list.includes("*")) {
        subs = new Set();
      } else if (subs !== null) {
        subs = new Set([...subs].filter((e) => !list.includes(e)));
      } else {
        // Unsubscribing from everything else than these is not expressible without the catalog.
        return reply({ success: false, error: "unsubscribe needs a subscription first", code: "invalid_request" });
      }
      setSubscriptions(socket, subs);
      reply({
        success: true,
        [kind === "subscribe" ? "subscribedTo" : "unsubscribedFrom"]: list,
        subscriptions: subs === null ? ["*"] : [...subs],
      });
    });
  }

  socket.on("auth:refresh", (req, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    const token = typeof req === "string" ? req : req && req.token;
    let claims;
    try {
      claims = verify(bearer(token));
    } catch (e) {
      return reply({ ok: false, error: e.message, code: e.data.code });
    }
    if (claims.userId !== socket.data.userId || claims.orgId !== socket.data.orgId) {
      return reply({ ok: false, error: "Unauthorized: Token belongs to another user or organization", code: "IDENTITY_MISMATCH" });
    }
    socket.data.exp = claims.exp;
    arm(socket);
    reply({ ok: true, expiresAt: expiresAt(claims.exp) });
  });
});

// publish sends a payload to the sockets of its organization (or of its user, for notification:*) that
// subscribed to it.
function publish(event, payload) {
  const audience = event.startsWith("notification:") && payload.userId
    ? "user:" + payload.userId + "|org:" + payload.organizationId
    : "org:" + payload.organizationId;
  const patterns = ["*", event, event.split(":")[0] + ":*"];
  nsp.to(patterns.map((p) => audience + "|" + p)).emit(event, payload);
}

function send(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

let nextID = 0;

function serveAPI(req, res) {
  if (req.url !== "/api/v1/events") return send(res, 404, { code: "not_found", message: "not found" });
  if (req.method !== "POST") return send(res, 405, { code: "method_not_allowed", message: "use POST" });
  if (bearer(req.headers.authorization || "") !== apiKey) return send(res, 403, { code: "forbidden", message: "invalid API key" });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(res, 400, { code: "invalid_json", message: "request body is not valid JSON" });
    }
    const p = body && body.payload;
    if (typeof body.event !== "string" || !p || typeof p.organizationId !== "string") {
      return send(res, 400, { code: "invalid_request", message: "want {event, payload: {organizationId, ...}}" });
    }
    if (p.timestamp === undefined) p.timestamp = new Date().toISOString();
    publish(body.event, p);
    send(res, 202, { id: "peer-" + nextID++ });
  });
}

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${httpServer.address().port}\n`);
});

process.stdin.resume();
process.stdin.on("end", () => {
  io.close();
  process.exit(0);
});
