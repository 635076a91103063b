import { describe, expect, it, vi } from 'vitest';

import { Backoff, buildUrl, createRealtimeClient, EVENT_NAMES, type EventName, type ServerEventName } from '../../src/index.js';

describe('buildUrl', () => {
  it('is the origin plus the namespace', () => {
    expect(buildUrl('http://localhost:8080')).toBe('http://localhost:8080/events');
    expect(buildUrl('https://rt.example/')).toBe('https://rt.example/events');
    expect(buildUrl('wss://rt.example', 'events')).toBe('https://rt.example/events');
    expect(buildUrl('http://h:1', '/custom')).toBe('http://h:1/custom');
  });
  it('ignores a path, with a warning (the seed appended /events to …/api/v1)', () => {
    const warn = vi.fn();
    expect(buildUrl('http://localhost:3001/api/v1', '/events', warn)).toBe('http://localhost:3001/events');
    expect(warn).toHaveBeenCalledOnce();
    expect(warn.mock.calls[0]![0]).toContain('/api/v1');
  });
  it("defaults to the page's origin", () => {
    expect(buildUrl(undefined)).toBe(`${location.origin}/events`);
  });
});

describe('Backoff', () => {
  it('grows exponentially up to the maximum', () => {
    const b = new Backoff({ delay: 100, maxDelay: 1000, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });
  it('spreads delays within ±jitter', () => {
    expect(new Backoff({ delay: 1000, jitter: 0.5 }, () => 0).next()).toBe(500);
    expect(new Backoff({ delay: 1000, jitter: 0.5 }, () => 0.999999).next()).toBe(1500);
    const b = new Backoff({ delay: 1000, maxDelay: 30_000, jitter: 0.5 });
    for (let i = 0; i < 50; i++) {
      const base = Math.min(30_000, 1000 * 2 ** i);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.min(base * 0.5, 30_000));
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });
});

describe('createRealtimeClient', () => {
  it('does nothing before connect() with autoConnect false', () => {
    const getToken = vi.fn(() => 'x');
    const c = createRealtimeClient({ url: 'http://127.0.0.1:9', getToken, autoConnect: false });
    expect(c.socket).toBeNull();
    expect(c.getState()).toMatchObject({ status: 'disconnected', connected: false, error: null, subscriptions: null });
    expect(getToken).not.toHaveBeenCalled();
  });
  it('keeps the state object until something changes', () => {
    const c = createRealtimeClient({ url: 'http://127.0.0.1:9', autoConnect: false });
    const s = c.getState();
    c.disconnect();
    expect(c.getState()).toBe(s);
  });
  it('refuses empty subscription requests locally', async () => {
    const c = createRealtimeClient({ url: 'http://127.0.0.1:9', autoConnect: false });
    expect(await c.subscribe([])).toMatchObject({ success: false, code: 'invalid_request' });
  });
  it('types events from the generated catalog', () => {
    const names: readonly EventName[] = EVENT_NAMES;
    expect(names).toContain('invoice:paid');
    const control: ServerEventName[] = ['connected', 'auth:expiring', 'auth:expired', 'invoice:paid'];
    expect(control).toHaveLength(4);
    const c = createRealtimeClient({ url: 'http://127.0.0.1:9', autoConnect: false });
    // @ts-expect-error: not an event of the catalog
    c.on('invoice:payed', () => {});
    // @ts-expect-error: not a subscription pattern
    void c.subscribe('invoices:*');
    c.on('bank:sync_error', (p) => {
      // @ts-expect-error: BankPayload has no invoiceId
      void p.invoiceId;
    });
  });
});
