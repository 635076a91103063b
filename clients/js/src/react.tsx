// React bindings: a provider that owns one connection for its tree, and the
// seed's hooks (useWebSocket, useWebSocketEvent) on top of it. Every component
// shares the provider's connection; each registers its own handlers, which go
// away when it unmounts. Outside a provider the hooks use the shared
// connection (./shared.ts), as the NestJS front end's hooks used its
// module-level socket. Effects are idempotent under StrictMode's
// mount → unmount → mount: one connection, one registration per handler.

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';

import {
  createRealtimeClient,
  type ConnectionStatus,
  type EventHandler,
  type RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeState,
  type SubscribeOptions,
} from './client.js';
import type { RealtimeError } from './errors.js';
import { EVENT_NAMES, type EventName } from './generated/events.js';
import type {
  ClientRequestMap,
  ClientRequestName,
  EventsWithPayload,
  HistoryGapPayload,
  PresenceChangePayload,
  PresenceUser,
  RefreshResult,
  ServerEventName,
} from './protocol.js';
import { connectSocket, disconnectSocket, getRealtimeClient } from './shared.js';

const RealtimeContext = createContext<RealtimeClient | null>(null);

export interface RealtimeProviderProps extends RealtimeClientOptions {
  /**
   * A client created elsewhere. The provider then connects it on mount (unless
   * autoConnect is false) but never disconnects it: its creator owns it.
   * Without it, the provider creates a client from its props (read once, on
   * mount, except getToken, whose latest value is always used; to connect
   * elsewhere, change the provider's `key`) and disconnects it on unmount.
   */
  client?: RealtimeClient;
  children?: ReactNode;
}

/** Provides one gateway connection to every hook below it. */
export function RealtimeProvider(props: RealtimeProviderProps): ReactNode {
  const { client: given, children, autoConnect = true, ...options } = props;

  // getToken may be a closure over the app's state: always call the latest.
  const getTokenRef = useRef(options.getToken);
  useLayoutEffect(() => {
    getTokenRef.current = options.getToken;
  });
  // The initializer has no side effect (no socket before connect()), so
  // StrictMode calling it twice leaks nothing.
  const [owned] = useState<RealtimeClient | null>(() =>
    given
      ? null
      : createRealtimeClient({
          ...options,
          getToken: options.getToken ? () => getTokenRef.current!() : undefined,
          autoConnect: false,
        }),
  );
  const client = given ?? owned!;

  // Connect on mount; disconnect an owned client on unmount, one task later, so
  // that StrictMode's immediate remount keeps the same connection.
  const pendingClose = useRef<{ client: RealtimeClient; timer: ReturnType<typeof setTimeout> } | null>(null);
  useEffect(() => {
    const p = pendingClose.current;
    if (p) {
      clearTimeout(p.timer);
      pendingClose.current = null;
      if (p.client !== client) p.client.disconnect();
    }
    if (autoConnect) client.connect();
    if (client !== owned) return undefined;
    return () => {
      pendingClose.current = {
        client,
        timer: setTimeout(() => {
          pendingClose.current = null;
          client.disconnect();
        }, 0),
      };
    };
  }, [client, owned, autoConnect]);

  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}

/**
 * The provider's client; outside a RealtimeProvider, the shared client
 * (getRealtimeClient(), the one getSocket and connectSocket drive).
 */
export function useRealtimeClient(): RealtimeClient {
  return useContext(RealtimeContext) ?? getRealtimeClient();
}

/** The connection's state; the component re-renders when it changes. */
export function useRealtimeState(): RealtimeState {
  const client = useRealtimeClient();
  return useSyncExternalStore(client.onStateChange, client.getState, client.getState);
}

export interface UseWebSocketOptions {
  /**
   * Outside a RealtimeProvider: the token the shared connection connects with
   * (connectSocket(token)); without it, the configured getToken or the default
   * lookup (cookies, then localStorage). Inside one, the provider's getToken
   * decides and this is not used.
   */
  token?: string;
  /**
   * Outside a RealtimeProvider: connect the shared connection on mount.
   * Default true; false leaves it to connect(). Inside one, the provider
   * connects and this is not used.
   */
  autoConnect?: boolean;
  /** Called when the connection is established (again). */
  onConnect?: () => void;
  /** Called when an established connection is lost or closed. */
  onDisconnect?: () => void;
  /** Called with each new error. */
  onError?: (error: RealtimeError) => void;
}

/** Sends a request to the gateway and resolves with its answer. */
export type EmitFunction = <E extends ClientRequestName>(
  event: E,
  data: ClientRequestMap[E]['request'],
) => Promise<ClientRequestMap[E]['ack']>;

/**
 * Calls handler with each `event`; returns the function that removes it. The
 * payload's type follows from the event (`subscribe(InvoiceEvent.PAID, (p) => …)`,
 * p: InvoicePayload); naming it, as the NestJS front end did
 * (`subscribe<InvoiceEventPayload>(InvoiceEvent.PAID, …)`), is accepted for
 * the events that have that payload type.
 */
export interface SubscribeFunction {
  <E extends ServerEventName>(event: E, handler: EventHandler<E>, options?: SubscribeOptions): () => void;
  <P>(event: EventsWithPayload<P>, handler: (payload: P) => void, options?: SubscribeOptions): () => void;
}

export interface UseWebSocketResult {
  /** status === 'connected'. */
  connected: boolean;
  status: ConnectionStatus;
  /** The last error, with its code (`INVALID_TOKEN`, `TOKEN_EXPIRED`, `TRANSPORT_ERROR`, ...). */
  error: RealtimeError | null;
  /**
   * Calls handler with each `event`; returns the function that removes it.
   * Handlers still registered when the component unmounts are removed then.
   * With options.filter (catalog events only), the connection also subscribes
   * to `event` through that payload filter (client.subscribe): the gateway then
   * sends the event only when its payload passes, to every handler of the
   * connection (see useWebSocketEvent).
   */
  subscribe: SubscribeFunction;
  /**
   * Sends `subscribe`, `unsubscribe` (server-side filters, kept across
   * reconnections) or `auth:refresh`, and resolves with the answer.
   */
  emit: EmitFunction;
  /** Connects (again); outside a provider, with options.token when given. */
  connect: () => void;
  /**
   * Disconnects until connect(); outside a provider, disconnectSocket() (which
   * also forgets the token given to connectSocket).
   */
  disconnect: () => void;
  /** The whole state (identity, expiresAt, transport, subscriptions, ...). */
  state: RealtimeState;
  /** The shared client. */
  client: RealtimeClient;
}

/**
 * The shared connection: its status and error, and functions to listen to
 * events, send requests, connect and disconnect.
 */
export function useWebSocket(options: UseWebSocketOptions = {}): UseWebSocketResult {
  const provided = useContext(RealtimeContext);
  const client = provided ?? getRealtimeClient();
  const state = useSyncExternalStore(client.onStateChange, client.getState, client.getState);

  // Outside a provider nobody else connects the shared connection: the hook
  // does, on mount, as the NestJS front end's did (and never disconnects it on
  // unmount: other components may use it).
  const { token, autoConnect = true } = options;
  const shared = provided === null;
  useEffect(() => {
    if (shared && autoConnect) connectSocket(token);
  }, [shared, autoConnect, token]);
  const connect = useCallback(() => (shared ? void connectSocket(token) : client.connect()), [shared, token, client]);
  const disconnect = useCallback(() => (shared ? disconnectSocket() : client.disconnect()), [shared, client]);

  // Lifecycle callbacks, latest values.
  const callbacks = useRef(options);
  useLayoutEffect(() => {
    callbacks.current = options;
  });
  const hasCallbacks = Boolean(options.onConnect || options.onDisconnect || options.onError);
  useEffect(() => {
    if (!hasCallbacks) return undefined;
    return client.onStateChange((next, prev) => {
      const cb = callbacks.current;
      if (next.connected && !prev.connected) cb.onConnect?.();
      if (!next.connected && prev.connected) cb.onDisconnect?.();
      if (next.error && next.error !== prev.error) cb.onError?.(next.error);
    });
  }, [client, hasCallbacks]);

  // Handlers registered through subscribe, removed on unmount.
  const registered = useRef(new Set<() => void>());
  useEffect(() => {
    const set = registered.current;
    return () => {
      for (const off of Array.from(set)) off();
      set.clear();
    };
  }, [client]);

  const subscribe = useCallback<SubscribeFunction>(
    (event: ServerEventName, handler: (payload: never) => void, options?: SubscribeOptions): (() => void) => {
      if (options?.filter !== undefined) subscribeFiltered(client, event, options.filter);
      const off = client.on(event, handler as EventHandler<ServerEventName>);
      const set = registered.current;
      const unsubscribe = () => {
        if (set.delete(unsubscribe)) off();
      };
      set.add(unsubscribe);
      return unsubscribe;
    },
    [client],
  );

  const emit = useCallback<EmitFunction>(
    (event, data) => {
      switch (event) {
        case 'subscribe': {
          const req = data as ClientRequestMap['subscribe']['request'];
          return client.subscribe(req.events, req.filter === undefined ? {} : { filter: req.filter }) as never;
        }
        case 'unsubscribe':
          return client.unsubscribe((data as ClientRequestMap['unsubscribe']['request']).events) as never;
        case 'auth:refresh':
          return client.refreshToken((data as ClientRequestMap['auth:refresh']['request']).token) as Promise<RefreshResult> as never;
        case 'presence':
          return client.presence(data as ClientRequestMap['presence']['request']) as never;
        default:
          return Promise.reject(new Error(`@operate/realtime-client: the gateway accepts no ${JSON.stringify(event)} from clients`));
      }
    },
    [client],
  );

  return useMemo(
    () => ({
      connected: state.connected,
      status: state.status,
      error: state.error,
      subscribe,
      emit,
      connect,
      disconnect,
      state,
      client,
    }),
    [state, subscribe, emit, connect, disconnect, client],
  );
}

export interface UseWebSocketEventResult {
  connected: boolean;
  status: ConnectionStatus;
  error: RealtimeError | null;
}

export interface UseWebSocketEventOptions extends UseWebSocketOptions, SubscribeOptions {
  /**
   * Whether the handler listens: false removes it (or never adds it) until
   * it is true again, e.g. `{ enabled: Boolean(invoiceId) }`. Default true.
   */
  enabled?: boolean;
}

/**
 * Calls handler with each `event` while the component is mounted (and
 * options.enabled is not false). The latest handler is always called, so an
 * inline function is fine: it does not re-register on every render. As with
 * subscribe, the payload's type follows from the event, or may be named
 * (`useWebSocketEvent<NotificationEventPayload>(NotificationEvent.NEW, …)`).
 *
 * With options.filter (a CEL expression over `payload`, e.g.
 * `payload.amount > 1000.0`), the connection subscribes to `event` through
 * that filter on mount and whenever the filter changes: the gateway sends the
 * event only when its payload passes. The filter is the connection's, not the
 * component's: every handler of `event` on the shared connection receives
 * what passes it, the last subscribe for an event sets its filter, and the
 * subscription stays after unmount (restored after reconnections) until
 * another subscribe or unsubscribe for the event. A refused filter is logged
 * with its reason. The other options are useWebSocket's.
 */
export function useWebSocketEvent<E extends ServerEventName>(
  event: E,
  handler: EventHandler<E>,
  options?: UseWebSocketEventOptions,
): UseWebSocketEventResult;
export function useWebSocketEvent<P>(
  event: EventsWithPayload<P>,
  handler: (payload: P) => void,
  options?: UseWebSocketEventOptions,
): UseWebSocketEventResult;
export function useWebSocketEvent(
  event: ServerEventName,
  handler: (payload: never) => void,
  options: UseWebSocketEventOptions = {},
): UseWebSocketEventResult {
  const { enabled = true, filter, ...connection } = options;
  const { client, connected, status, error } = useWebSocket(connection);
  const latest = useRef(handler);
  useLayoutEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    if (enabled && filter !== undefined) subscribeFiltered(client, event, filter);
  }, [client, event, filter, enabled]);
  useEffect(
    () => (enabled ? client.on(event, (payload) => latest.current(payload as never)) : undefined),
    [client, event, enabled],
  );
  return useMemo(() => ({ connected, status, error }), [connected, status, error]);
}

/** Subscribes the connection to a catalog event through a filter, and reports a refusal. */
function subscribeFiltered(client: RealtimeClient, event: ServerEventName, filter: string): void {
  if (!(EVENT_NAMES as readonly string[]).includes(event)) {
    console.warn(`@operate/realtime-client: ${JSON.stringify(event)} is not a catalog event: its filter is ignored`);
    return;
  }
  void client.subscribe(event as EventName, { filter, keepOthers: true }).then((ack) => {
    if (!ack.success) console.warn(`@operate/realtime-client: filter for ${event} refused (${ack.code}): ${ack.error}`);
  });
}

/**
 * Calls onGap when the connection could not recover what it missed (`history:gap`): the
 * application reloads what it shows from its source of truth. Returns the current gap (null when
 * the connection started clean or recovered everything).
 */
export function useGap(onGap?: (gap: HistoryGapPayload) => void): HistoryGapPayload | null {
  const client = useRealtimeClient();
  const latest = useRef(onGap);
  useLayoutEffect(() => {
    latest.current = onGap;
  });
  useEffect(() => client.on('history:gap', (gap) => latest.current?.(gap)), [client]);
  return useSyncExternalStore(client.onStateChange, () => client.getState().gap, () => client.getState().gap);
}

export interface UsePresenceOptions extends UseWebSocketOptions {
  /** false: no presence (nothing asked, nothing watched) until true again. Default true. */
  enabled?: boolean;
}

export interface UsePresenceResult {
  /**
   * The online users of the connection's organization, by user id: the server's answer on each
   * (re)connection, kept current with `presence:joined` and `presence:left`. A user who joined
   * since the answer is listed with 1 connection; `refresh()` reads the exact counts again.
   */
  users: PresenceUser[];
  /** The users have been read on the current connection. */
  ready: boolean;
  /** Why presence could not be read (`presence_unavailable`, `unsupported_event`, ...); null when it was. */
  error: string | null;
  /** Reads the users again. */
  refresh: () => void;
}

type PresenceChange = { joined: boolean; payload: PresenceChangePayload };

function applyPresence(users: Map<string, PresenceUser>, c: PresenceChange): void {
  if (!c.joined) {
    users.delete(c.payload.userId);
  } else if (!users.has(c.payload.userId)) {
    users.set(c.payload.userId, { userId: c.payload.userId, connections: 1, since: c.payload.timestamp });
  }
}

function sortedUsers(users: Map<string, PresenceUser>): PresenceUser[] {
  return Array.from(users.values()).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}

/**
 * Who is online in the connection's organization, live: on every connection the hook asks the
 * gateway (`presence {watch: true}`) and then applies the `presence:joined`/`presence:left` it
 * sends. The changes that arrive while the answer is on its way are applied after it, so none is
 * lost. Several components may use it on one connection; the last to unmount stops the watch.
 */
export function usePresence(options: UsePresenceOptions = {}): UsePresenceResult {
  const { enabled = true, ...connection } = options;
  const { client, connected } = useWebSocket(connection);
  const [state, setState] = useState<{ users: PresenceUser[]; ready: boolean; error: string | null }>({
    users: [],
    ready: false,
    error: null,
  });
  const [generation, setGeneration] = useState(0);
  const refresh = useCallback(() => setGeneration((g) => g + 1), []);

  useEffect(() => {
    if (!enabled || !connected) {
      setState((s) => (s.ready ? { ...s, ready: false } : s));
      return undefined;
    }
    let live = true;
    let users: Map<string, PresenceUser> | null = null; // null until the answer
    const early: PresenceChange[] = [];
    const onChange = (c: PresenceChange) => {
      if (!live) return;
      if (users === null) {
        early.push(c);
        return;
      }
      applyPresence(users, c);
      setState({ users: sortedUsers(users), ready: true, error: null });
    };
    const offJoined = client.on('presence:joined', (payload) => onChange({ joined: true, payload }));
    const offLeft = client.on('presence:left', (payload) => onChange({ joined: false, payload }));
    const release = client.retainPresence();
    void client.presence({ watch: true }).then((ack) => {
      if (!live) return;
      if (!ack.success) {
        setState((s) => ({ ...s, ready: false, error: `${ack.code}: ${ack.error}` }));
        return;
      }
      users = new Map(ack.users.map((u) => [u.userId, u]));
      for (const c of early) applyPresence(users, c);
      setState({ users: sortedUsers(users), ready: true, error: null });
    });
    return () => {
      live = false;
      offJoined();
      offLeft();
      release();
    };
  }, [client, connected, enabled, generation]);

  return useMemo(() => ({ ...state, refresh }), [state, refresh]);
}
