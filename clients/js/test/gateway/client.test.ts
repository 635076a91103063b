// createRealtimeClient against a real gateway process.

import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';

import {
  createRealtimeClient,
  type HistoryGapPayload,
  InvoiceEvent,
  type InvoicePayload,
  type RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeState,
  type SessionRevokedPayload,
} from '../../src/index.js';
import { Gateway, sleep, startCuttableProxy, startNoWebSocketProxy, uid, waitFor } from '../support/gateway.js';

let gw: Gateway;
const clients: RealtimeClient[] = [];

beforeAll(async () => {
  gw = await Gateway.start();
});
afterAll(async () => {
  await gw?.stop();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

function client(options: RealtimeClientOptions): RealtimeClient {
  const c = createRealtimeClient({
    url: gw.url,
    reconnection: { delay: 50, maxDelay: 300 },
    logger: null,
    ...options,
  });
  clients.push(c);
  return c;
}

async function waitStatus(c: RealtimeClient, status: RealtimeState['status'], timeoutMs = 5_000): Promise<RealtimeState> {
  return waitFor(() => (c.getState().status === status ? c.getState() : null), timeoutMs, `status ${status} (now ${c.getState().status}, error ${c.getState().error?.code})`);
}

describe('createRealtimeClient', () => {
  it('connects to origin + /events and receives typed events of its organization', async () => {
    const org = uid('org');
    const user = uid('user');
    const getToken = vi.fn(() => gw.token({ sub: user, orgId: org }));
    // A URL with a path (the seed's NEXT_PUBLIC_API_URL=…/api/v1): only the origin is used.
    const c = client({ url: `${gw.url}/api/v1`, getToken });
    expect(c.url).toBe(`${gw.url}/events`);

    const received: InvoicePayload[] = [];
    const off = c.on(InvoiceEvent.PAID, (p) => {
      expectTypeOf(p).toEqualTypeOf<InvoicePayload>();
      received.push(p);
    });
    const state = await waitStatus(c, 'connected');
    expect(state.connected).toBe(true);
    expect(state.error).toBeNull();
    expect(state.transport).toBe('websocket');
    expect(state.recovered).toBe(false);
    expect(getToken).toHaveBeenCalledTimes(1);
    await waitFor(() => c.getState().identity, 2_000, 'identity');
    expect(c.getState().identity).toEqual({ userId: user, organizationId: org });
    expect(c.getState().expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    await gw.publish('invoice:paid', { organizationId: uid('other_org'), invoiceId: 'inv_other' });
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'inv_1', amount: 12.5, currency: 'EUR' });
    await waitFor(() => received.length === 1, 2_000, 'invoice:paid');
    await sleep(100);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ organizationId: org, invoiceId: 'inv_1', amount: 12.5, currency: 'EUR' });
    expect(received[0]!.timestamp).toMatch(/Z$/);

    off();
    expect(c.listenerCount(InvoiceEvent.PAID)).toBe(0);
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'inv_2' });
    await sleep(150);
    expect(received).toHaveLength(1);
  });

  it('falls back to long-polling when WebSocket is blocked', async () => {
    const proxy = await startNoWebSocketProxy(gw);
    try {
      const org = uid('org');
      const c = client({ url: proxy.url, getToken: () => gw.token({ sub: 'u', orgId: org }) });
      const state = await waitStatus(c, 'connected', 10_000);
      expect(state.transport).toBe('polling');
      const got: string[] = [];
      c.on('expense:created', (p) => got.push(p.expenseId));
      await gw.publish('expense:created', { organizationId: org, expenseId: 'exp_1' });
      await waitFor(() => got.length === 1, 3_000, 'expense over polling');
      c.disconnect();
    } finally {
      await proxy.close();
    }
  });

  it('gives every handler of an event its events, and isolates a throwing handler', async () => {
    const org = uid('org');
    const errors: unknown[] = [];
    const g = globalThis as { reportError?: unknown };
    const saved = g.reportError;
    delete g.reportError; // as in Node: errors go to the logger
    try {
      const c = client({
        getToken: () => gw.token({ sub: 'u', orgId: org }),
        logger: { warn: () => {}, error: (e: unknown) => errors.push(e) },
      });
      const a: string[] = [];
      const b: string[] = [];
      const all: string[] = [];
      c.on('document:uploaded', () => {
        throw new Error('boom');
      });
      c.on('document:uploaded', (p) => a.push(p.documentId));
      c.on('document:uploaded', (p) => b.push(p.documentId));
      c.onAny((event) => all.push(event));
      await waitStatus(c, 'connected');
      await gw.publish('document:uploaded', { organizationId: org, documentId: 'doc_1' });
      await waitFor(() => a.length === 1 && b.length === 1, 2_000, 'both handlers');
      expect(all).toContain('connected');
      expect(all).toContain('document:uploaded');
      expect(errors).toHaveLength(1);
      expect((errors[0] as Error).message).toBe('boom');
    } finally {
      if (saved !== undefined) g.reportError = saved;
    }
  });

  it('filters on the server with subscribe/unsubscribe and their acknowledgements', async () => {
    const org = uid('org');
    const c = client({ getToken: () => gw.token({ sub: 'u', orgId: org }) });
    const got: string[] = [];
    c.onAny((event) => {
      if (event.includes(':') && !event.startsWith('auth:')) got.push(event);
    });
    await waitStatus(c, 'connected');
    expect(c.getState().subscriptions).toBeNull();

    const ack = await c.subscribe(['invoice:*', 'bank:sync_error']);
    expect(ack).toMatchObject({ success: true, subscribedTo: ['invoice:*', 'bank:sync_error'] });
    if (!ack.success) throw new Error('unreachable');
    expect(ack.subscriptions).toContain('invoice:paid');
    expect(ack.subscriptions).toContain('bank:sync_error');
    expect(ack.subscriptions).not.toContain('expense:created');
    expect(c.getState().subscriptions).toEqual(ack.subscriptions);

    const un = await c.unsubscribe('invoice:overdue');
    expect(un).toMatchObject({ success: true, unsubscribedFrom: ['invoice:overdue'] });

    const bad = await c.subscribe(['nope:thing' as never]);
    expect(bad).toMatchObject({ success: false, code: 'unknown_event' });

    await gw.publish('expense:created', { organizationId: org, expenseId: 'e1' });
    await gw.publish('invoice:overdue', { organizationId: org, invoiceId: 'i0' });
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'i1' });
    await gw.publish('bank:sync_error', { organizationId: org, error: 'x' });
    await waitFor(() => got.length >= 2, 2_000, 'filtered events');
    await sleep(150);
    expect(got).toEqual(['invoice:created', 'bank:sync_error']);

    const back = await c.subscribe('*');
    expect(back.success).toBe(true);
    expect(c.getState().subscriptions).toBeNull();
  });

  it('filters payloads on the server with subscribe(events, { filter })', async () => {
    const org = uid('org');
    const c = client({ getToken: () => gw.token({ sub: 'u', orgId: org }) });
    const got: string[] = [];
    c.onAny((event, p) => {
      if (event.startsWith('invoice:') || event.startsWith('expense:')) got.push(`${event} ${(p as { amount?: number }).amount ?? '-'}`);
    });
    await waitStatus(c, 'connected');

    const filter = "payload.amount > 1000.0 && payload.currency == 'EUR'";
    const ack = await c.subscribe('invoice:*', { filter });
    expect(ack).toMatchObject({ success: true, subscribedTo: ['invoice:*'], filter });
    expect(c.getState().subscriptions).toEqual([
      'invoice:created', 'invoice:updated', 'invoice:paid', 'invoice:cancelled', 'invoice:sent', 'invoice:overdue',
    ]);
    expect(await c.subscribe('expense:approved', { filter: 'payload.amount < 10.0' })).toMatchObject({ success: true });

    // Refused filters say why, and change nothing.
    const unknown = await c.subscribe(['invoice:*', 'notification:new'], { filter: 'payload.amount > 1000.0' });
    expect(unknown).toMatchObject({ success: false, code: 'invalid_filter' });
    if (unknown.success) throw new Error('unreachable');
    expect(unknown.error).toContain("notification:new (NotificationPayload): 1:8: undefined field 'amount'");
    expect(await c.subscribe('invoice:*', { filter: 'payload.amount' })).toMatchObject({
      success: false,
      code: 'invalid_filter',
      error: expect.stringContaining('it must be a bool'),
    });

    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'i1', amount: 5000, currency: 'EUR' });
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'i2', amount: 5000, currency: 'USD' });
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'i3', amount: 20 });
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'i4' }); // no amount: no match
    await gw.publish('expense:approved', { organizationId: org, expenseId: 'e1', amount: 5 });
    await gw.publish('expense:approved', { organizationId: org, expenseId: 'e2', amount: 50 });
    await gw.publish('invoice:sent', { organizationId: org, invoiceId: 'i5', amount: 1000.5, currency: 'EUR' });
    await waitFor(() => got.length >= 3, 2_000, 'filtered events');
    await sleep(150);
    expect(got).toEqual(['invoice:created 5000', 'expense:approved 5', 'invoice:sent 1000.5']);

    // A subscribe without a filter removes it for its events; unsubscribe removes events and filters.
    got.length = 0;
    expect(await c.subscribe('invoice:paid')).toMatchObject({ success: true });
    expect(await c.unsubscribe('expense:approved')).toMatchObject({ success: true });
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'i6', amount: 1 });
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'i7', amount: 1 });
    await gw.publish('expense:approved', { organizationId: org, expenseId: 'e3', amount: 1 });
    await waitFor(() => got.length >= 1, 2_000, 'unfiltered invoice:paid');
    await sleep(150);
    expect(got).toEqual(['invoice:paid 1']);
  });

  it('queues a subscription made before the connection and applies it once connected', async () => {
    const org = uid('org');
    const c = client({ getToken: () => gw.token({ sub: 'u', orgId: org }), autoConnect: false });
    const pending = c.subscribe('tax:*');
    c.connect();
    const ack = await pending;
    expect(ack.success).toBe(true);
    const got: string[] = [];
    c.onAny((e) => got.push(e));
    await gw.publish('hr:employee_added', { organizationId: org });
    await gw.publish('tax:return_submitted', { organizationId: org, returnId: 'r1' });
    await waitFor(() => got.includes('tax:return_submitted'), 2_000, 'tax event');
    expect(got).not.toContain('hr:employee_added');
  });

  it('reports an invalid token as status error with code INVALID_TOKEN, and does not retry', async () => {
    const getToken = vi.fn(() => 'not-a-jwt');
    const c = client({ getToken });
    const state = await waitStatus(c, 'error');
    expect(state.error?.code).toBe('INVALID_TOKEN');
    expect(state.error?.message).toBe('Unauthorized: Invalid token');
    expect(state.connected).toBe(false);
    await sleep(300);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(c.getState().status).toBe('error');
  });

  it('reports the other refusals with their codes', async () => {
    const noOrg = client({ getToken: () => gw.token({ sub: 'u' }) });
    expect((await waitStatus(noOrg, 'error')).error?.code).toBe('NO_ORGANIZATION');

    // No token anywhere: the default lookup finds nothing; nothing is sent.
    const none = client({});
    expect((await waitStatus(none, 'error')).error?.code).toBe('NO_TOKEN');

    // A wrong namespace.
    const ns = client({ namespace: '/nope', getToken: () => gw.token({ sub: 'u', orgId: 'o' }) });
    expect((await waitStatus(ns, 'error')).error?.code).toBe('INVALID_NAMESPACE');
  });

  it('retries an expired token with a fresh one from getToken, and stops when there is none', async () => {
    const org = uid('org');
    const expired = gw.token({ sub: 'u', orgId: org }, -120);
    const tokens = [expired, gw.token({ sub: 'u', orgId: org })];
    const getToken = vi.fn(() => tokens.shift() ?? expired);
    const c = client({ getToken });
    await waitStatus(c, 'connected');
    expect(getToken).toHaveBeenCalledTimes(2);

    // A static expired token: TOKEN_EXPIRED, and no loop.
    const stale = client({ token: expired });
    const state = await waitStatus(stale, 'error');
    expect(state.error?.code).toBe('TOKEN_EXPIRED');
  });

  it('uses the default token lookup: an explicit token, a cookie, then localStorage (the token inside JSON)', async () => {
    const org = uid('org');
    const token = gw.token({ sub: 'u_cookie', orgId: org });
    document.cookie = `op_auth=${encodeURIComponent(JSON.stringify({ a: token, r: 'refresh' }))}; path=/`;
    try {
      const c = client({});
      await waitStatus(c, 'connected');
      await waitFor(() => c.getState().identity?.userId === 'u_cookie', 2_000, 'identity');
    } finally {
      document.cookie = 'op_auth=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
    }
    localStorage.setItem('op_auth', JSON.stringify({ a: gw.token({ sub: 'u_storage', orgId: org }) }));
    try {
      const c = client({});
      await waitStatus(c, 'connected');
      await waitFor(() => c.getState().identity?.userId === 'u_storage', 2_000, 'identity');
    } finally {
      localStorage.removeItem('op_auth');
    }
  });

  it('disconnect() stops, connect() starts again with a new token', async () => {
    const org = uid('org');
    const getToken = vi.fn(() => gw.token({ sub: 'u', orgId: org }));
    const c = client({ getToken });
    await waitStatus(c, 'connected');
    c.disconnect();
    expect(c.getState().status).toBe('disconnected');
    await sleep(200);
    expect(c.getState().status).toBe('disconnected');
    c.connect();
    await waitStatus(c, 'connected');
    expect(getToken).toHaveBeenCalledTimes(2);
  });
});

describe('token refresh', () => {
  let short: Gateway;
  beforeAll(async () => {
    // No leeway: a token stops being accepted at its exp; the warning comes
    // halfway through a short token's life.
    short = await Gateway.start({ env: { JWT_LEEWAY: '0s', TOKEN_EXPIRY_WARNING: '1m' } });
  });
  afterAll(async () => {
    await short?.stop();
  });

  it('answers auth:expiring with a fresh token from getToken and stays connected past the first expiry', async () => {
    const org = uid('org');
    const user = uid('user');
    const ttls = [2, 3600];
    const getToken = vi.fn(() => short.token({ sub: user, orgId: org }, ttls.shift() ?? 3600));
    const c = createRealtimeClient({ url: short.url, getToken, logger: null, reconnection: { delay: 50, maxDelay: 300 } });
    clients.push(c);
    const seen: string[] = [];
    c.on('auth:expiring', () => seen.push('expiring'));
    c.on('auth:expired', () => seen.push('expired'));
    const disconnects: RealtimeState[] = [];
    c.onStateChange((s, p) => {
      if (p.connected && !s.connected) disconnects.push(s);
    });
    await waitStatus(c, 'connected');
    const firstExpiry = await waitFor(() => c.getState().expiresAt, 2_000, 'expiresAt');

    await waitFor(() => seen.includes('expiring'), 3_000, 'auth:expiring');
    await waitFor(() => c.getState().expiresAt !== firstExpiry, 2_000, 'a refreshed expiresAt');
    expect(getToken).toHaveBeenCalledTimes(2);
    await sleep(2_500); // past the first token's exp
    expect(c.getState().status).toBe('connected');
    expect(seen).toEqual(['expiring']);
    expect(disconnects).toHaveLength(0);
    await short.waitLog('gateway: client connected', { userId: user });
    expect(short.logsOf('gateway: client connected', { userId: user })).toHaveLength(1);

    // Events still flow on the same connection.
    const got: string[] = [];
    c.on('hr:leave_requested', (p) => got.push(p.leaveRequestId ?? ''));
    await short.publish('hr:leave_requested', { organizationId: org, leaveRequestId: 'lr_1' });
    await waitFor(() => got.length === 1, 2_000, 'event after refresh');
  });

  it('refreshToken() replaces the token; a token of another user is refused with IDENTITY_MISMATCH', async () => {
    const org = uid('org');
    const c = createRealtimeClient({ url: short.url, getToken: () => short.token({ sub: 'u1', orgId: org }, 600), logger: null });
    clients.push(c);
    await waitStatus(c, 'connected');
    const first = await waitFor(() => c.getState().expiresAt, 2_000, 'expiresAt');
    const res = await c.refreshToken(short.token({ sub: 'u1', orgId: org }, 7200));
    expect(res.ok).toBe(true);
    expect(c.getState().expiresAt).not.toBe(first);
    expect(Date.parse(c.getState().expiresAt!)).toBeGreaterThan(Date.now() + 3_600_000);

    const other = await c.refreshToken(short.token({ sub: 'u2', orgId: org }, 7200));
    expect(other).toMatchObject({ ok: false, code: 'IDENTITY_MISMATCH' });
    expect(c.getState().status).toBe('connected');

    c.disconnect();
    expect(await c.refreshToken()).toMatchObject({ ok: false, code: 'NOT_CONNECTED' });
  });

  it('reconnects with a new token after auth:expired when refreshing was not possible', async () => {
    const org = uid('org');
    const user = uid('user');
    const ttls = [1.5, 3600];
    const getToken = vi.fn(() => short.token({ sub: user, orgId: org }, ttls.shift() ?? 3600));
    const c = createRealtimeClient({
      url: short.url,
      getToken,
      autoRefresh: false,
      logger: null,
      reconnection: { delay: 50, maxDelay: 300 },
    });
    clients.push(c);
    const seen: string[] = [];
    c.on('auth:expired', (p) => seen.push(p.code));
    await waitStatus(c, 'connected');
    await waitFor(() => seen.length === 1, 4_000, 'auth:expired');
    expect(seen).toEqual(['TOKEN_EXPIRED']);
    await short.waitLog('gateway: client connected', { userId: user }, 2);
    await waitStatus(c, 'connected');
    expect(getToken).toHaveBeenCalledTimes(2);
  });
});

describe('control API', () => {
  it('reports an operator disconnect with its reason, and does not reconnect', async () => {
    const org = uid('org');
    const user = uid('user');
    const c = client({ getToken: () => gw.token({ sub: user, orgId: org }) });
    const seen: SessionRevokedPayload[] = [];
    c.on('session:revoked', (p) => {
      expectTypeOf(p).toEqualTypeOf<SessionRevokedPayload>();
      seen.push(p);
    });
    await waitStatus(c, 'connected');
    const res = await gw.control(`/api/v1/users/${user}/disconnect`, { organizationId: org, reason: 'You were removed from Acme' });
    expect(res).toEqual({ status: 200, body: { sockets: 1, nodes: 1, complete: true } });
    const state = await waitStatus(c, 'error');
    expect(state.error?.code).toBe('SESSION_REVOKED');
    expect(state.error?.message).toBe('You were removed from Acme');
    expect(state.revoked).toEqual({ message: 'Disconnected by the server', code: 'SESSION_REVOKED', reason: 'You were removed from Acme' });
    expect(seen).toHaveLength(1);
    await sleep(300); // longer than the reconnection delays: still not trying
    expect(c.getState().status).toBe('error');

    // The token is still valid: connecting again works, and clears revoked.
    c.connect();
    expect((await waitStatus(c, 'connected')).revoked).toBeNull();
  });

  it('reports a revoked token and is refused with TOKEN_REVOKED afterwards', async () => {
    const org = uid('org');
    const user = uid('user');
    const jti = uid('jti');
    const c = client({ getToken: () => gw.token({ sub: user, orgId: org, jti }) });
    await waitStatus(c, 'connected');
    const res = await gw.control('/api/v1/revocations', { jti });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ sockets: 1, complete: true, revocation: { jti } });
    const state = await waitStatus(c, 'error');
    expect(state.error?.code).toBe('TOKEN_REVOKED');
    expect(state.revoked?.code).toBe('TOKEN_REVOKED');

    c.connect(); // the same token: refused at connect, and not retried
    const refused = await waitFor(
      () => (c.getState().status === 'error' && c.getState().error?.message === 'Unauthorized: Token revoked' ? c.getState() : null),
      5_000,
      'connect_error TOKEN_REVOKED',
    );
    expect(refused.error?.code).toBe('TOKEN_REVOKED');
    await sleep(300);
    expect(c.getState().status).toBe('error');
  });
});

describe('server restart', () => {
  it('reconnects with a fresh token and restores its subscriptions', async () => {
    const restartable = await Gateway.start();
    try {
      const org = uid('org');
      const user = uid('user');
      const getToken = vi.fn(() => restartable.token({ sub: user, orgId: org }));
      const c = createRealtimeClient({ url: restartable.url, getToken, logger: null, reconnection: { delay: 100, maxDelay: 500 } });
      clients.push(c);
      const got: string[] = [];
      c.onAny((event, p) => {
        if (event.startsWith('integration:') || event.startsWith('invoice:')) got.push(`${event} ${(p as { integrationName?: string }).integrationName ?? ''}`.trim());
      });
      const statuses: string[] = [];
      c.onStateChange((s) => statuses.push(s.status));
      await waitStatus(c, 'connected');
      expect((await c.subscribe('integration:*')).success).toBe(true);

      await restartable.restart();
      await waitFor(() => statuses.includes('connecting') && c.getState().status === 'connected', 15_000, 'reconnection');
      await restartable.waitLog('gateway: client connected', { userId: user });
      expect(getToken).toHaveBeenCalledTimes(2);
      expect(c.getState().recovered).toBe(false); // a new server: events may have been missed
      // The new server knows nothing of the old subscription: the client restored it.
      await waitFor(() => c.getState().subscriptions !== null, 2_000, 'subscriptions');

      await restartable.publish('invoice:created', { organizationId: org, invoiceId: 'i1' });
      await restartable.publish('integration:sync_started', { organizationId: org, integrationName: 'datev' });
      await waitFor(() => got.length >= 1, 2_000, 'event after restart');
      await sleep(150);
      expect(got).toEqual(['integration:sync_started datev']);
    } finally {
      await restartable.stop();
    }
  });

  it('restores filtered subscriptions on a new server, and lets nothing unfiltered through meanwhile', async () => {
    const restartable = await Gateway.start();
    try {
      const org = uid('org');
      const user = uid('user');
      const c = createRealtimeClient({
        url: restartable.url,
        getToken: () => restartable.token({ sub: user, orgId: org }),
        logger: null,
        reconnection: { delay: 100, maxDelay: 500 },
      });
      clients.push(c);
      const got: number[] = [];
      c.on('invoice:paid', (p) => got.push(p.amount ?? -1));
      const others: string[] = [];
      c.onAny((event) => {
        if (event.includes(':') && !event.startsWith('auth:') && event !== 'invoice:paid') others.push(event);
      });
      await waitStatus(c, 'connected');
      expect((await c.subscribe('invoice:paid', { filter: 'payload.amount >= 1000.0' })).success).toBe(true);
      expect((await c.subscribe('hr:employee_added')).success).toBe(true);

      await restartable.restart();
      await waitFor(() => c.getState().status === 'connecting', 10_000, 'the disconnection');
      await waitStatus(c, 'connected', 15_000);
      // From the reconnection on, small payments and other events go out too: until the
      // client restored its subscriptions, the new server sends everything.
      for (let i = 0; i < 50 && !got.includes(5000); i++) {
        await restartable.publish('invoice:paid', { organizationId: org, invoiceId: `small${i}`, amount: 10 });
        await restartable.publish('expense:created', { organizationId: org, expenseId: `e${i}` });
        await restartable.publish('invoice:paid', { organizationId: org, invoiceId: `big${i}`, amount: 5000 });
        await sleep(20);
      }
      await restartable.publish('hr:employee_added', { organizationId: org, employeeId: 'h1' });
      await waitFor(() => others.includes('hr:employee_added'), 2_000, 'the unfiltered subscription');
      expect(got.length).toBeGreaterThan(0);
      expect(got.every((a) => a === 5000)).toBe(true);
      expect(others.every((e) => e === 'hr:employee_added')).toBe(true);
    } finally {
      await restartable.stop();
    }
  });

  it('loses no event across a dropped connection when the server keeps a recovery window', async () => {
    const g = await Gateway.start({ env: { RECOVERY_WINDOW: '1m' } });
    const proxy = await startCuttableProxy(g);
    try {
      const org = uid('org');
      const user = uid('user');
      const c = createRealtimeClient({ url: proxy.url, getToken: () => g.token({ sub: user, orgId: org }), logger: null, reconnection: { delay: 50, maxDelay: 200 } });
      clients.push(c);
      const got: string[] = [];
      c.onAny((event, p) => got.push(`${event} ${(p as { invoiceId?: string }).invoiceId ?? ''}`.trim()));
      await waitStatus(c, 'connected');
      expect((await c.subscribe('invoice:*')).success).toBe(true);
      await g.publish('invoice:created', { organizationId: org, invoiceId: 'i1' });
      await waitFor(() => got.includes('invoice:created i1'), 2_000, 'the first event');

      proxy.cut();
      await g.waitLog('gateway: client disconnected', { userId: user, reason: 'transport close' });
      await g.publish('invoice:paid', { organizationId: org, invoiceId: 'i2' });
      await g.publish('expense:created', { organizationId: org, expenseId: 'e1' }); // not subscribed
      await g.publish('invoice:paid', { organizationId: uid('other_org'), invoiceId: 'x1' });
      await g.publish('invoice:sent', { organizationId: org, invoiceId: 'i3' });
      proxy.restore();

      await g.waitLog('gateway: client connected', { userId: user, recovered: true }, 1, 10_000);
      await waitStatus(c, 'connected');
      expect(c.getState().recovered).toBe(true);
      await g.publish('invoice:overdue', { organizationId: org, invoiceId: 'i4' });
      await waitFor(() => got.includes('invoice:overdue i4'), 2_000, 'the live event after recovery');
      await sleep(100);
      const catalogEvents = got.filter((e) => e.includes(':') && !e.startsWith('auth:') && !e.startsWith('connected'));
      expect(catalogEvents).toEqual(['invoice:created i1', 'invoice:paid i2', 'invoice:sent i3', 'invoice:overdue i4']);
    } finally {
      await proxy.close();
      await g.stop();
    }
  });

  it('says so when a restart lost what the client missed (history:gap)', async () => {
    const g = await Gateway.start({ env: { RECOVERY_WINDOW: '1m' } });
    try {
      const org = uid('org');
      const user = uid('user');
      const c = createRealtimeClient({ url: g.url, getToken: () => g.token({ sub: user, orgId: org }), logger: null, reconnection: { delay: 50, maxDelay: 200 } });
      clients.push(c);
      const gaps: HistoryGapPayload[] = [];
      c.on('history:gap', (gap) => gaps.push(gap));
      const got: string[] = [];
      c.on('invoice:created', (p) => got.push(p.invoiceId));
      await waitStatus(c, 'connected');
      expect(c.getState().gap).toBeNull(); // a first connection asks nothing
      await g.publish('invoice:created', { organizationId: org, invoiceId: 'i1' });
      await waitFor(() => got.includes('i1'), 2_000, 'the first event');
      const offset = (c.socket as unknown as { _lastOffset?: string })._lastOffset;
      expect(typeof offset).toBe('string');

      await g.restart(); // a single node forgets its sessions: recovery is impossible
      await waitFor(() => c.getState().gap !== null, 10_000, 'the gap');
      expect(c.getState().status).toBe('connected');
      expect(c.getState().recovered).toBe(false);
      expect(c.getState().gap).toMatchObject({ reason: 'unavailable', from: offset });
      expect(gaps).toHaveLength(1);
      expect(gaps[0]?.message).toMatch(/reload/);
    } finally {
      await g.stop();
    }
  });

  it('reports TRANSPORT_ERROR while the server is down and keeps retrying', async () => {
    const g = await Gateway.start();
    const port = g.port;
    const c = createRealtimeClient({
      url: g.url,
      getToken: () => g.token({ sub: 'u', orgId: 'o' }),
      logger: null,
      reconnection: { delay: 50, maxDelay: 200 },
    });
    clients.push(c);
    try {
      await waitStatus(c, 'connected');
      await g.stop();
      await waitFor(() => c.getState().error?.code === 'TRANSPORT_ERROR', 5_000, 'TRANSPORT_ERROR');
      expect(c.getState().status).toBe('connecting');
      expect(c.getState().error?.retrying).toBe(true);
      await waitFor(() => c.getState().reconnectAttempt >= 2, 5_000, 'attempts');
      await g.restart();
      expect(g.port).toBe(port);
      await waitStatus(c, 'connected', 10_000);
      expect(c.getState().error).toBeNull();
    } finally {
      await g.stop();
    }
  });
});

/** An in-memory Storage: what localStorage is to two page loads of one browser. */
function memoryStorage(): { getItem(k: string): string | null; setItem(k: string, v: string): void; map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) };
}

describe('history and the inbox', () => {
  let hg: Gateway;
  beforeAll(async () => {
    hg = await Gateway.start({ env: { HISTORY_SIZE: '100', HISTORY_TTL: '1h' } });
  });
  afterAll(async () => {
    await hg?.stop();
  });

  function historyClient(org: string, user: string, position: RealtimeClientOptions['position']): RealtimeClient {
    const c = createRealtimeClient({ url: hg.url, getToken: () => hg.token({ sub: user, orgId: org }), logger: null, position, reconnection: { delay: 50, maxDelay: 200 } });
    clients.push(c);
    return c;
  }

  it('delivers what was published while no page was open, from the kept position, then live events, once each', async () => {
    const org = uid('org');
    const user = uid('user');
    const storage = memoryStorage();
    const first = historyClient(org, user, { storage });
    const seen: string[] = [];
    first.on('notification:new', (p) => seen.push(p.notificationId));
    await waitStatus(first, 'connected');
    await hg.publish('notification:new', { organizationId: org, userId: user, notificationId: 'n1', title: 't', message: 'm', type: 'info' });
    await waitFor(() => seen.includes('n1'), 2_000, 'n1');
    expect([...storage.map.keys()]).toEqual([`op_realtime_position:${org}:${user}`]);
    first.disconnect(); // the page is closed

    await hg.publish('notification:new', { organizationId: org, userId: user, notificationId: 'n2', title: 't', message: 'm', type: 'info' });
    await hg.publish('notification:new', { organizationId: org, userId: uid('someone_else'), notificationId: 'x', title: 't', message: 'm', type: 'info' });
    await hg.publish('invoice:paid', { organizationId: uid('other_org'), invoiceId: 'x' });
    await hg.publish('invoice:paid', { organizationId: org, invoiceId: 'i3' });

    const reloaded = historyClient(org, user, { storage }); // a new page load: no session to recover
    const got: string[] = [];
    reloaded.onAny((event, p) => {
      if (event === 'notification:new' || event === 'invoice:paid') got.push((p as { notificationId?: string; invoiceId?: string }).notificationId ?? (p as { invoiceId: string }).invoiceId);
    });
    await waitStatus(reloaded, 'connected');
    await waitFor(() => got.length >= 2, 5_000, 'the events published meanwhile');
    await hg.publish('notification:new', { organizationId: org, userId: user, notificationId: 'n4', title: 't', message: 'm', type: 'info' });
    await waitFor(() => got.includes('n4'), 2_000, 'the live event');
    await sleep(100);
    expect(got).toEqual(['n2', 'i3', 'n4']);
    expect(reloaded.getState().gap).toBeNull();

    // history(): the same, on request, narrowed by events.
    const h = await reloaded.history({ events: ['notification:*'] });
    expect(h.success).toBe(true);
    if (h.success) {
      expect(h.events.map((e) => (e.payload as { notificationId: string }).notificationId)).toEqual(['n1', 'n2', 'n4']);
      expect(h.events.every((e) => e.event === 'notification:new' && typeof e.offset === 'string')).toBe(true);
      expect(h.more).toBe(false);
      const after = await reloaded.history({ since: h.events[0]!.offset, limit: 1 });
      expect(after.success && after.events.map((e) => e.offset)).toEqual([h.events[1]!.offset]);
      expect(after.success && after.more).toBe(true);
    }
    const bad = await reloaded.history({ limit: 0 });
    expect(bad).toMatchObject({ success: false, code: 'invalid_request' });
  });

  it('fills from the history a gap the server reports after the recovery window, and reports none', async () => {
    const g = await Gateway.start({ env: { RECOVERY_WINDOW: '1s', HISTORY_SIZE: '100' } });
    const proxy = await startCuttableProxy(g);
    try {
      const org = uid('org');
      const user = uid('user');
      const c = createRealtimeClient({
        url: proxy.url,
        getToken: () => g.token({ sub: user, orgId: org }),
        logger: null,
        position: { storage: memoryStorage() },
        reconnection: { delay: 50, maxDelay: 200 },
      });
      clients.push(c);
      const got: string[] = [];
      c.on('invoice:paid', (p) => got.push(p.invoiceId));
      c.on('notification:new', (p) => got.push(p.notificationId));
      const gaps: HistoryGapPayload[] = [];
      c.on('history:gap', (gap) => gaps.push(gap));
      await waitStatus(c, 'connected');
      await g.publish('invoice:paid', { organizationId: org, invoiceId: 'i1' });
      await waitFor(() => got.includes('i1'), 2_000, 'i1');

      proxy.cut();
      await g.waitLog('gateway: client disconnected', { userId: user, reason: 'transport close' });
      await g.publish('invoice:paid', { organizationId: org, invoiceId: 'i2' });
      await g.publish('notification:new', { organizationId: org, userId: user, notificationId: 'n3', title: 't', message: 'm', type: 'info' });
      await sleep(1_500); // past the 1 s recovery window: the session is gone, the history is not
      proxy.restore();
      await g.waitLog('gateway: client connected', { userId: user, recovered: false }, 2, 10_000);
      await waitFor(() => got.length >= 3, 5_000, 'the events missed');
      await sleep(100);
      expect(got).toEqual(['i1', 'i2', 'n3']);
      expect(c.getState().recovered).toBe(false);
      expect(gaps).toEqual([]); // the server said gap (below), the history filled it
      expect(c.getState().gap).toBeNull();
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toMatch(/realtime_history_gaps_total\{reason="unavailable"\} 1/);
    } finally {
      await proxy.close();
      await g.stop();
    }
  });

  it('dispatches history:gap when the kept position is no longer in the history', async () => {
    const org = uid('org');
    const user = uid('user');
    const storage = memoryStorage();
    storage.setItem(`op_realtime_position:${org}:${user}`, 'gone.1');
    const c = historyClient(org, user, { storage });
    const gaps: HistoryGapPayload[] = [];
    c.on('history:gap', (g) => gaps.push(g));
    await waitStatus(c, 'connected');
    await waitFor(() => c.getState().gap !== null, 5_000, 'the gap');
    expect(c.getState().gap).toMatchObject({ reason: 'unavailable', from: 'gone.1' });
    expect(gaps).toHaveLength(1);
  });

  it('keeps the position in localStorage by default, and none with position: false', async () => {
    const org = uid('org');
    const user = uid('user');
    const key = `op_realtime_position:${org}:${user}`;
    localStorage.setItem(key, 'gone.1'); // a position the history does not know
    const off = historyClient(org, user, false);
    const got: string[] = [];
    off.on('invoice:paid', (p) => got.push(p.invoiceId));
    await waitStatus(off, 'connected');
    await hg.publish('invoice:paid', { organizationId: org, invoiceId: 'i1' });
    await waitFor(() => got.includes('i1'), 2_000, 'i1');
    expect(off.getState().gap).toBeNull(); // the position was not read...
    expect(localStorage.getItem(key)).toBe('gone.1'); // ...nor written
    off.disconnect();

    const on = historyClient(org, user, undefined);
    on.on('invoice:paid', (p) => got.push(p.invoiceId));
    await waitFor(() => on.getState().gap !== null, 5_000, 'the gap of the stale position');
    expect(on.getState().gap?.from).toBe('gone.1');
    await hg.publish('invoice:paid', { organizationId: org, invoiceId: 'i2' });
    await waitFor(() => got.includes('i2'), 2_000, 'i2');
    expect(localStorage.getItem(key)).not.toBe('gone.1');
  });
});
