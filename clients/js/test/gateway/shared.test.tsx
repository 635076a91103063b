// The NestJS front end's API against a real gateway process: the module-level
// connection of its socket-client.ts (getSocket, connectSocket,
// disconnectSocket, isSocketConnected) and its hooks used without any
// provider, on this package's shared client. One shared client per module, so
// these tests run in order in their own file.

import { act, cleanup, render, screen, waitFor as rtlWaitFor } from '@testing-library/react';
import { useEffect, type ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  configureSocket,
  connectSocket,
  disconnectSocket,
  getRealtimeClient,
  getSocket,
  isSocketConnected,
  NotificationEvent,
  WebSocketEvent,
  type InvoiceEventPayload,
  type NotificationEventPayload,
} from '../../src/index.js';
import { useWebSocket, useWebSocketEvent } from '../../src/react.js';
import { Gateway, uid, waitFor } from '../support/gateway.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await Gateway.start();
  configureSocket({ url: gw.url, logger: null });
});
afterAll(async () => {
  disconnectSocket();
  await gw?.stop();
});
afterEach(() => {
  cleanup();
});

describe('the shared connection (socket-client.ts)', () => {
  it('getSocket, connectSocket and disconnectSocket drive one connection', async () => {
    const org = uid('org');
    const user = uid('user');
    const socket = getSocket();
    expect(socket.connected).toBe(false); // created, not connected, as the seed's getSocket
    expect(isSocketConnected()).toBe(false);
    expect(() => configureSocket({ url: 'http://127.0.0.1:9' })).toThrow(/before the shared connection is used/);

    expect(connectSocket(gw.token({ sub: user, orgId: org }))).toBe(socket);
    await waitFor(() => getRealtimeClient().getState().identity?.userId === user, 10_000, 'the shared connection');
    expect(isSocketConnected()).toBe(true);
    expect(getRealtimeClient().getState().identity).toEqual({ userId: user, organizationId: org });
    const paid: unknown[] = [];
    socket.on(WebSocketEvent.INVOICE_PAID, (p: InvoiceEventPayload) => paid.push(p));
    await gw.publish('invoice:paid', { organizationId: org, invoiceId: 'inv_1' });
    await waitFor(() => paid.length === 1, 5_000, 'invoice:paid on the socket');
    expect(paid[0]).toMatchObject({ organizationId: org, invoiceId: 'inv_1' });

    disconnectSocket();
    expect(isSocketConnected()).toBe(false);
    await gw.waitLog('gateway: client disconnected', { userId: user });

    // The next connectSocket names the next user; the socket stays the same one.
    const next = uid('user');
    connectSocket(gw.token({ sub: next, orgId: org }));
    await waitFor(() => getRealtimeClient().getState().identity?.userId === next, 10_000, 'the next user');
    expect(getSocket()).toBe(socket);
    disconnectSocket();
    await gw.waitLog('gateway: client disconnected', { userId: next });
  });
});

/** The design document's InvoiceList shape, with no provider anywhere. */
function InvoiceList({ token, onEvent }: { token: string; onEvent: (p: InvoiceEventPayload) => void }): ReactNode {
  const { connected, subscribe } = useWebSocket({ token });
  useEffect(() => {
    const unsubscribers = [subscribe<InvoiceEventPayload>(WebSocketEvent.INVOICE_CREATED, (data) => onEvent(data))];
    return () => unsubscribers.forEach((unsub) => unsub());
  }, [subscribe, onEvent]);
  return <p data-testid="list">{connected ? 'live' : 'offline'}</p>;
}

function Bell({ enabled, onEvent }: { enabled: boolean; onEvent: (p: NotificationEventPayload) => void }): ReactNode {
  useWebSocketEvent<NotificationEventPayload>(NotificationEvent.NEW, onEvent, { enabled });
  return null;
}

describe('hooks outside a RealtimeProvider', () => {
  it('connect the shared connection, and useWebSocketEvent listens only while enabled', async () => {
    const org = uid('org');
    const user = uid('user');
    const token = gw.token({ sub: user, orgId: org });
    const invoices = vi.fn();
    const bell = vi.fn();
    const notification = (id: string) => ({
      organizationId: org,
      userId: user,
      notificationId: id,
      title: 'Paid',
      message: 'INV-1 was paid',
      type: 'success',
    });
    const view = render(
      <>
        <InvoiceList token={token} onEvent={invoices} />
        <Bell enabled={false} onEvent={bell} />
      </>,
    );
    await rtlWaitFor(() => expect(getRealtimeClient().getState().identity?.userId).toBe(user), { timeout: 10_000 });
    expect(screen.getByTestId('list').textContent).toBe('live');
    expect(isSocketConnected()).toBe(true);
    expect(getRealtimeClient().getState().identity).toEqual({ userId: user, organizationId: org });

    // Disabled: the notification arrives before the invoice published after
    // it, and nobody hears it.
    await gw.publish('notification:new', notification('n_1'));
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_1' });
    await rtlWaitFor(() => expect(invoices).toHaveBeenCalledTimes(1));
    expect(invoices.mock.calls[0]![0]).toMatchObject({ invoiceId: 'inv_1' });
    expect(bell).not.toHaveBeenCalled();

    view.rerender(
      <>
        <InvoiceList token={token} onEvent={invoices} />
        <Bell enabled={true} onEvent={bell} />
      </>,
    );
    await gw.publish('notification:new', notification('n_2'));
    await rtlWaitFor(() => expect(bell).toHaveBeenCalledTimes(1));
    expect(bell.mock.calls[0]![0]).toMatchObject({ notificationId: 'n_2' });

    view.rerender(
      <>
        <InvoiceList token={token} onEvent={invoices} />
        <Bell enabled={false} onEvent={bell} />
      </>,
    );
    await gw.publish('notification:new', notification('n_3'));
    await gw.publish('invoice:created', { organizationId: org, invoiceId: 'inv_2' });
    await rtlWaitFor(() => expect(invoices).toHaveBeenCalledTimes(2));
    expect(bell).toHaveBeenCalledTimes(1);

    // One connection for both components; unmounting them leaves it up (the
    // seed's hooks never disconnected), without their handlers.
    expect(gw.logsOf('gateway: client connected', { userId: user })).toHaveLength(1);
    view.unmount();
    expect(isSocketConnected()).toBe(true);
    expect(getRealtimeClient().listenerCount()).toBe(0);
    act(() => disconnectSocket());
    await gw.waitLog('gateway: client disconnected', { userId: user });
  });
});
