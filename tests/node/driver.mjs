// driver.mjs: drives real socket.io-client instances on behalf of Go tests.
//
// Protocol: JSON lines. Commands arrive on stdin, one JSON object per line, each with a numeric "id"
// and a "cmd". Every command gets exactly one reply on stdout:
//
//   {"type":"reply","id":N,"ok":true,"result":...}
//   {"type":"reply","id":N,"ok":false,"error":"..."}
//
// Besides replies, stdout carries asynchronous messages about the clients (connect, connect_error,
// disconnect, upgrade, reconnect_*, event), each with the "client" name. Nothing else may be written
// to stdout: diagnostics go to stderr (console.log is redirected there below).
//
// Binary data cannot travel in JSON, so everywhere (command args, event args, ack args, error data) a
// Buffer / ArrayBuffer / typed array is represented as {"$bin":"<base64>"}, at any depth.
//
// The Go side of this protocol is internal/testutil/sioclient.

import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { io, Manager } from "socket.io-client";

// Keep stdout clean for the protocol: anything a library prints goes to stderr.
console.log = console.error;
console.info = console.error;

const require = createRequire(import.meta.url);
const clientVersion = require("socket.io-client/package.json").version;

// ---------------------------------------------------------------------------------------------------------
// Output

let exiting = false;

function send(msg) {
  if (exiting) return;
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function log(...args) {
  console.error("[driver]", ...args);
}

// ---------------------------------------------------------------------------------------------------------
// Binary <-> JSON

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function binToBase64(v) {
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString("base64");
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// toWire converts a value received from socket.io into something JSON.stringify renders faithfully.
function toWire(v) {
  if (v === undefined) return null;
  if (isBinary(v)) return { $bin: binToBase64(v) };
  if (Array.isArray(v)) return v.map(toWire);
  if (isPlainObject(v)) {
    const out = {};
    for (const [k, val] of Object.entries(v)) {
      if (val !== undefined) out[k] = toWire(val);
    }
    return out;
  }
  return v;
}

// fromWire converts a value from a command into what socket.io should send ({"$bin"} → Buffer).
function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (isPlainObject(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
      return Buffer.from(v.$bin, "base64");
    }
    const out = {};
    for (const [k, val] of Object.entries(v)) out[k] = fromWire(val);
    return out;
  }
  return v;
}

// describe turns the "description" of a disconnect (a string, an Error, a TransportError whose own
// description is an event or error, or a {description, context} object) into a string or null.
function describe(d) {
  if (d === undefined || d === null) return null;
  if (typeof d === "string") return d;
  if (d instanceof Error) {
    const inner = d.description !== undefined ? describe(d.description) : null;
    return inner ? `${d.message}: ${inner}` : d.message;
  }
  if (typeof d === "object") {
    if (typeof d.description === "string") return d.description;
    if (typeof d.message === "string") return d.message; // e.g. a ws ErrorEvent
    if (typeof d.type === "string") return d.type;
  }
  return String(d);
}

// ---------------------------------------------------------------------------------------------------------
// State

/** @type {Map<string, {name: string, socket: any, manager: any, autoAck: any[] | null}>} */
const clients = new Map();
/** Named managers shared by several namespace sockets ("manager" in the connect command). */
const namedManagers = new Map();
/** Per Manager instance: the driver clients that use it (several when shared or multiplexed). */
const managerClients = new Map();
/** Pending server→client ack callbacks, by driver-wide ack id. */
const acks = new Map();
let nextAckId = 1;

function getClient(cmd) {
  const c = clients.get(cmd.client);
  if (!c) throw new Error(`unknown client ${JSON.stringify(cmd.client)}`);
  return c;
}

function forEachClientOf(manager, fn) {
  const set = managerClients.get(manager);
  if (!set) return;
  for (const name of set) {
    const c = clients.get(name);
    if (c) fn(c);
  }
}

// watchManager subscribes once per Manager to the events that concern all its sockets: reconnection and
// transport upgrades. The engine is replaced on every (re)connection, so the "upgrade" listener is
// attached each time the manager opens; the upgrade probe only starts after the engine's own "open",
// which is what triggers the manager's "open", so no upgrade can be missed.
function watchManager(manager, clientName) {
  let set = managerClients.get(manager);
  if (set) {
    set.add(clientName);
    return;
  }
  set = new Set([clientName]);
  managerClients.set(manager, set);

  const fanOut = (msg) => forEachClientOf(manager, (c) => send({ ...msg, client: c.name }));
  manager.on("open", () => {
    const engine = manager.engine;
    engine.on("upgrade", (transport) => fanOut({ type: "upgrade", transport: transport.name }));
  });
  manager.on("reconnect_attempt", (attempt) => fanOut({ type: "reconnect_attempt", attempt }));
  manager.on("reconnect", (attempt) => fanOut({ type: "reconnect", attempt }));
  manager.on("reconnect_error", (err) => fanOut({ type: "reconnect_error", message: err?.message ?? String(err) }));
  manager.on("reconnect_failed", () => fanOut({ type: "reconnect_failed" }));
}

function unwatchManager(manager, clientName) {
  const set = managerClients.get(manager);
  if (!set) return;
  set.delete(clientName);
  if (set.size === 0) {
    managerClients.delete(manager);
    manager.removeAllListeners();
    for (const [name, m] of namedManagers) {
      if (m === manager) namedManagers.delete(name);
    }
  }
}

function transportName(socket) {
  return socket.io.engine?.transport?.name ?? null;
}

function watchSocket(c) {
  const { socket, name } = c;
  socket.on("connect", () => {
    send({
      type: "connect",
      client: name,
      sid: socket.id,
      recovered: !!socket.recovered, // undefined when the server has no connection state recovery
      transport: transportName(socket),
    });
  });
  socket.on("connect_error", (err) => {
    send({
      type: "connect_error",
      client: name,
      message: err?.message ?? String(err),
      data: toWire(err?.data) ?? null,
      description: err instanceof Error && err.description !== undefined ? describe(err.description) : null,
    });
  });
  socket.on("disconnect", (reason, description) => {
    send({ type: "disconnect", client: name, reason, description: describe(description) });
  });
  socket.onAny((event, ...args) => {
    // The server asked for an acknowledgement: socket.io-client passes the ack callback last.
    let ack = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") ack = args.pop();
    const msg = { type: "event", client: name, event, args: toWire(args) };
    if (ack && !c.autoAck) {
      const ackId = nextAckId++;
      acks.set(ackId, { fn: ack, client: name });
      msg.ackId = ackId;
    }
    send(msg);
    if (ack && c.autoAck) ack(...fromWire(c.autoAck));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Commands

const commands = {
  connect(cmd) {
    const name = cmd.client;
    if (typeof name !== "string" || name === "") throw new Error("connect: missing client name");
    if (clients.has(name)) throw new Error(`client ${JSON.stringify(name)} already exists`);
    if (typeof cmd.url !== "string") throw new Error("connect: missing url");
    const opts = fromWire(cmd.opts ?? {});
    const autoAck = Array.isArray(cmd.autoAck) ? cmd.autoAck : null;

    let socket;
    let manager;
    if (cmd.manager) {
      // Several namespace sockets over one Engine.IO connection.
      const u = new URL(cmd.url);
      const nsp = u.pathname && u.pathname !== "" ? u.pathname : "/";
      manager = namedManagers.get(cmd.manager);
      if (manager && manager.nsps[nsp]) {
        // Manager.socket() would hand back the very same Socket object.
        throw new Error(`manager ${JSON.stringify(cmd.manager)} already has a socket for namespace ${nsp}`);
      }
      if (!manager) {
        manager = new Manager(u.origin + u.search, opts);
        namedManagers.set(cmd.manager, manager);
      }
      // The socket needs auth, and its own options (ackTimeout, retries) live on the socket.
      socket = manager.socket(nsp, opts);
    } else {
      socket = io(cmd.url, { forceNew: true, ...opts });
      manager = socket.io;
    }
    const c = { name, socket, manager, autoAck };
    clients.set(name, c);
    watchManager(manager, name);
    watchSocket(c);
    return { client: name };
  },

  emit(cmd, reply) {
    const c = getClient(cmd);
    if (typeof cmd.event !== "string") throw new Error("emit: missing event name");
    const args = fromWire(cmd.args ?? []);
    if (!cmd.ack) {
      c.socket.emit(cmd.event, ...args);
      return null;
    }
    // Not emitWithAck(): its promise resolves with the first ack argument only, and the Go side wants
    // them all. socket.timeout(t).emit(..., cb) is what emitWithAck is built on: cb(err, ...ackArgs).
    const timeout = typeof cmd.timeout === "number" ? cmd.timeout : 5000;
    c.socket.timeout(timeout).emit(cmd.event, ...args, (err, ...ackArgs) => {
      if (err) reply(false, err.message ?? String(err));
      else reply(true, toWire(ackArgs));
    });
    return reply.later;
  },

  ack(cmd) {
    const entry = acks.get(cmd.ackId);
    if (!entry) throw new Error(`unknown ackId ${JSON.stringify(cmd.ackId)}`);
    acks.delete(cmd.ackId);
    entry.fn(...fromWire(cmd.args ?? []));
    return null;
  },

  disconnect(cmd) {
    getClient(cmd).socket.disconnect();
    return null;
  },

  connectAgain(cmd) {
    getClient(cmd).socket.connect();
    return null;
  },

  closeEngine(cmd) {
    const c = getClient(cmd);
    const engine = c.socket.io.engine;
    if (!engine) throw new Error("closeEngine: the client has no engine");
    engine.close();
    return null;
  },

  state(cmd) {
    const { socket } = getClient(cmd);
    return {
      connected: socket.connected,
      sid: socket.id ?? null,
      recovered: !!socket.recovered,
      transport: transportName(socket),
      active: socket.active,
    };
  },

  setAuth(cmd) {
    getClient(cmd).socket.auth = fromWire(cmd.auth ?? {});
    return null;
  },

  close(cmd) {
    closeClient(getClient(cmd));
    return null;
  },

  quit(cmd, reply) {
    for (const c of [...clients.values()]) closeClient(c);
    reply(true, null);
    exiting = true;
    // Exit once the reply is flushed.
    process.stdout.write("", () => process.exit(0));
    return reply.later;
  },
};

function closeClient(c) {
  try {
    c.socket.disconnect(); // emits "disconnect" (if connected) before we forget the client
  } catch (err) {
    log(`closing ${c.name}:`, err);
  }
  c.socket.removeAllListeners();
  c.socket.offAny();
  clients.delete(c.name);
  unwatchManager(c.manager, c.name);
  for (const [id, entry] of acks) {
    if (entry.client === c.name) acks.delete(id);
  }
}

function handle(line) {
  if (line.trim() === "") return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    send({ type: "driver_error", message: `invalid JSON command: ${err.message}`, line: line.slice(0, 200) });
    return;
  }
  const id = cmd?.id;
  let replied = false;
  const reply = (ok, value) => {
    if (replied) return;
    replied = true;
    send(ok ? { type: "reply", id, ok: true, result: value ?? null } : { type: "reply", id, ok: false, error: value });
  };
  reply.later = Symbol("later");

  const fn = Object.hasOwn(commands, cmd?.cmd) ? commands[cmd.cmd] : null;
  if (!fn) {
    reply(false, `unknown command ${JSON.stringify(cmd?.cmd)}`);
    return;
  }
  try {
    const result = fn(cmd, reply);
    if (result !== reply.later) reply(true, result);
  } catch (err) {
    reply(false, err?.message ?? String(err));
  }
}

// An exception in a socket.io callback must not take the other clients down with it.
process.on("uncaughtException", (err) => log("uncaught exception:", err));
process.on("unhandledRejection", (err) => log("unhandled rejection:", err));

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", handle);
rl.on("close", () => {
  // stdin closed: the Go test is done (or gone). Close the clients politely and leave.
  for (const c of [...clients.values()]) closeClient(c);
  exiting = true;
  process.stdout.write("", () => process.exit(0));
});

send({ type: "ready", pid: process.pid, node: process.versions.node, socketIoClient: clientVersion });
