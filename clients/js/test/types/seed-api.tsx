// The NestJS front end's API, as its code calls it, against this package: the
// names of packages/shared's websocket.types.ts, the hooks of
// apps/web/src/hooks/useWebSocket.ts and the functions of
// apps/web/src/lib/websocket/socket-client.ts (their signatures are in
// ../shared/reference/seed-origin-code.md §2, §3, §8 and §9), plus the forms
// issue 13 names, imported from the application's modules as they are after
// the migration (app/). Written for this test from those signatures; no code
// of that repository is copied. `@ts-expect-error` lines are mistakes the types
// must refuse (tsc fails when such a line compiles).

import { useEffect, useState } from 'react';

import { useWebSocket, useWebSocketEvent } from '@/hooks/useWebSocket';
import { connectSocket, disconnectSocket, getSocket, isSocketConnected } from '@/lib/websocket/socket-client';
import {
  BankEvent,
  ExpenseEvent,
  getOrgRoom,
  getUserRoom,
  InvoiceEvent,
  NotificationEvent,
  WebSocketEvent,
  type BankEventPayload,
  type ExpenseEventPayload,
  type HrEventPayload,
  type InvoiceEventPayload,
  type NotificationEventPayload,
  type WebSocketEventPayload,
  type WebSocketPayload,
} from '@operate/shared';

// WebSocketEvent is a value (every event by its whole name) and a type (any event name).
const created: WebSocketEvent = WebSocketEvent.INVOICE_CREATED;
const fromDomainEnum: WebSocketEvent = InvoiceEvent.PAID;
const synced: 'bank:transactions_synced' = WebSocketEvent.BANK_TRANSACTIONS_SYNCED;
// @ts-expect-error: no such event
void WebSocketEvent.INVOICE_PAYED;
// @ts-expect-error: a string is not an event name
const notAnEvent: WebSocketEvent = 'invoice:payed';

// Payload types under the seed's names: the common fields, one per domain, and their union.
function describe(p: WebSocketPayload): string {
  const base: WebSocketEventPayload = p;
  return `${base.organizationId} at ${base.timestamp}`;
}
const leave: HrEventPayload = { organizationId: 'org_1', timestamp: '2025-01-31T09:30:00.000Z', leaveRequestId: 'l_1' };

// Rooms, as the gateway names them.
const rooms: string[] = [getOrgRoom('org_1'), getUserRoom('user_1')];

/** subscribe with the payload type named, from WebSocketEvent and from the domain enums. */
export function FinanceDashboard() {
  const { connected, subscribe } = useWebSocket({
    onConnect: () => console.log('live'),
    onDisconnect: () => console.log('offline'),
    onError: (error: Error) => console.warn(error.message),
  });
  const [last, setLast] = useState<string>('');

  useEffect(() => {
    const unsubscribers = [
      subscribe<InvoiceEventPayload>(WebSocketEvent.INVOICE_CREATED, (data) => setLast(data.invoiceId)),
      subscribe<ExpenseEventPayload>(ExpenseEvent.CREATED, (data) => setLast(data.expenseId)),
      subscribe<BankEventPayload>(BankEvent.TRANSACTION_IMPORTED, (data) => setLast(data.transactionId ?? '')),
      subscribe<WebSocketPayload>(WebSocketEvent.HR_LEAVE_APPROVED, (data) => setLast(describe(data))),
      // the inferred form: the payload type follows from the event
      subscribe(InvoiceEvent.PAID, (data) => setLast(data.invoiceNumber ?? data.invoiceId)),
      // @ts-expect-error: an invoice event does not carry an hr payload
      subscribe<HrEventPayload>(InvoiceEvent.PAID, (data) => setLast(data.employeeId ?? '')),
      // @ts-expect-error: invoice payloads have no expenseId
      subscribe<InvoiceEventPayload>(InvoiceEvent.CREATED, (data) => setLast(data.expenseId)),
    ];
    return () => unsubscribers.forEach((unsub) => unsub());
  }, [subscribe]);

  return <div>{connected ? `Live: ${last}` : 'Connecting to real-time updates...'}</div>;
}

/** useWebSocketEvent with a named handler, a named payload type and options.enabled. */
export function NotificationBell({ userId }: { userId?: string }) {
  const [count, setCount] = useState(0);
  const onNotification = (data: NotificationEventPayload) => setCount((n) => n + (data.read ? 0 : 1));
  const { connected } = useWebSocketEvent(NotificationEvent.NEW, onNotification, { enabled: Boolean(userId) });
  useWebSocketEvent<NotificationEventPayload>(WebSocketEvent.NOTIFICATION_READ, (data) => void data.notificationId);
  // @ts-expect-error: enabled is a boolean
  useWebSocketEvent(NotificationEvent.NEW, onNotification, { enabled: 'yes' });
  return (
    <button>
      Notifications {count} {connected && '(Live)'}
    </button>
  );
}

/** Manual connection control, and the client-to-server requests. */
export function AdminPanel() {
  const { connected, connect, disconnect, emit } = useWebSocket({ autoConnect: false, token: 'eyJ…' });
  const subscribeToInvoices = () => {
    if (connected) void emit('subscribe', { events: [InvoiceEvent.CREATED, WebSocketEvent.EXPENSE_APPROVED] });
  };
  return (
    <div>
      <button onClick={connect} disabled={connected}>
        Connect
      </button>
      <button onClick={disconnect} disabled={!connected}>
        Disconnect
      </button>
      <button onClick={subscribeToInvoices}>Invoices only</button>
    </div>
  );
}

/** The module-level connection of socket-client.ts. */
export function socketLifecycle(token: string): boolean {
  const socket = getSocket(token);
  socket.on('connect', () => console.log('connected as', socket.id));
  connectSocket(token).on(WebSocketEvent.INVOICE_PAID, (p: InvoiceEventPayload) => console.log(p.invoiceId));
  const live: boolean = isSocketConnected();
  disconnectSocket();
  return live;
}

export const used = [created, fromDomainEnum, synced, notAnEvent, leave, rooms];
