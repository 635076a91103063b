// redis-emitter.mjs: @socket.io/redis-emitter 5.1 publishing on command, for the Go tests of
// socketio/redisadapter. Driven over JSON lines (see redis-node.mjs):
//
//   node redis-emitter.mjs --redis redis://127.0.0.1:PORT [--key socket.io]
//
// Commands (all take "nsp", default "/"): emit {rooms, except, volatile, compress, event, args},
// serverSideEmit {args}, socketsJoin {rooms, except, join}, socketsLeave {rooms, except, leave},
// disconnectSockets {rooms, except, close}. Binary arguments are {"$bin":"<base64>"}.

import { createInterface } from "node:readline";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

console.log = console.error;

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(v.$bin, "base64");
    const out = {};
    for (const [k, val] of Object.entries(v)) out[k] = fromWire(val);
    return out;
  }
  return v;
}

const client = createClient({ url: arg("redis") });
client.on("error", (err) => console.error("redis error:", err.message));
await client.connect();
const emitter = new Emitter(client, { key: arg("key", "socket.io") });

function target(cmd) {
  let op = emitter.of(cmd.nsp ?? "/");
  if (cmd.rooms && cmd.rooms.length) op = op.to(cmd.rooms);
  if (cmd.except && cmd.except.length) op = op.except(cmd.except);
  return op;
}

const commands = {
  emit(cmd) {
    let op = target(cmd);
    if (cmd.volatile) op = op.volatile;
    if (cmd.compress === false) op = op.compress(false);
    op.emit(cmd.event, ...fromWire(cmd.args ?? []));
  },
  serverSideEmit(cmd) {
    emitter.of(cmd.nsp ?? "/").serverSideEmit(...fromWire(cmd.args ?? []));
  },
  socketsJoin(cmd) {
    target(cmd).socketsJoin(cmd.join);
  },
  socketsLeave(cmd) {
    target(cmd).socketsLeave(cmd.leave);
  },
  disconnectSockets(cmd) {
    target(cmd).disconnectSockets(!!cmd.close);
  },
};

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (line.trim() === "") return;
  const cmd = JSON.parse(line);
  const fn = Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!fn) return send({ type: "reply", id: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
  try {
    fn(cmd);
    send({ type: "reply", id: cmd.id, ok: true, result: null });
  } catch (err) {
    send({ type: "reply", id: cmd.id, ok: false, error: err?.message ?? String(err) });
  }
});
rl.on("close", async () => {
  await client.quit().catch(() => {});
  process.exit(0);
});

send({ type: "ready" });
