// createRealtimeClient: one Socket.IO connection to the gateway's namespace,
// with token lookup and refresh, reconnection, typed events and server-side
// subscriptions. It fixes what the seed's socket-client.ts and useWebSocket got
// wrong (../../../docs/client.md): the URL is the origin plus the namespace,
// every (re)connection asks getToken for the current token, socket listeners
// are attached once per socket (never per connect), and failures surface as a
// status and an error with a code.

import { Manager, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

import { Backoff, type BackoffOptions } from './backoff.js';
import { FATAL_AUTH_CODES, RealtimeError } from './errors.js';
import { EVENT_NAMES, type EventName } from './generated/events.js';
import type {
  AckFailure,
  ConnectedPayload,
  EventsWithPayload,
  HistoryGapPayload,
  SessionRevokedPayload,
  PresenceRequest,
  PresenceResult,
  HistoryRequest,
  HistoryResult,
  RefreshResult,
  ServerEventMap,
  ServerEventName,
  SubscribeResult,
  SubscriptionPattern,
  UnsubscribeResult,
} from './protocol.js';
import { ControlEvent } from './protocol.js';
import { lookupToken } from './token.js';

/** The connection's status. */
export type ConnectionStatus =
  /** Connecting, or reconnecting after a lost connection or an expired token. */
  | 'connecting'
  /** Connected and authenticated: events flow. */
  | 'connected'
  /** Not connected and not trying: before connect(), after disconnect(). */
  | 'disconnected'
  /** Not connected and not retrying: see error (refused token, reconnection gave up, ...). */
  | 'error';

/** A snapshot of the client's state. A new object whenever something changes. */
export interface RealtimeState {
  readonly status: ConnectionStatus;
  /** status === 'connected'. */
  readonly connected: boolean;
  /**
   * The last error, with its code; null once connected again. While status is
   * 'connecting' it says why the client is retrying (error.retrying is true).
   */
  readonly error: RealtimeError | null;
  /** Who the gateway says the connection belongs to (from `connected`). */
  readonly identity: { readonly userId: string; readonly organizationId: string } | null;
  /** When the connection's token expires, as the gateway reported it (`connected`, refreshes). */
  readonly expiresAt: string | null;
  /** The transport in use while connected. */
  readonly transport: 'websocket' | 'polling' | null;
  /**
   * The server-side subscriptions: the events the connection receives (some
   * maybe through a payload filter), in catalog order; null when it receives
   * every event, unfiltered (it never subscribed, or subscribed to '*').
   */
  readonly subscriptions: readonly EventName[] | null;
  /** The current reconnection attempt (1, 2, ...), 0 when not reconnecting. */
  readonly reconnectAttempt: number;
  /**
   * Whether the current (or last) connection recovered the previous one's session: the gateway
   * (with its RECOVERY_WINDOW) replayed every event missed meanwhile. False after a reconnection
   * means events may have been missed: reload what the page shows.
   */
  readonly recovered: boolean;
  /**
   * Set when the current connection could not recover the previous one's session and the gateway
   * said so (`history:gap`): events may have been missed since `gap.from`, reload what the page
   * shows. null otherwise (a first connection, or a recovered one).
   */
  readonly gap: HistoryGapPayload | null;
  /**
   * Set when the server disconnected this client on purpose (`session:revoked`): an operator
   * removed it (`code` SESSION_REVOKED, with the operator's `reason` to show) or its token was
   * revoked (TOKEN_REVOKED). The client does not reconnect by itself (status 'error', error.code
   * the same code); null otherwise, and again once connected.
   */
  readonly revoked: SessionRevokedPayload | null;
}

/** Reconnection settings: exponential backoff with jitter. */
export interface ReconnectionOptions extends BackoffOptions {
  /** Attempts before giving up with RECONNECT_FAILED. Default Infinity. */
  attempts?: number;
}

/** Where the client keeps its position (localStorage, sessionStorage, or your own). */
export type PositionStorage = Pick<Storage, 'getItem' | 'setItem'>;

/** How the client keeps the position of the last event it received (see RealtimeClientOptions.position). */
export interface PositionOptions {
  /** Default: the page's localStorage when it has one (none in Node: then nothing is kept). */
  storage?: PositionStorage | null;
  /** The key prefix; the organization and user ids are appended (`<key>:<organizationId>:<userId>`). Default 'op_realtime_position'. */
  key?: string;
  /** At most this many events are caught up after a connection; beyond, it is a gap. Default 10000. */
  maxEvents?: number;
}

/** Where createRealtimeClient finds the token (see getToken). */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface RealtimeClientOptions {
  /**
   * The gateway's origin, e.g. `https://realtime.operate.example`. Only the
   * origin is used: the namespace is added to it (a path such as `/api/v1` is
   * ignored with a warning; behind a path prefix, set `path`). Default: the
   * page's origin.
   */
  url?: string;
  /** The Socket.IO namespace. Default '/events'. */
  namespace?: string;
  /** The Engine.IO path. Default '/socket.io/'. */
  path?: string;
  /**
   * Returns the current token; called before every connection and
   * reconnection, and by refreshToken(), so a refreshed token is always used.
   * May be async. Default: lookupToken() with `token`, `tokenCookieNames` and
   * `tokenStorageKeys` (explicit token, then a cookie, then localStorage).
   */
  getToken?: TokenSource;
  /** An explicit token for the default lookup. */
  token?: string | null;
  /** Cookies the default lookup reads, in order. Default ['op_auth', 'access_token']. */
  tokenCookieNames?: readonly string[];
  /** localStorage keys the default lookup reads, in order. Default ['op_auth', 'access_token']. */
  tokenStorageKeys?: readonly string[];
  /** Connect at once. Default true (RealtimeProvider connects on mount instead). */
  autoConnect?: boolean;
  /**
   * Reconnection after a lost connection, an unreachable server or an expired
   * token: exponential backoff from `delay` (1 s) to `maxDelay` (30 s), ±`jitter`
   * (0.5), `attempts` (Infinity). false disables it.
   */
  reconnection?: false | ReconnectionOptions;
  /** Transports, in order of preference. Default ['websocket', 'polling']: WebSocket first, long-polling as a fallback. */
  transports?: ReadonlyArray<'websocket' | 'polling'>;
  /** Answer `auth:expiring` with refreshToken(). Default true. */
  autoRefresh?: boolean;
  /** How long to wait for an acknowledgement (subscribe, refresh), in ms. Default 10000. */
  ackTimeout?: number;
  /** How long one connection attempt may take, in ms. Default 20000. */
  connectTimeout?: number;
  /** Extra socket.io-client options (e.g. extraHeaders, withCredentials); they win over the above. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** Where warnings go. Default console; null silences them. */
  logger?: Pick<Console, 'warn' | 'error'> | null;
  /**
   * Keeps the position (offset) of the last event received, per organization and user, in
   * storage (localStorage by default), so that a connection that does not recover the previous
   * one's session — a page reload, a new tab, a return after the recovery window — first
   * receives what was published since from the gateway's history (`history`; needs its
   * RECOVERY_WINDOW or HISTORY_SIZE): a user's notifications wait for them while they are away.
   * Live events arriving meanwhile are held and delivered after, without duplicates. When the
   * history no longer holds that position, `history:gap` is dispatched (state.gap, useGap); a
   * server `history:gap` that the history fills is not. false turns it off.
   */
  position?: false | PositionOptions;
}

/** Options of a subscribe request. */
export interface SubscribeOptions {
  /**
   * A filter on the payloads of the subscribed events, evaluated by the
   * gateway: a CEL expression over `payload` and `event`, e.g.
   * `payload.amount > 1000.0 && payload.currency == 'EUR'` (see
   * SubscribeRequest.filter). The events of this request arrive only when it
   * is true. It is the connection's filter for these events: it replaces what
   * an earlier subscribe said for them (a subscribe without a filter removes
   * it), and unsubscribe removes it with them.
   */
  filter?: string;
  /**
   * A connection that receives every event (it never subscribed) is narrowed
   * by its first subscribe to the subscribed events. With keepOthers it keeps
   * receiving every other event: only these events change (they arrive
   * through the filter). The hooks set it, so that one component's filter does
   * not stop the events of the others. Default false.
   */
  keepOthers?: boolean;
}

/** A handler of server event E. */
export type EventHandler<E extends ServerEventName> = (payload: ServerEventMap[E]) => void;

/** A handler of every server event. */
export type AnyEventHandler = <E extends ServerEventName>(event: E, payload: ServerEventMap[E]) => void;

/** A connection to the gateway. Its methods are bound: pass them around freely. */
export interface RealtimeClient {
  /** The Socket.IO URL: origin + namespace. */
  readonly url: string;
  /** The underlying socket, once connect() was called (for what this API lacks). */
  readonly socket: Socket | null;
  /** The current state; the same object until something changes. */
  getState(): RealtimeState;
  /** Calls listener after every state change; returns the function that stops it. */
  onStateChange(listener: (state: RealtimeState, previous: RealtimeState) => void): () => void;
  /**
   * Calls handler with each `event` the server sends; returns the function that
   * removes it. Any number of handlers may listen to the same event. The
   * payload's type follows from the event; naming it instead
   * (`on<InvoiceEventPayload>(InvoiceEvent.PAID, …)`) is accepted for the
   * events that have it.
   */
  on<E extends ServerEventName>(event: E, handler: EventHandler<E>): () => void;
  on<P>(event: EventsWithPayload<P>, handler: (payload: P) => void): () => void;
  /** Calls handler with every event the server sends; returns the function that removes it. */
  onAny(handler: AnyEventHandler): () => void;
  /** The number of handlers of event, or of every event (on and onAny) without one. */
  listenerCount(event?: ServerEventName): number;
  /** Connects (again), with a token from getToken. Does nothing when connected or connecting. */
  connect(): void;
  /** Disconnects and stops reconnecting, until connect(). */
  disconnect(): void;
  /**
   * Narrows (first call) or widens (later calls) the events the server sends:
   * event names, domain wildcards (`invoice:*`) or '*', optionally through a
   * payload filter (options.filter). Resolves with the server's answer; while
   * disconnected, the request waits for the connection. The subscriptions,
   * filters included, are restored after every reconnection.
   */
  subscribe(patterns: SubscriptionPattern | readonly SubscriptionPattern[], options?: SubscribeOptions): Promise<SubscribeResult>;
  /**
   * Reads the history of the connection's organization and user (`history`): the events after
   * `since`, as the connection would receive them (its subscriptions and filters applied), at
   * most `limit` (1 to 500), only `events` when given. Not connected: `{success: false, code:
   * 'not_connected'}`.
   */
  history(request?: HistoryRequest): Promise<HistoryResult>;
  /** Stops events from being sent: the reverse of subscribe. */
  unsubscribe(patterns: SubscriptionPattern | readonly SubscriptionPattern[]): Promise<UnsubscribeResult>;
  /**
   * Replaces the connection's token (`auth:refresh`) with `token`, or with a
   * fresh one from getToken, without reconnecting. Called automatically on
   * `auth:expiring` unless autoRefresh is false.
   */
  refreshToken(token?: string): Promise<RefreshResult>;
  /**
   * Who is online in the connection's organization (`presence`), across the gateway's nodes.
   * `{watch: true}` also makes the server send `presence:joined` and `presence:left` (listen with
   * on()). Resolves with `{success: false, code: 'NOT_CONNECTED'}` while disconnected: a new
   * connection watches nothing until asked again (usePresence does that by itself).
   */
  presence(options?: PresenceRequest): Promise<PresenceResult>;
  /**
   * Counts a watcher of presence changes and returns the function that releases it; when the
   * last one is released, the connection stops watching (`presence {watch: false}`). Start
   * watching with presence({ watch: true }).
   */
  retainPresence(): () => void;
}

type Op = {
  kind: 'subscribe' | 'unsubscribe';
  patterns: string[];
  filter?: string; // subscribe only
  keepOthers?: boolean; // subscribe only: see SubscribeOptions
  resolve: (ack: SubscribeResult | UnsubscribeResult) => void;
};

const CATALOG: ReadonlySet<string> = new Set(EVENT_NAMES);
const HISTORY_PAGE = 500; // the gateway's limit per request
const GAP_MESSAGE = 'Some events since the last connection could not be recovered: reload the data shown';
const MAX_PATTERNS = 100; // the gateway's limit per request

const INITIAL_STATE: RealtimeState = Object.freeze({
  status: 'disconnected',
  connected: false,
  error: null,
  identity: null,
  expiresAt: null,
  transport: null,
  subscriptions: null,
  reconnectAttempt: 0,
  recovered: false,
  gap: null,
  revoked: null,
});

/** Creates a client of the gateway's `/events` namespace. */
export function createRealtimeClient(options: RealtimeClientOptions = {}): RealtimeClient {
  return new Client(options);
}

/** Builds the Socket.IO URL: the origin of `url` (default the page's) plus the namespace. */
export function buildUrl(url: string | undefined, namespace = '/events', warn?: (msg: string) => void): string {
  const base = typeof location !== 'undefined' && location?.href ? location.href : undefined;
  if (!url && !base) throw new Error('createRealtimeClient: `url` is required outside a browser');
  const u = new URL(url || base!, base);
  if (url && u.pathname !== '/' && u.pathname !== '') {
    warn?.(
      `realtime-client: ignoring the path ${JSON.stringify(u.pathname)} of url ${JSON.stringify(url)}: ` +
        `the URL is the gateway's origin plus the namespace (${namespace}); a path would be read as another namespace. ` +
        'Behind a path prefix, set the `path` option.',
    );
  }
  const protocol = u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol;
  const origin = `${protocol}//${u.host}`;
  return origin + normalizeNamespace(namespace);
}

function normalizeNamespace(ns: string): string {
  const n = ns.trim() || '/events';
  return n.startsWith('/') ? n : '/' + n;
}

class Client implements RealtimeClient {
  readonly url: string;
  private readonly origin: string;
  private readonly namespace: string;
  private readonly opts: RealtimeClientOptions;
  private readonly log: Pick<Console, 'warn' | 'error'> | null;
  private readonly backoff: Backoff;
  private readonly maxAttempts: number;
  private readonly ackTimeout: number;

  private sock: Socket | null = null;
  private state: RealtimeState = INITIAL_STATE;
  private readonly stateListeners = new Set<(s: RealtimeState, p: RealtimeState) => void>();
  private readonly handlers = new Map<string, Set<(payload: unknown) => void>>();
  private readonly anyHandlers = new Set<AnyEventHandler>();

  /** The app wants a connection (connect() was called, disconnect() was not). */
  private wanted = false;
  /** Incremented by disconnect() and failures: pending token lookups are abandoned. */
  private gen = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** The token sent with the last connection attempt or accepted refresh. */
  private currentToken: string | null = null;
  /** A token the server refused as expired: sending it again is pointless. */
  private expiredToken: string | null = null;
  /** A token given to refreshToken(token) when there is no getToken. */
  private explicitToken: string | null = null;
  /** `auth:expired` arrived on the current connection. */
  private expired = false;
  /** `session:revoked` arrived on the current connection. */
  private revokedBy: SessionRevokedPayload | null = null;

  /** The applied server-side subscriptions; null: every event, unfiltered. */
  private committed: EventName[] | null = null;
  private committedSet: ReadonlySet<string> = new Set();
  /** The payload filter of each committed event that has one. */
  private filters = new Map<EventName, string>();
  private readonly pending: Op[] = [];
  /** Holders of retainPresence(). */
  private presenceWatchers = 0;
  private replayNeeded = false;
  private replaying = false;
  private pumping = false;

  /** Where the last event's position is kept; null: not kept. */
  private readonly positions: PositionStorage | null;
  private readonly positionPrefix: string;
  private readonly maxCatchUp: number;
  /** 'pending' from `connected` until the catch-up runs, then 'running'. */
  private catchUp: 'none' | 'pending' | 'running' = 'none';
  /** Live catalog events held during the catch-up: [event, payload, offset]. */
  private held: [string, unknown, string | undefined][] = [];
  /** A server `history:gap` held during the catch-up (delivered unless the history fills it). */
  private heldGap: HistoryGapPayload | null = null;

  constructor(options: RealtimeClientOptions) {
    this.opts = options;
    this.log = options.logger === undefined ? console : options.logger;
    this.namespace = normalizeNamespace(options.namespace ?? '/events');
    this.url = buildUrl(options.url, this.namespace, (m) => this.log?.warn(m));
    this.origin = this.url.slice(0, this.url.length - this.namespace.length);
    const rec = options.reconnection === false ? {} : (options.reconnection ?? {});
    this.backoff = new Backoff(rec);
    this.maxAttempts = options.reconnection === false ? 0 : (rec.attempts ?? Infinity);
    this.ackTimeout = options.ackTimeout ?? 10_000;
    const pos = options.position === false ? null : (options.position ?? {});
    this.positions = pos === null ? null : pos.storage === undefined ? defaultStorage() : pos.storage;
    this.positionPrefix = pos?.key ?? 'op_realtime_position';
    this.maxCatchUp = pos?.maxEvents ?? 10_000;
    if (options.autoConnect ?? true) this.connect();
  }

  get socket(): Socket | null {
    return this.sock;
  }

  // --- state -------------------------------------------------------------

  getState = (): RealtimeState => this.state;

  onStateChange = (listener: (state: RealtimeState, previous: RealtimeState) => void): (() => void) => {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  };

  private setState(patch: Partial<RealtimeState>): void {
    const prev = this.state;
    let changed = false;
    for (const k of Object.keys(patch) as (keyof RealtimeState)[]) {
      if (prev[k] !== patch[k]) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    const next = { ...prev, ...patch };
    next.connected = next.status === 'connected';
    this.state = Object.freeze(next);
    for (const l of Array.from(this.stateListeners)) {
      try {
        l(this.state, prev);
      } catch (err) {
        report(err, this.log);
      }
    }
  }

  // --- handlers ----------------------------------------------------------

  on: RealtimeClient['on'] = (event: ServerEventName, handler: (payload: never) => void): (() => void) => {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    // A wrapper per registration: the same function registered twice is two
    // registrations, each removed by its own unsubscribe function.
    const h = (p: unknown) => handler(p as never);
    set.add(h);
    return () => {
      const s = this.handlers.get(event);
      if (s?.delete(h) && s.size === 0) this.handlers.delete(event);
    };
  };

  onAny = (handler: AnyEventHandler): (() => void) => {
    const h: AnyEventHandler = (e, p) => handler(e, p);
    this.anyHandlers.add(h);
    return () => {
      this.anyHandlers.delete(h);
    };
  };

  listenerCount = (event?: ServerEventName): number => {
    if (event !== undefined) return this.handlers.get(event)?.size ?? 0;
    let n = this.anyHandlers.size;
    for (const s of this.handlers.values()) n += s.size;
    return n;
  };

  /** An event from the socket: its payload, and its offset when the gateway keeps a history. */
  private receive(event: string, args: unknown[]): void {
    const payload = args[0];
    const last = args.length > 1 ? args[args.length - 1] : undefined;
    const offset = CATALOG.has(event) && typeof last === 'string' ? last : undefined;
    if (this.catchUp !== 'none') {
      if (CATALOG.has(event)) {
        this.held.push([event, payload, offset]);
        return;
      }
      if (event === ControlEvent.HISTORY_GAP) {
        this.heldGap = payload as HistoryGapPayload;
        return;
      }
    }
    this.dispatch(event, payload);
    if (offset !== undefined) this.savePosition(offset);
    if (event === ControlEvent.CONNECTED && this.positions && this.sock?.recovered !== true && this.loadPosition() !== null) {
      // A new session (no recovery): catch up from the kept position once the
      // subscriptions are restored, holding live events meanwhile.
      this.catchUp = 'pending';
      void this.pump();
    }
  }

  private positionKey(): string | null {
    const id = this.state.identity;
    return id ? `${this.positionPrefix}:${id.organizationId}:${id.userId}` : null;
  }

  private loadPosition(): string | null {
    const key = this.positionKey();
    if (!this.positions || key === null) return null;
    try {
      return this.positions.getItem(key);
    } catch {
      return null; // storage unavailable (privacy mode, quota): no catch-up
    }
  }

  private savePosition(offset: string): void {
    const key = this.positionKey();
    if (!this.positions || key === null) return;
    try {
      this.positions.setItem(key, offset);
    } catch {
      // storage full or forbidden: the next page simply cannot catch up
    }
  }

  /**
   * Delivers what the history holds after the kept position, then the live
   * events held meanwhile (minus those the history delivered). A position
   * the history no longer covers is a gap, dispatched as `history:gap`.
   */
  private async runCatchUp(s: Socket): Promise<void> {
    const since = this.loadPosition();
    const seen = new Set<string>();
    let cursor = since;
    let filled = since === null;
    // A gap is said when the history says it no longer holds the position
    // (or cannot hold all of it), not when it cannot be read: then only the
    // server's own history:gap, if it sent one, is.
    let gap = false;
    let gapFrom = since ?? '';
    let delivered = 0;
    while (cursor !== null) {
      let ack: HistoryResult;
      try {
        ack = await s.timeout(this.ackTimeout).emitWithAck(ControlEvent.HISTORY, { since: cursor, limit: HISTORY_PAGE });
      } catch {
        break;
      }
      if (!ack.success) {
        if (ack.code === 'history_gap') gap = true;
        else this.log?.warn(`realtime-client: catching up from the kept position failed (${ack.code}): ${ack.error}`);
        break;
      }
      for (const ev of ack.events) {
        seen.add(ev.offset);
        this.dispatch(ev.event, ev.payload);
        this.savePosition(ev.offset);
      }
      delivered += ack.events.length;
      cursor = ack.offset;
      if (!ack.more) {
        filled = true;
        break;
      }
      if (delivered >= this.maxCatchUp) {
        gap = true;
        gapFrom = cursor;
        break;
      }
    }
    if (this.sock !== s || !s.connected) {
      // Cut off: the next connection starts over from the position kept so
      // far (if it already asked to, what it holds stays for its catch-up).
      if (this.catchUp === 'running') {
        this.held = [];
        this.heldGap = null;
        this.catchUp = 'none';
      }
      return;
    }
    const held = this.held;
    const serverGap = this.heldGap;
    this.held = [];
    this.heldGap = null;
    this.catchUp = 'none';
    if (!filled && (serverGap || gap)) {
      this.dispatch(ControlEvent.HISTORY_GAP, serverGap ?? { message: GAP_MESSAGE, reason: 'unavailable', from: gapFrom });
    }
    for (const [event, payload, offset] of held) {
      if (offset !== undefined && seen.has(offset)) continue;
      this.dispatch(event, payload);
      if (offset !== undefined) this.savePosition(offset);
    }
  }

  history = async (request: HistoryRequest = {}): Promise<HistoryResult> => {
    const s = this.sock;
    if (!s || !s.connected) return failure('not_connected', 'not connected');
    try {
      return await s.timeout(this.ackTimeout).emitWithAck(ControlEvent.HISTORY, request);
    } catch {
      return s.connected
        ? failure('timeout', `no answer to history within ${this.ackTimeout} ms`)
        : failure('not_connected', 'disconnected before the history was answered');
    }
  };

  private dispatch(event: string, payload: unknown): void {
    switch (event) {
      case ControlEvent.CONNECTED: {
        const p = payload as ConnectedPayload;
        this.setState({
          identity: { userId: p.userId, organizationId: p.organizationId },
          expiresAt: p.expiresAt ?? null,
        });
        break;
      }
      case ControlEvent.AUTH_EXPIRING:
        if (this.opts.autoRefresh ?? true) {
          void this.refreshToken().then((res) => {
            if (!res.ok && res.code !== 'NOT_CONNECTED') {
              this.log?.warn(`realtime-client: token refresh refused (${res.code}): ${res.error}`);
              this.setState({ error: new RealtimeError(res.code, res.error) });
            }
          });
        }
        break;
      case ControlEvent.AUTH_EXPIRED:
        this.expired = true;
        break;
      case ControlEvent.HISTORY_GAP:
        this.setState({ gap: payload as HistoryGapPayload });
        break;
      case ControlEvent.SESSION_REVOKED:
        this.revokedBy = payload as SessionRevokedPayload;
        break;
    }
    // Until the subscriptions are restored on a new session, drop what they
    // exclude, and the events of filtered subscriptions too: their filter is
    // the server's to evaluate.
    if (
      this.replaying &&
      this.committed !== null &&
      CATALOG.has(event) &&
      (!this.committedSet.has(event) || this.filters.has(event as EventName))
    ) {
      return;
    }
    const set = this.handlers.get(event);
    if (set) {
      for (const h of Array.from(set)) {
        try {
          h(payload);
        } catch (err) {
          report(err, this.log);
        }
      }
    }
    for (const h of Array.from(this.anyHandlers)) {
      try {
        h(event as ServerEventName, payload as never);
      } catch (err) {
        report(err, this.log);
      }
    }
  }

  // --- connection --------------------------------------------------------

  connect = (): void => {
    this.wanted = true;
    this.clearRetry();
    const s = this.ensureSocket();
    if (s.connected || s.active) return; // connected, or connecting/reconnecting
    this.setState({ status: 'connecting', reconnectAttempt: 0 });
    this.backoff.reset();
    s.connect();
  };

  disconnect = (): void => {
    this.wanted = false;
    this.clearRetry();
    this.gen++;
    this.sock?.disconnect();
    this.setState({ status: 'disconnected', transport: null, reconnectAttempt: 0 });
  };

  /** The socket, created (not connected) on first use; socketOf() gives it to the shared client. */
  ensureSocket(): Socket {
    if (this.sock) return this.sock;
    const o = this.opts;
    const transports = [...(o.transports ?? ['websocket', 'polling'])];
    // A Manager of our own (not io()): no cache shared with other clients of
    // the same URL, and nothing global to clean up.
    const manager = new Manager(this.origin, {
      path: o.path ?? '/socket.io/',
      autoConnect: false,
      reconnection: o.reconnection !== false,
      reconnectionAttempts: this.maxAttempts,
      reconnectionDelay: this.backoff.delay,
      reconnectionDelayMax: this.backoff.maxDelay,
      randomizationFactor: this.backoff.jitter,
      timeout: o.connectTimeout ?? 20_000,
      transports,
      tryAllTransports: transports.length > 1,
      ...o.socketOptions,
    });
    const socket = manager.socket(this.namespace, {
      ...o.socketOptions,
      // Called before every CONNECT, so every (re)connection uses a current token.
      auth: (cb) => this.authenticate(cb),
    });
    // Listeners are attached once, for the socket's whole life.
    socket.on('connect', () => this.onConnect(socket));
    socket.on('connect_error', (err) => this.onConnectError(socket, err));
    socket.on('disconnect', (reason) => this.onDisconnect(socket, reason));
    socket.onAny((event: string, ...args: unknown[]) => this.receive(event, args));
    manager.on('reconnect_attempt', (attempt) => {
      if (this.wanted) this.setState({ status: 'connecting', reconnectAttempt: attempt });
    });
    manager.on('reconnect_failed', () => {
      this.fail(new RealtimeError('RECONNECT_FAILED', `could not reconnect after ${this.maxAttempts} attempts`));
    });
    this.sock = socket;
    return socket;
  }

  private async resolveToken(): Promise<string | null> {
    const raw = this.opts.getToken
      ? await this.opts.getToken()
      : lookupToken({
          token: this.explicitToken ?? this.opts.token,
          cookieNames: this.opts.tokenCookieNames,
          storageKeys: this.opts.tokenStorageKeys,
        });
    return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : null;
  }

  private authenticate(cb: (data: object) => void): void {
    const gen = this.gen;
    this.resolveToken().then(
      (token) => {
        if (gen !== this.gen || !this.wanted) return; // disconnected meanwhile
        if (!token) {
          this.fail(new RealtimeError('NO_TOKEN', 'No token: getToken returned none (log in first)'));
        } else if (token === this.expiredToken) {
          this.fail(new RealtimeError('TOKEN_EXPIRED', 'Unauthorized: Token expired (and no newer token is available)'));
        } else {
          this.currentToken = token;
          cb({ token });
        }
      },
      (err: unknown) => {
        if (gen !== this.gen || !this.wanted) return;
        this.retryLater(
          new RealtimeError('GET_TOKEN_FAILED', `getToken failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
            retrying: true,
          }),
        );
      },
    );
  }

  private onConnect(socket: Socket): void {
    this.backoff.reset();
    this.expiredToken = null;
    this.expired = false;
    this.revokedBy = null;
    const engine = socket.io.engine;
    const transport = transportName(engine?.transport?.name);
    engine?.once('upgrade', (t: { name?: string }) => {
      if (this.sock === socket && socket.connected) this.setState({ transport: transportName(t.name) });
    });
    this.replayNeeded = this.committed !== null;
    // A recovered session kept its subscriptions on the server: what arrives
    // meanwhile is already filtered. A new one receives everything until the
    // subscriptions are restored.
    this.replaying = this.replayNeeded && socket.recovered !== true;
    // socket.io-client leaves `recovered` undefined when the server offers no recovery.
    this.setState({ status: 'connected', error: null, reconnectAttempt: 0, transport, recovered: socket.recovered === true, gap: null, revoked: null });
    void this.pump();
  }

  private onConnectError(socket: Socket, err: Error & { data?: unknown }): void {
    if (!this.wanted) return;
    const data = err.data && typeof err.data === 'object' ? (err.data as { code?: unknown }) : undefined;
    let code = typeof data?.code === 'string' ? data.code : undefined;
    if (!code && err.message === 'Invalid namespace') code = 'INVALID_NAMESPACE';
    if (socket.active) {
      // Transport-level failure: the manager retries with backoff.
      this.setState({
        status: 'connecting',
        error: new RealtimeError('TRANSPORT_ERROR', err.message, { cause: err, retrying: true }),
      });
      return;
    }
    // Refused by the server: socket.io-client does not retry by itself.
    if (code === 'TOKEN_EXPIRED') {
      // Retry with a fresh token, unless getToken can only return this one.
      this.expiredToken = this.currentToken;
      this.retryLater(new RealtimeError(code, err.message, { cause: err, retrying: true }));
    } else if (code === 'AUTH_UNAVAILABLE') {
      this.retryLater(new RealtimeError(code, err.message, { cause: err, retrying: true }));
    } else {
      this.fail(new RealtimeError(code ?? 'CONNECT_ERROR', err.message, { cause: err }));
      if (code && !FATAL_AUTH_CODES.has(code) && code !== 'INVALID_NAMESPACE') {
        this.log?.warn(`realtime-client: connection refused (${code}): ${err.message}`);
      }
    }
  }

  private onDisconnect(socket: Socket, reason: Socket.DisconnectReason): void {
    this.replaying = false;
    if (this.catchUp === 'pending') {
      // Never started: what was held is dropped with the session (the next
      // connection catches up from the kept position).
      this.catchUp = 'none';
      this.held = [];
      this.heldGap = null;
    }
    if (reason === 'io client disconnect' || !this.wanted) {
      this.setState({ status: 'disconnected', transport: null });
      return;
    }
    if (reason === 'io server disconnect') {
      const revoked = this.revokedBy;
      if (revoked) {
        // Removed on purpose: not a reason to reconnect, nor to treat as an expiry.
        this.revokedBy = null;
        this.fail(new RealtimeError(revoked.code, revoked.reason || revoked.message), { revoked });
      } else if (this.expired) {
        // The token expired before a refresh replaced it: reconnect with a new one.
        this.expiredToken = this.currentToken;
        this.retryLater(new RealtimeError('TOKEN_EXPIRED', 'Unauthorized: Token expired', { retrying: true }));
      } else {
        this.fail(new RealtimeError('SERVER_DISCONNECT', 'the server closed the connection'));
      }
      return;
    }
    // Lost connection: the manager reconnects, unless reconnection is off.
    if (this.opts.reconnection === false || !socket.active) {
      this.fail(new RealtimeError('CONNECTION_LOST', `connection lost: ${reason}`));
      return;
    }
    this.setState({
      status: 'connecting',
      transport: null,
      error: new RealtimeError('CONNECTION_LOST', `connection lost: ${reason}`, { retrying: true }),
    });
  }

  /** Stops trying: status 'error' until connect() is called again. */
  private fail(error: RealtimeError, also: { revoked?: SessionRevokedPayload } = {}): void {
    this.clearRetry();
    this.gen++;
    this.sock?.disconnect();
    this.setState({ status: 'error', error, transport: null, reconnectAttempt: 0, ...also });
  }

  /** Reconnects after a backoff delay (for refusals socket.io-client does not retry). */
  private retryLater(error: RealtimeError): void {
    if (!this.wanted) return;
    if (this.backoff.attempts >= this.maxAttempts) {
      this.fail(new RealtimeError(error.code, error.message, { cause: error.cause }));
      return;
    }
    this.clearRetry();
    this.gen++;
    this.sock?.disconnect(); // stop anything in progress; the timer connects again
    const delay = this.backoff.next();
    this.setState({ status: 'connecting', error, transport: null, reconnectAttempt: this.backoff.attempts });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const s = this.sock;
      if (this.wanted && s && !s.connected && !s.active) s.connect();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  // --- requests ----------------------------------------------------------

  subscribe = (
    patterns: SubscriptionPattern | readonly SubscriptionPattern[],
    options: SubscribeOptions = {},
  ): Promise<SubscribeResult> => this.enqueue('subscribe', patterns, options) as Promise<SubscribeResult>;

  unsubscribe = (patterns: SubscriptionPattern | readonly SubscriptionPattern[]): Promise<UnsubscribeResult> =>
    this.enqueue('unsubscribe', patterns) as Promise<UnsubscribeResult>;

  private enqueue(
    kind: Op['kind'],
    patterns: SubscriptionPattern | readonly SubscriptionPattern[],
    options: SubscribeOptions = {},
  ): Promise<SubscribeResult | UnsubscribeResult> {
    const list: string[] = typeof patterns === 'string' ? [patterns] : [...patterns];
    if (list.length === 0 || list.length > MAX_PATTERNS) {
      return Promise.resolve(failure('invalid_request', `${kind} needs 1 to ${MAX_PATTERNS} events, got ${list.length}`));
    }
    return new Promise((resolve) => {
      this.pending.push({ kind, patterns: list, filter: options.filter, keepOthers: options.keepOthers, resolve });
      void this.pump();
    });
  }

  /**
   * Sends the queued subscription requests, one at a time, after restoring
   * the filter on a new connection. A request interrupted by a disconnection
   * stays queued and is sent again after the reconnection.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const s = this.sock;
        if (!s || !s.connected) return;
        if (this.replayNeeded) {
          this.replayNeeded = false;
          const done = await this.replay(s);
          if (!done && !s.connected) {
            this.replayNeeded = true; // next connection
            return;
          }
          this.replaying = false;
          continue;
        }
        if (this.catchUp === 'pending') {
          this.catchUp = 'running';
          await this.runCatchUp(s);
          continue;
        }
        const op = this.pending[0];
        if (!op) return;
        let ack: SubscribeResult | UnsubscribeResult;
        try {
          ack = await this.send(s, op);
        } catch {
          if (!s.connected) return; // disconnected: sent again after the reconnection
          ack = failure('timeout', `no answer to ${op.kind} within ${this.ackTimeout} ms`);
        }
        this.pending.shift();
        if (ack && ack.success) this.apply(op, ack.subscriptions);
        op.resolve(ack);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Sends one queued request. A subscribe with keepOthers on a connection
   * that receives every event first removes its events (so that the subscribe
   * adds them back rather than narrowing to them), and puts them back if the
   * subscribe is refused (a bad filter).
   */
  private async send(s: Socket, op: Op): Promise<SubscribeResult | UnsubscribeResult> {
    const removeFirst = op.kind === 'subscribe' && op.keepOthers === true && this.committed === null && !op.patterns.includes('*');
    if (removeFirst) {
      const off: UnsubscribeResult = await s.timeout(this.ackTimeout).emitWithAck('unsubscribe', request(op.patterns, undefined));
      if (!off.success) return off;
      this.apply({ kind: 'unsubscribe', patterns: op.patterns, resolve: () => {} }, off.subscriptions);
    }
    const ack: SubscribeResult | UnsubscribeResult = await s.timeout(this.ackTimeout).emitWithAck(op.kind, request(op.patterns, op.filter));
    if (removeFirst && !ack.success) {
      const back: SubscribeResult = await s.timeout(this.ackTimeout).emitWithAck('subscribe', request(op.patterns, undefined));
      if (back.success) this.apply({ kind: 'subscribe', patterns: op.patterns, resolve: () => {} }, back.subscriptions);
    }
    return ack;
  }

  /**
   * Restores the committed subscriptions on a new connection (a new socket
   * receives everything): the unfiltered events first, then the events of
   * each filter with their filter.
   */
  private async replay(s: Socket): Promise<boolean> {
    const list = this.committed;
    if (list === null) return true;
    const groups = new Map<string | undefined, EventName[]>([[undefined, []]]);
    for (const e of list) {
      const f = this.filters.get(e);
      const g = groups.get(f);
      if (g) g.push(e);
      else groups.set(f, [e]);
    }
    const requests: [Op['kind'], string[], string | undefined][] = [];
    if (list.length === 0) requests.push(['unsubscribe', ['*'], undefined]);
    for (const [filter, events] of groups) {
      for (const c of chunk(events, MAX_PATTERNS)) requests.push(['subscribe', c, filter]);
    }
    let last: SubscribeResult | UnsubscribeResult | undefined;
    for (const [kind, events, filter] of requests) {
      let ack: SubscribeResult | UnsubscribeResult;
      try {
        ack = await s.timeout(this.ackTimeout).emitWithAck(kind, request(events, filter));
      } catch {
        return false;
      }
      if (!ack.success) {
        this.log?.warn(`realtime-client: restoring subscriptions failed (${ack.code}): ${ack.error}`);
        return false;
      }
      last = ack;
    }
    if (last?.success) this.commit(last.subscriptions);
    return true;
  }

  /** Records an acknowledged subscribe or unsubscribe: the events and their filters. */
  private apply(op: Op, subscriptions: EventName[]): void {
    if (op.kind === 'subscribe' && op.patterns.includes('*') && op.filter === undefined) {
      this.filters.clear();
      this.commit(null);
      return;
    }
    for (const e of expand(op.patterns)) {
      if (op.kind === 'subscribe' && op.filter !== undefined) this.filters.set(e, op.filter);
      else this.filters.delete(e);
    }
    this.commit(subscriptions);
  }

  private commit(list: EventName[] | null): void {
    this.committed = list;
    this.committedSet = new Set(list ?? []);
    for (const e of this.filters.keys()) {
      if (!this.committedSet.has(e)) this.filters.delete(e);
    }
    this.setState({ subscriptions: list === null ? null : Object.freeze([...list]) });
  }

  refreshToken = async (token?: string): Promise<RefreshResult> => {
    const s = this.sock;
    if (!s || !s.connected) {
      return { ok: false, code: 'NOT_CONNECTED', error: 'not connected: the next connection asks getToken for a token' };
    }
    let next: string | null;
    try {
      next = token?.trim() || (await this.resolveToken());
    } catch (err) {
      return { ok: false, code: 'GET_TOKEN_FAILED', error: `getToken failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (!next) return { ok: false, code: 'NO_TOKEN', error: 'No token: getToken returned none' };
    let ack: RefreshResult;
    try {
      ack = await s.timeout(this.ackTimeout).emitWithAck(ControlEvent.AUTH_REFRESH, { token: next });
    } catch {
      return s.connected
        ? { ok: false, code: 'timeout', error: `no answer to auth:refresh within ${this.ackTimeout} ms` }
        : { ok: false, code: 'NOT_CONNECTED', error: 'disconnected before the refresh was answered' };
    }
    if (ack.ok) {
      this.currentToken = next;
      if (token && !this.opts.getToken) this.explicitToken = next; // also for later reconnections
      this.expired = false;
      this.setState({ expiresAt: ack.expiresAt ?? null });
    }
    return ack;
  };

  presence = async (options: PresenceRequest = {}): Promise<PresenceResult> => {
    const s = this.sock;
    if (!s || !s.connected) return failure('NOT_CONNECTED', 'not connected');
    const req: PresenceRequest = options.watch === undefined ? {} : { watch: options.watch };
    try {
      return (await s.timeout(this.ackTimeout).emitWithAck(ControlEvent.PRESENCE, req)) as PresenceResult;
    } catch {
      return s.connected
        ? failure('timeout', `no answer to presence within ${this.ackTimeout} ms`)
        : failure('NOT_CONNECTED', 'disconnected before presence was answered');
    }
  };

  retainPresence = (): (() => void) => {
    this.presenceWatchers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.presenceWatchers === 0 && this.sock?.connected) void this.presence({ watch: false });
    };
  };
}

/**
 * The client's socket, created if need be without connecting it: getSocket() returns it before
 * the first connection, as the NestJS front end's getSocket did. Not part of the package's API.
 */
export function socketOf(client: RealtimeClient): Socket {
  if (client instanceof Client) return client.ensureSocket();
  if (client.socket) return client.socket;
  throw new Error('@operate/realtime-client: this client has no socket before connect()');
}

/** The payload of a subscribe or unsubscribe request. */
function request(events: string[], filter: string | undefined): { events: string[]; filter?: string } {
  return filter === undefined ? { events } : { events, filter };
}

/** The catalog events that subscription patterns cover. */
function expand(patterns: readonly string[]): EventName[] {
  if (patterns.includes('*')) return [...EVENT_NAMES];
  return EVENT_NAMES.filter((e) => patterns.some((p) => p === e || (p.endsWith(':*') && e.startsWith(p.slice(0, -1)))));
}

function failure(code: string, error: string): AckFailure {
  return { success: false, code, error };
}

function chunk<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function transportName(name: string | undefined): RealtimeState['transport'] {
  return name === 'websocket' || name === 'polling' ? name : null;
}

/** The page's localStorage, if it has one that works. */
function defaultStorage(): PositionStorage | null {
  try {
    const ls = (globalThis as { localStorage?: PositionStorage }).localStorage;
    return ls && typeof ls.getItem === 'function' ? ls : null;
  } catch {
    return null; // access denied (sandboxed frame)
  }
}

function report(err: unknown, log: Pick<Console, 'error'> | null): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === 'function') g.reportError(err);
  else log?.error(err);
}
