// React bindings: a provider that owns one connection for its tree, and the
// seed's hooks (useWebSocket, useWebSocketEvent) on top of it. Every component
// shares the provider's connection; each registers its own handlers, which go
// away when it unmounts. Effects are idempotent under StrictMode's
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
import type { ClientRequestMap, ClientRequestName, HistoryGapPayload, RefreshResult, ServerEventName } from './protocol.js';

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

/** The provider's client. Throws outside a RealtimeProvider. */
export function useRealtimeClient(): RealtimeClient {
  const client = useContext(RealtimeContext);
  if (!client) {
    throw new Error('@operate/realtime-client: useWebSocket and useWebSocketEvent must be used inside <RealtimeProvider>');
  }
  return client;
}

/** The connection's state; the component re-renders when it changes. */
export function useRealtimeState(): RealtimeState {
  const client = useRealtimeClient();
  return useSyncExternalStore(client.onStateChange, client.getState, client.getState);
}

export interface UseWebSocketOptions {
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
  subscribe: <E extends ServerEventName>(event: E, handler: EventHandler<E>, options?: SubscribeOptions) => () => void;
  /**
   * Sends `subscribe`, `unsubscribe` (server-side filters, kept across
   * reconnections) or `auth:refresh`, and resolves with the answer.
   */
  emit: EmitFunction;
  /** Connects (again). */
  connect: () => void;
  /** Disconnects until connect(). */
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
  const client = useRealtimeClient();
  const state = useSyncExternalStore(client.onStateChange, client.getState, client.getState);

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

  const subscribe = useCallback(
    <E extends ServerEventName>(event: E, handler: EventHandler<E>, options?: SubscribeOptions): (() => void) => {
      if (options?.filter !== undefined) subscribeFiltered(client, event, options.filter);
      const off = client.on(event, handler);
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
      connect: client.connect,
      disconnect: client.disconnect,
      state,
      client,
    }),
    [state, subscribe, emit, client],
  );
}

export interface UseWebSocketEventOptions extends SubscribeOptions {}

export interface UseWebSocketEventResult {
  connected: boolean;
  status: ConnectionStatus;
  error: RealtimeError | null;
}

/**
 * Calls handler with each `event` while the component is mounted. The latest
 * handler is always called, so an inline function is fine: it does not
 * re-register on every render.
 *
 * With options.filter (a CEL expression over `payload`, e.g.
 * `payload.amount > 1000.0`), the connection subscribes to `event` through
 * that filter on mount and whenever the filter changes: the gateway sends the
 * event only when its payload passes. The filter is the connection's, not the
 * component's: every handler of `event` on the shared connection receives
 * what passes it, the last subscribe for an event sets its filter, and the
 * subscription stays after unmount (restored after reconnections) until
 * another subscribe or unsubscribe for the event. A refused filter is logged
 * with its reason.
 */
export function useWebSocketEvent<E extends ServerEventName>(
  event: E,
  handler: EventHandler<E>,
  options: UseWebSocketEventOptions = {},
): UseWebSocketEventResult {
  const client = useRealtimeClient();
  const latest = useRef(handler);
  useLayoutEffect(() => {
    latest.current = handler;
  });
  const { filter } = options;
  useEffect(() => {
    if (filter !== undefined) subscribeFiltered(client, event, filter);
  }, [client, event, filter]);
  useEffect(() => client.on(event, (payload) => latest.current(payload)), [client, event]);
  const state = useSyncExternalStore(client.onStateChange, client.getState, client.getState);
  return useMemo(
    () => ({ connected: state.connected, status: state.status, error: state.error }),
    [state.connected, state.status, state.error],
  );
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
