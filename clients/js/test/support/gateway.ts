// A real gateway process for the tests: the realtime binary, on a free local
// port, with a known JWT secret and API key, in development mode (so that
// POST /dev/token and the console exist).

import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { inject } from 'vitest';

export const SECRET = 'js-tests-secret-0123456789abcdef0123456789';
export const API_KEY = 'js-tests-api-key-0123456789abcdef';

export interface GatewayOptions {
  /** Extra environment variables (JWT_LEEWAY, TOKEN_EXPIRY_WARNING, ...). */
  env?: Record<string, string>;
  /** Listen on this port (default: a free one). */
  port?: number;
}

export type LogLine = Record<string, unknown> & { msg?: string };

export class Gateway {
  readonly logs: LogLine[] = [];
  port = 0;
  private proc: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);
  private stderrText = '';

  private constructor(private readonly options: GatewayOptions) {}

  static async start(options: GatewayOptions = {}): Promise<Gateway> {
    const g = new Gateway(options);
    await g.launch(options.port ?? 0);
    return g;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Everything the process wrote on stderr (for failure messages). */
  get output(): string {
    return this.stderrText;
  }

  private async launch(port: number): Promise<void> {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      JWT_SECRET: SECRET,
      API_KEYS: API_KEY,
      DEV_MODE: 'true',
      SHUTDOWN_TIMEOUT: '5s',
      ...this.options.env,
    };
    const proc = spawn(inject('gatewayBinary'), ['serve', '--addr', `127.0.0.1:${port}`, '--log-format', 'json'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway not listening after 20s:\n${this.stderrText}`)), 20_000);
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited (${code}) before listening:\n${this.stderrText}`));
      });
      createInterface({ input: proc.stderr! }).on('line', (line) => {
        this.stderrText += line + '\n';
        if (!line.startsWith('{')) return; // the development banner
        let entry: LogLine;
        try {
          entry = JSON.parse(line) as LogLine;
        } catch {
          return;
        }
        this.logs.push(entry);
        if (entry.msg === 'listening') {
          clearTimeout(timer);
          resolve(Number(String(entry['addr']).split(':').pop()));
        }
      });
    });
    this.port = await listening;
    await this.waitReady();
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.ok) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`gateway not ready after 10s:\n${this.stderrText}`);
      await sleep(25);
    }
  }

  /** SIGTERM, and wait for the exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const code = await Promise.race([this.exited, sleep(15_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      proc.kill('SIGKILL');
      throw new Error(`gateway still running 15s after SIGTERM:\n${this.stderrText}`);
    }
  }

  /** Stops the process and starts a new one on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch(this.port);
  }

  /** A token signed with the gateway's secret. */
  token(claims: { sub?: string; orgId?: string; [k: string]: unknown }, ttlSeconds = 3600): string {
    return mintToken(claims, ttlSeconds);
  }

  /** Publishes one event through the HTTP API; returns its id. */
  async publish(event: string, payload: Record<string, unknown>, target?: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${this.url}/api/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(target ? { event, payload, target } : { event, payload }),
    });
    const body = (await res.json()) as { id?: string; message?: string };
    if (res.status !== 202) throw new Error(`publish ${event}: ${res.status} ${JSON.stringify(body)}`);
    return body.id!;
  }

  /** POSTs to the control API (disconnects, revocations); returns the status and JSON body. */
  async control(path: string, body: Record<string, unknown> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** Log lines with this message (and these fields). */
  logsOf(msg: string, fields: Record<string, unknown> = {}): LogLine[] {
    return this.logs.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  /** Waits until a log line with this message (and fields) exists. */
  async waitLog(msg: string, fields: Record<string, unknown> = {}, count = 1, timeoutMs = 10_000): Promise<LogLine[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logsOf(msg, fields);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(`no ${count}× log ${msg} ${JSON.stringify(fields)} after ${timeoutMs} ms:\n${this.stderrText}`);
      }
      await sleep(20);
    }
  }
}

/** An HS256 token signed with SECRET; exp = now + ttlSeconds (fractional allowed). */
export function mintToken(claims: { sub?: string; orgId?: string; [k: string]: unknown }, ttlSeconds = 3600): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Date.now() / 1000;
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ iat: Math.floor(now), exp: now + ttlSeconds, jti: randomUUID(), ...claims });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until check() returns a truthy value (or throws after timeoutMs). */
export async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A unique id for a test's organization or entity. */
export function uid(prefix: string): string {
  return `${prefix}_${randomUUID().slice(0, 8)}`;
}

/**
 * An HTTP proxy in front of a gateway that refuses WebSocket upgrades, as some
 * corporate proxies do: clients must fall back to long-polling.
 */
export async function startNoWebSocketProxy(target: Gateway): Promise<{ url: string; close: () => Promise<void> }> {
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: target.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502).end();
    });
    req.pipe(upstream);
  });
  server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TCP proxy in front of a gateway whose link can be cut, as a network
 * failure would: cut() drops every connection and refuses new ones (clients
 * keep retrying) until restore().
 */
export async function startCuttableProxy(target: Gateway): Promise<{ url: string; cut: () => void; restore: () => void; close: () => Promise<void> }> {
  const net = await import('node:net');
  const open = new Set<import('node:net').Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      down = true;
      for (const s of open) s.destroy();
    },
    restore: () => {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
