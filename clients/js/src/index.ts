// @operate/realtime-client: a typed client of the Operate real-time gateway.
// React bindings are in '@operate/realtime-client/react'.

export {
  createRealtimeClient,
  buildUrl,
  type AnyEventHandler,
  type ConnectionStatus,
  type EventHandler,
  type PositionOptions,
  type PositionStorage,
  type RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeState,
  type ReconnectionOptions,
  type SubscribeOptions,
  type TokenSource,
} from './client.js';
export { RealtimeError } from './errors.js';
// The NestJS front end's module-level connection (socket-client.ts), on one shared client.
export {
  configureSocket,
  connectSocket,
  disconnectSocket,
  getRealtimeClient,
  getSocket,
  isSocketConnected,
} from './shared.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export {
  lookupToken,
  extractToken,
  readCookie,
  DEFAULT_TOKEN_NAMES,
  DEFAULT_TOKEN_FIELDS,
  type TokenLookupOptions,
} from './token.js';
export * from './protocol.js';
// The catalog: event names, payload types, the event → payload map (generated).
export * from './generated/events.js';
