// The gateway's wire contract beside the event catalog: control events,
// client requests and their acknowledgements, error codes (docs/gateway.md).
// The catalog's business events are generated (./generated/events.ts).

import type { EventDomain, EventName, EventPayloadMap } from './generated/events.js';

/** Names of the control events exchanged with the gateway. */
export const ControlEvent = {
  /** server → client, after a successful connection. */
  CONNECTED: 'connected',
  /** server → client, some time before the token expires: answer with AUTH_REFRESH. */
  AUTH_EXPIRING: 'auth:expiring',
  /** server → client, when the token expired; the server disconnects right after it. */
  AUTH_EXPIRED: 'auth:expired',
  /** client → server: replace the connection's token. */
  AUTH_REFRESH: 'auth:refresh',
  /** client → server: receive only (or also) these events. */
  SUBSCRIBE: 'subscribe',
  /** client → server: stop receiving these events. */
  UNSUBSCRIBE: 'unsubscribe',
  /**
   * server → client, right after `connected`: the client asked to recover its session and could
   * not; events may have been missed since `from`. Reload what the page shows.
   */
  HISTORY_GAP: 'history:gap',
  /**
   * server → client, right before the server disconnects the client on purpose: an operator
   * disconnected it (`SESSION_REVOKED`) or its token was revoked (`TOKEN_REVOKED`). Not a network
   * drop: the client does not reconnect by itself.
   */
  SESSION_REVOKED: 'session:revoked',
  /**
   * client → server: who is online in the connection's organization; `{watch: true}` also sends
   * PRESENCE_JOINED and PRESENCE_LEFT from then on, `{watch: false}` stops them.
   */
  PRESENCE: 'presence',
  /** server → client, to watchers: a user came online in the organization. */
  PRESENCE_JOINED: 'presence:joined',
  /**
   * server → client, to watchers: a user's last connection in the organization is gone (and did
   * not come back within the server's grace period, 5 s by default).
   */
  PRESENCE_LEFT: 'presence:left',
  /**
   * client → server: the events of the connection's organization and user after an offset, as
   * the connection would have received them (its subscriptions and filters applied).
   */
  HISTORY: 'history',
} as const;

/** An online user of the organization. */
export interface PresenceUser {
  userId: string;
  /**
   * The user's connections, over every node. 0 while its last connection dropped less than the
   * server's grace period ago (a reconnection within it is not a departure).
   */
  connections: number;
  /** When its current presence began (ISO 8601). */
  since: string;
}

/** Successful answer to `presence`. */
export interface PresenceSuccess {
  success: true;
  /** The connection's organization (the only one a client may see). */
  organizationId: string;
  /** Its online users, by user id. */
  users: PresenceUser[];
  /** Whether the connection now receives `presence:joined` and `presence:left`. */
  watching: boolean;
}

export type PresenceResult = PresenceSuccess | AckFailure;

/** Request of `presence`. */
export interface PresenceRequest {
  /** true: send `presence:joined`/`presence:left` from now on; false: stop; absent: unchanged. */
  watch?: boolean;
}

/** Payload of `presence:joined` and `presence:left`. */
export interface PresenceChangePayload {
  organizationId: string;
  userId: string;
  timestamp: string;
}

/** Payload of `connected`. */
export interface ConnectedPayload {
  message: string;
  userId: string;
  organizationId: string;
  /** The token's `exp`, absent for a token without one. */
  expiresAt?: string;
}

/** Payload of `auth:expiring`. */
export interface AuthExpiringPayload {
  message: string;
  expiresAt?: string;
}

/** Payload of `auth:expired`. */
export interface AuthExpiredPayload {
  message: string;
  code: 'TOKEN_EXPIRED';
  expiresAt?: string;
}

/** Payload of `history:gap`. */
export interface HistoryGapPayload {
  message: string;
  /**
   * `unavailable`: the session expired or the events missed are no longer kept (a server
   * restart, a trimmed log); `declined`: the token names another user or organization than the
   * session's.
   */
  reason: 'unavailable' | 'declined';
  /** The offset of the last event the client had received. */
  from: string;
}

/** Payload of `session:revoked`. */
export interface SessionRevokedPayload {
  message: string;
  /** `SESSION_REVOKED`: disconnected by an operator; `TOKEN_REVOKED`: the token was revoked. */
  code: 'SESSION_REVOKED' | 'TOKEN_REVOKED';
  /** The operator's reason, to show to the user; absent when none was given. */
  reason?: string;
}

/** The control events the server sends, with their payloads. */
export interface ControlEventMap {
  connected: ConnectedPayload;
  'auth:expiring': AuthExpiringPayload;
  'auth:expired': AuthExpiredPayload;
  'history:gap': HistoryGapPayload;
  'session:revoked': SessionRevokedPayload;
  'presence:joined': PresenceChangePayload;
  'presence:left': PresenceChangePayload;
}

/** Every event the server sends, with its payload: the catalog's and the control events. */
export type ServerEventMap = EventPayloadMap & ControlEventMap;

/** The name of an event the server sends. */
export type ServerEventName = keyof ServerEventMap;

/** The payload of server event E. */
export type ServerEventPayload<E extends ServerEventName> = ServerEventMap[E];

type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type EventsWithExactPayload<P> = { [E in ServerEventName]: Same<ServerEventMap[E], P> extends true ? E : never }[ServerEventName];
type EventsWithAssignablePayload<P> = { [E in ServerEventName]: ServerEventMap[E] extends P ? E : never }[ServerEventName];

/**
 * The events a handler of payload type P may listen to, for calls that name the payload type
 * (`subscribe<InvoiceEventPayload>(InvoiceEvent.PAID, handler)`, as the NestJS front end wrote
 * them): the events whose payload type is P itself when there are any (so that
 * `subscribe<HrEventPayload>(InvoiceEvent.PAID, …)` is refused), else every event whose payload
 * a P handler can take (P = WebSocketPayload: any catalog event; P = `{ invoiceId: string }`:
 * the invoice events).
 */
export type EventsWithPayload<P> = [EventsWithExactPayload<P>] extends [never]
  ? EventsWithAssignablePayload<P>
  : EventsWithExactPayload<P>;

/** Room prefix of an organization's sockets: every socket joins `org:<organizationId>`. */
export const ORG_ROOM_PREFIX = 'org:';
/** Room prefix of a user's sockets: every socket joins `user:<userId>`. */
export const USER_ROOM_PREFIX = 'user:';

/**
 * The room every socket of an organization joins, `org:<organizationId>` (as the gateway's
 * events.OrgRoom): rooms are the server's, a client only sees them in logs and targets.
 */
export function getOrgRoom(organizationId: string): string {
  return ORG_ROOM_PREFIX + organizationId;
}

/** The room every socket of a user joins, `user:<userId>` (as the gateway's events.UserRoom). */
export function getUserRoom(userId: string): string {
  return USER_ROOM_PREFIX + userId;
}

/**
 * An entry of a subscribe or unsubscribe request: an event name, a domain wildcard
 * (`invoice:*`) or `*` (every event).
 */
export type SubscriptionPattern = EventName | `${EventDomain}:*` | '*';

/** A refused request: `{success: false, error, code}`. */
export interface AckFailure {
  success: false;
  error: string;
  /**
   * `invalid_request`, `unknown_event`, `unknown_field` (a field the request does not take),
   * `invalid_filter` (the filter does not compile for the events, is not boolean or may cost
   * too much: error says why), `unsupported_event`, `rate_limited` (server: the connection sent
   * too many requests; slow down), `presence_unavailable` (presence cannot be read now: try
   * again), or `timeout` and `NOT_CONNECTED` (client: no answer in time, not connected).
   */
  code: string;
}

/** Successful answer to `subscribe`. */
export interface SubscribeSuccess {
  success: true;
  /** The request's entries, echoed. */
  subscribedTo: string[];
  /** The request's filter, echoed; absent without one. */
  filter?: string;
  /** Every event the connection receives now, filtered or not, in catalog order. */
  subscriptions: EventName[];
}

/** Successful answer to `unsubscribe`. */
export interface UnsubscribeSuccess {
  success: true;
  /** The request's entries, echoed. */
  unsubscribedFrom: string[];
  /** Every event the connection receives now, in catalog order. */
  subscriptions: EventName[];
}

export type SubscribeResult = SubscribeSuccess | AckFailure;
export type UnsubscribeResult = UnsubscribeSuccess | AckFailure;

/** Answer to `auth:refresh`. */
export type RefreshResult =
  | { ok: true; expiresAt?: string | null }
  | { ok: false; error: string; code: string };

/** Request of `subscribe` and `unsubscribe`. */
export interface SubscriptionRequest {
  events: SubscriptionPattern[];
}

/** Request of `subscribe`: the events, and optionally a filter on their payloads. */
export interface SubscribeRequest extends SubscriptionRequest {
  /**
   * A CEL expression over the event's payload (`payload`) and name (`event`), e.g.
   * `payload.amount > 1000.0 && payload.currency == 'EUR'`: the events of this request are
   * sent only when it is true. It is type-checked against the payload types of the events (a
   * field one of them lacks is refused with `invalid_filter`); an optional field the payload
   * lacks does not match (`has(payload.amount)` tests for it). The filter replaces what an
   * earlier subscribe said for these events; unsubscribe removes it with them.
   */
  filter?: string;
}

/** Request of `history`. */
export interface HistoryRequest {
  /** An offset (the last argument of an event, or a page's `offset`); absent: the oldest kept. */
  since?: string;
  /** At most this many events (1 to 500). Default 100. */
  limit?: number;
  /** Only these events (names, `<domain>:*` wildcards or `*`). */
  events?: SubscriptionPattern[];
}

/** An event of the history. */
export type HistoryEvent = {
  [E in EventName]: { event: E; payload: EventPayloadMap[E]; offset: string };
}[EventName];

/** Successful answer to `history`. */
export interface HistorySuccess {
  success: true;
  /** Oldest first. */
  events: HistoryEvent[];
  /** The page covers the history up to this offset: ask from it (`since`) for what follows. */
  offset: string;
  /** The page stopped at its limit: more events follow. */
  more: boolean;
}

/**
 * Answer to `history`. Failure codes beside the usual: `history_gap` (the events after `since`
 * are no longer kept: reload what the page shows) and `history_unavailable` (the gateway keeps
 * no history, or cannot read it now).
 */
export type HistoryResult = HistorySuccess | AckFailure;

/** The requests a client may send, with their payloads and answers. */
export interface ClientRequestMap {
  history: { request: HistoryRequest; ack: HistoryResult };
  subscribe: { request: SubscribeRequest; ack: SubscribeResult };
  unsubscribe: { request: SubscriptionRequest; ack: UnsubscribeResult };
  'auth:refresh': { request: { token: string }; ack: RefreshResult };
  presence: { request: PresenceRequest; ack: PresenceResult };
}

/** The name of a request a client may send. */
export type ClientRequestName = keyof ClientRequestMap;

/**
 * Codes the gateway sends in `connect_error` (`err.data.code`) and in refused
 * `auth:refresh` answers.
 */
export type AuthErrorCode =
  | 'NO_TOKEN'
  | 'INVALID_TOKEN'
  | 'TOKEN_EXPIRED'
  | 'NO_ORGANIZATION'
  | 'NO_USER'
  | 'AUTH_UNAVAILABLE'
  | 'IDENTITY_MISMATCH'
  /** auth:refresh only: the connection sent too many requests; try again later. */
  | 'RATE_LIMITED'
  /** The address, user or organization has as many connections as the gateway allows; retried with backoff. */
  | 'TOO_MANY_CONNECTIONS'
  /** The token was revoked (its jti, or the user's tokens issued before a time): log in again. */
  | 'TOKEN_REVOKED'
  /** Not a connect code: the client's error after an operator disconnected it (`session:revoked`). */
  | 'SESSION_REVOKED';

/** Codes this client gives to errors that do not come with a server code. */
export type ClientErrorCode =
  /** "Invalid namespace": the URL or namespace is wrong. */
  | 'INVALID_NAMESPACE'
  /** The server could not be reached or the connection broke; the client retries. */
  | 'TRANSPORT_ERROR'
  /** The connection was lost; the client retries. */
  | 'CONNECTION_LOST'
  /** Reconnection gave up after the configured number of attempts. */
  | 'RECONNECT_FAILED'
  /** getToken threw or rejected; the client retries with backoff. */
  | 'GET_TOKEN_FAILED'
  /** The server disconnected the client for another reason than token expiry. */
  | 'SERVER_DISCONNECT'
  /** Any other refused connection. */
  | 'CONNECT_ERROR';

/** The code of a RealtimeError. */
export type RealtimeErrorCode = AuthErrorCode | ClientErrorCode;
