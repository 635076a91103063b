// The React bindings against a real gateway process.

import { act, cleanup, render, screen, waitFor as rtlWaitFor } from '@testing-library/react';
import { StrictMode, useEffect, useState, type ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  createRealtimeClient,
  InvoiceEvent,
  type ExpensePayload,
  type InvoicePayload,
  type RealtimeClient,
} from '../../src/index.js';
import { RealtimeProvider, useGap, useWebSocket, useWebSocketEvent } from '../../src/react.js';
import { Gateway, sleep, uid, waitFor } from '../support/gateway.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await Gateway.start();
});
afterAll(async () => {
  await gw?.stop();
});
afterEach(() => {
  cleanup();
});

/** Connections the gateway logged for this user, and disconnections. */
function connections(user: string): { connected: number; disconnected: number } {
  return {
    connected: gw.logsOf('gateway: client connected', { userId: user }).length,
    disconnected: gw.logsOf('gateway: client disconnected', { userId: user }).length,
  };
}

function Status(): ReactNode {
  const { status, connected, error } = useWebSocket();
  return (
    <p data-testid="status">
      {status} {connected ? 'live' : 'offline'} {error?.code ?? ''}
    </p>
  );
}

/** The seed's InvoiceList, on the new hooks. */
function InvoiceList({ name, onEvent }: { name: string; onEvent?: (p: InvoicePayload) => void }): ReactNode {
  const { connected, subscribe } = useWebSocket();
  const [invoices, setInvoices] = useState<string[]>([]);
  useEffect(() => {
    const unsubscribers = [
      subscribe(InvoiceEvent.CREATED, (data) => {
        onEvent?.(data);
        setInvoices((list) => [...list, data.invoiceId]);
      }),
      subscribe(InvoiceEvent.PAID, (data) => {
        onEvent?.(data);
        setInvoices((list) => [...list, `${data.invoiceNumber ?? data.invoiceId} paid`]);
      }),
    ];
    return () => unsubscribers.forEach((unsub) => unsub());
  }, [subscribe, onEvent]);
  return (
    <div data-testid={name}>
      {name} (Live: {connected ? '✓' : '✗'}): {invoices.join(', ')}
    </div>
  );
}

function Expenses({ onEvent }: { onEvent: (p: ExpensePayload) => void }): ReactNode {
  const { connected } = useWebSocketEvent('expense:approved', onEvent);
  return <p data-testid="expenses">{connected ? 'expenses live' : 'expenses offline'}</p>;
}

describe('React', () => {
  it('shares one connection between any number of components, each getting its events', async () => {
    const org = uid('org');
    const user = uid('user');
    const getToken = vi.fn(() => gw.token({ sub: user, orgId: org }));
    const a = vi.fn();
    const b = vi.fn();
    const e = vi.fn();
    render(
      <RealtimeProvider url={gw.url} getToken={getToken} logger={null}>
        <Status />
        <InvoiceList name="first" onEvent={a} />
        <InvoiceList name="second" onEvent={b} />
        <Expenses onEvent={e} />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('status').textContent).toContain('connected live'));
    expect(screen.getByTestId('first').textContent).toContain('Live: ✓');
    expect(screen.getByTestId('second').textContent).toContain('Live: ✓');
    expect(screen.getByTestId('expenses').textContent).toBe('expenses live');

    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_1' });
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'inv_1', invoiceNumber: 'INV-1' });
    await gw.publish('expense:approved', { organizationId: org, expenseId: 'exp_1' });
    await rtlWaitFor(() => expect(screen.getByTestId('first').textContent).toContain('inv_1, INV-1 paid'));
    await rtlWaitFor(() => expect(screen.getByTestId('second').textContent).toContain('inv_1, INV-1 paid'));
    await rtlWaitFor(() => expect(e).toHaveBeenCalledTimes(1));
    expect(e.mock.calls[0]![0]).toMatchObject({ expenseId: 'exp_1', organizationId: org });
    expect(a).toHaveBeenCalledTimes(2);
    expect(b).toHaveBeenCalledTimes(2);

    expect(getToken).toHaveBeenCalledTimes(1);
    await gw.waitLog('gateway: client connected', { userId: user });
    expect(connections(user).connected).toBe(1);
  });

  it('a component mounted after the connection is up gets its events too (the seed bug)', async () => {
    const org = uid('org');
    const late = vi.fn();
    function App({ showLate }: { showLate: boolean }): ReactNode {
      return (
        <>
          <Status />
          {showLate ? <InvoiceList name="late" onEvent={late} /> : null}
        </>
      );
    }
    const client = createRealtimeClient({ url: gw.url, getToken: () => gw.token({ sub: 'u', orgId: org }), logger: null });
    const { rerender } = render(
      <RealtimeProvider client={client}>
        <App showLate={false} />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('status').textContent).toContain('connected'));
    rerender(
      <RealtimeProvider client={client}>
        <App showLate={true} />
      </RealtimeProvider>,
    );
    expect(screen.getByTestId('late').textContent).toContain('Live: ✓');
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_late' });
    await rtlWaitFor(() => expect(late).toHaveBeenCalledTimes(1));
    client.disconnect();
  });

  it('removes handlers on unmount, and closes the connection with the provider', async () => {
    const org = uid('org');
    const user = uid('user');
    const kept = vi.fn();
    const removed = vi.fn();
    const leaked = vi.fn();
    let client: RealtimeClient | null = null;
    function Grab(): ReactNode {
      client = useWebSocket().client;
      return null;
    }
    /** Registers with subscribe and "forgets" to unsubscribe: unmounting cleans up anyway. */
    function Careless(): ReactNode {
      const { subscribe } = useWebSocket();
      useEffect(() => {
        subscribe('bank:sync_error', leaked);
      }, [subscribe]);
      return null;
    }
    function App({ show }: { show: boolean }): ReactNode {
      return (
        <>
          <Grab />
          <InvoiceList name="kept" onEvent={kept} />
          {show ? <InvoiceList name="removed" onEvent={removed} /> : null}
          {show ? <Careless /> : null}
        </>
      );
    }
    const getToken = () => gw.token({ sub: user, orgId: org });
    const view = render(
      <RealtimeProvider url={gw.url} getToken={getToken} logger={null}>
        <App show={true} />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('kept').textContent).toContain('Live: ✓'));
    const c = client as unknown as RealtimeClient;
    expect(c.listenerCount('invoice:created')).toBe(2);
    expect(c.listenerCount('bank:sync_error')).toBe(1);
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_1' });
    await rtlWaitFor(() => expect(removed).toHaveBeenCalledTimes(1));

    view.rerender(
      <RealtimeProvider url={gw.url} getToken={getToken} logger={null}>
        <App show={false} />
      </RealtimeProvider>,
    );
    expect(c.listenerCount('invoice:created')).toBe(1);
    expect(c.listenerCount('invoice:paid')).toBe(1);
    expect(c.listenerCount('bank:sync_error')).toBe(0);
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_2' });
    await gw.publish('bank:sync_error', { organizationId: org, error: 'x' });
    await rtlWaitFor(() => expect(kept).toHaveBeenCalledTimes(2));
    await sleep(100);
    expect(removed).toHaveBeenCalledTimes(1);
    expect(leaked).not.toHaveBeenCalled();

    view.unmount();
    expect(c.listenerCount()).toBe(0);
    await gw.waitLog('gateway: client disconnected', { userId: user });
    expect(c.getState().status).toBe('disconnected');
    expect(connections(user)).toEqual({ connected: 1, disconnected: 1 });
  });

  it('is correct under StrictMode: one connection, one call per handler per event', async () => {
    const org = uid('org');
    const user = uid('user');
    const getToken = vi.fn(() => gw.token({ sub: user, orgId: org }));
    const a = vi.fn();
    const e = vi.fn();
    const view = render(
      <StrictMode>
        <RealtimeProvider url={gw.url} getToken={getToken} logger={null}>
          <Status />
          <InvoiceList name="strict" onEvent={a} />
          <Expenses onEvent={e} />
        </RealtimeProvider>
      </StrictMode>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('status').textContent).toContain('connected live'));
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_s' });
    await gw.publish('expense:approved', { organizationId: org, expenseId: 'exp_s' });
    await rtlWaitFor(() => expect(screen.getByTestId('strict').textContent).toContain('inv_s'));
    await rtlWaitFor(() => expect(e).toHaveBeenCalledTimes(1));
    await sleep(150);
    expect(a).toHaveBeenCalledTimes(1);
    expect(e).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId('strict').textContent).toMatch(/: inv_s$/);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(connections(user)).toEqual({ connected: 1, disconnected: 0 });

    view.unmount();
    await gw.waitLog('gateway: client disconnected', { userId: user });
    await sleep(100);
    expect(connections(user)).toEqual({ connected: 1, disconnected: 1 });
  });

  it('surfaces an invalid token as status error with its code, and calls onError', async () => {
    const onError = vi.fn();
    function WithCallbacks(): ReactNode {
      const { status, error } = useWebSocket({ onError });
      return (
        <p data-testid="cb">
          {status}:{error?.code}
        </p>
      );
    }
    render(
      <RealtimeProvider url={gw.url} getToken={() => gw.token({ sub: 'u', orgId: 'o' }).slice(0, -4) + 'AAAA'} logger={null}>
        <WithCallbacks />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('cb').textContent).toBe('error:INVALID_TOKEN'));
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]![0]).toMatchObject({ code: 'INVALID_TOKEN', message: 'Unauthorized: Invalid token' });
  });

  it('emit sends subscribe/unsubscribe (kept across reconnections) and disconnect/connect work', async () => {
    const org = uid('org');
    const got: string[] = [];
    let api: ReturnType<typeof useWebSocket> | null = null;
    function Console(): ReactNode {
      api = useWebSocket();
      useWebSocketEvent('notification:new', (p) => got.push(p.title));
      useWebSocketEvent('hr:employee_added', (p) => got.push(`hr ${p.employeeId}`));
      return <p data-testid="console">{api.status}</p>;
    }
    render(
      <RealtimeProvider url={gw.url} getToken={() => gw.token({ sub: 'u_n', orgId: org })} logger={null}>
        <Console />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('console').textContent).toBe('connected'));
    const ws = api as unknown as ReturnType<typeof useWebSocket>;
    const ack = await act(() => ws.emit('subscribe', { events: ['notification:*'] }));
    expect(ack).toMatchObject({ success: true, subscribedTo: ['notification:*'] });

    act(() => ws.disconnect());
    expect(screen.getByTestId('console').textContent).toBe('disconnected');
    act(() => ws.connect());
    await rtlWaitFor(() => expect(screen.getByTestId('console').textContent).toBe('connected'));
    await waitFor(() => ws.client.getState().subscriptions?.length === 3, 2_000, 'restored subscriptions');

    await gw.publish('hr:employee_added', { organizationId: org, employeeId: 'e1' });
    await gw.publish('notification:new', {
      organizationId: org,
      userId: 'u_n',
      notificationId: 'n1',
      title: 'Hello',
      message: 'm',
      type: 'info',
    });
    await waitFor(() => got.length >= 1, 2_000, 'notification');
    await sleep(100);
    expect(got).toEqual(['Hello']);

    const refused = await act(() => ws.emit('auth:refresh', { token: 'bad' }));
    expect(refused).toMatchObject({ ok: false, code: 'INVALID_TOKEN' });
  });

  it('useWebSocketEvent and subscribe take a filter: the gateway sends what passes, other events keep flowing, across reconnections', async () => {
    const org = uid('org');
    const bigPaid: number[] = [];
    const anyPaid: number[] = [];
    const eurCreated: string[] = [];
    const expenses: string[] = [];
    let api: ReturnType<typeof useWebSocket> | null = null;
    function Widgets(): ReactNode {
      api = useWebSocket();
      const { subscribe } = api;
      useWebSocketEvent('invoice:paid', (p) => bigPaid.push(p.amount ?? -1), { filter: 'payload.amount > 1000.0' });
      useEffect(() => subscribe('invoice:created', (p) => eurCreated.push(p.invoiceId), { filter: "payload.currency == 'EUR'" }), [subscribe]);
      return <p data-testid="widgets">{api.status}</p>;
    }
    function Others(): ReactNode {
      // No filter of its own: the connection's filter for invoice:paid applies to it too.
      useWebSocketEvent('invoice:paid', (p) => anyPaid.push(p.amount ?? -1));
      useWebSocketEvent('expense:approved', (p) => expenses.push(p.expenseId));
      return null;
    }
    render(
      <RealtimeProvider url={gw.url} getToken={() => gw.token({ sub: 'u_f', orgId: org })} logger={null}>
        <Widgets />
        <Others />
      </RealtimeProvider>,
    );
    await rtlWaitFor(() => expect(screen.getByTestId('widgets').textContent).toBe('connected'));
    const ws = api as unknown as ReturnType<typeof useWebSocket>;
    // Requests are sent in order: once this one is answered, the hooks' filters are in place.
    expect(await act(() => ws.emit('subscribe', { events: ['expense:approved'] }))).toMatchObject({ success: true });
    // The filters did not narrow the connection: it still receives every event.
    expect(ws.client.getState().subscriptions).toHaveLength(46);

    const round = async (n: number) => {
      await gw.publish('invoice:paid', { organizationId: org, invoiceId: `p${n}a`, amount: 10 });
      await gw.publish('invoice:paid', { organizationId: org, invoiceId: `p${n}b`, amount: 5000 + n });
      await gw.publish('invoice:created', { organizationId: org, invoiceId: `c${n}a`, currency: 'USD' });
      await gw.publish('invoice:created', { organizationId: org, invoiceId: `c${n}b`, currency: 'EUR' });
      await gw.publish('expense:approved', { organizationId: org, expenseId: `e${n}` });
      await waitFor(() => expenses.includes(`e${n}`), 2_000, `round ${n}`);
      await sleep(100);
    };
    await round(1);
    expect(bigPaid).toEqual([5001]);
    expect(anyPaid).toEqual([5001]);
    expect(eurCreated).toEqual(['c1b']);
    expect(expenses).toEqual(['e1']);

    act(() => ws.disconnect());
    act(() => ws.connect());
    await rtlWaitFor(() => expect(screen.getByTestId('widgets').textContent).toBe('connected'));
    expect(await act(() => ws.emit('subscribe', { events: ['expense:approved'] }))).toMatchObject({ success: true });
    await round(2);
    expect(bigPaid).toEqual([5001, 5002]);
    expect(eurCreated).toEqual(['c1b', 'c2b']);
    expect(expenses).toEqual(['e1', 'e2']);

    // A refused filter is refused, and leaves the event as it was.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      function Bad(): ReactNode {
        useWebSocketEvent('expense:approved', () => {}, { filter: 'payload.nope > 1.0' });
        return null;
      }
      render(
        <RealtimeProvider client={ws.client}>
          <Bad />
        </RealtimeProvider>,
      );
      await waitFor(() => warn.mock.calls.some((c) => String(c[0]).includes("undefined field 'nope'")), 2_000, 'the warning');
      expect(String(warn.mock.calls.find((c) => String(c[0]).includes('nope'))![0])).toContain('(invalid_filter)');
    } finally {
      warn.mockRestore();
    }
    await round(3);
    expect(expenses).toEqual(['e1', 'e2', 'e3']);
  });

  it('useGap tells the page to reload when a reconnection could not recover what it missed', async () => {
    const g = await Gateway.start({ env: { RECOVERY_WINDOW: '1m' } });
    try {
      const org = uid('org');
      const user = uid('user');
      const reloads = vi.fn();
      const seen: string[] = [];
      function Page(): ReactNode {
        const gap = useGap(reloads);
        useWebSocketEvent('invoice:created', (p) => seen.push(p.invoiceId));
        return <p data-testid="gap">{gap ? `gap ${gap.reason}` : 'no gap'}</p>;
      }
      render(
        <RealtimeProvider url={g.url} getToken={() => g.token({ sub: user, orgId: org })} logger={null} reconnection={{ delay: 50, maxDelay: 200 }}>
          <Page />
        </RealtimeProvider>,
      );
      await g.waitLog('gateway: client connected', { userId: user });
      await g.publish('invoice:created', { organizationId: org, invoiceId: 'i1' });
      await waitFor(() => seen.includes('i1'), 2_000, 'the first event');
      expect(screen.getByTestId('gap').textContent).toBe('no gap');

      await g.restart();
      await rtlWaitFor(() => expect(screen.getByTestId('gap').textContent).toBe('gap unavailable'), { timeout: 10_000 });
      expect(reloads).toHaveBeenCalledTimes(1);
      expect(reloads.mock.calls[0]?.[0]).toMatchObject({ reason: 'unavailable' });
    } finally {
      cleanup();
      await g.stop();
    }
  });
});
