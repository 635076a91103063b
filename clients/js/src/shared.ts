// The shared connection: one RealtimeClient for the whole page, which the
// NestJS front end's socket-client functions (getSocket, connectSocket,
// disconnectSocket, isSocketConnected) drive, and which the React hooks use
// outside a <RealtimeProvider>, as that front end's hooks used its
// module-level socket. The seed's API is a module-level singleton by design
// (getSocket() takes no client), hence the module state here; everything else
// in the package works on clients the application creates.

import type { Socket } from 'socket.io-client';

import { createRealtimeClient, socketOf, type RealtimeClient, type RealtimeClientOptions } from './client.js';
import { lookupToken } from './token.js';

let sharedOptions: RealtimeClientOptions = {};
let shared: RealtimeClient | null = null;
/** The token given to getSocket/connectSocket, until disconnectSocket. */
let givenToken: string | null = null;

/**
 * Sets the options of the shared connection (its `url`, `getToken`, …; see
 * createRealtimeClient). Call it once, before anything uses the connection: it
 * throws once the shared client exists. Without it the connection goes to the
 * page's origin and finds the token as the default lookup does (the `op_auth`
 * and `access_token` cookies, then localStorage).
 */
export function configureSocket(options: RealtimeClientOptions): void {
  if (shared) {
    throw new Error(
      '@operate/realtime-client: configureSocket() must come before the shared connection is used ' +
        '(getSocket, connectSocket, or a hook outside <RealtimeProvider>)',
    );
  }
  sharedOptions = { ...options };
}

/**
 * The shared client, created on first use (not connected). Its token is the
 * last one given to getSocket/connectSocket, else what the configured
 * getToken (or the default lookup) returns, asked again on every connection.
 */
export function getRealtimeClient(): RealtimeClient {
  if (!shared) {
    const o = sharedOptions;
    shared = createRealtimeClient({
      ...o,
      autoConnect: false,
      getToken: () =>
        givenToken ??
        (o.getToken
          ? o.getToken()
          : lookupToken({ token: o.token, cookieNames: o.tokenCookieNames, storageKeys: o.tokenStorageKeys })),
    });
  }
  return shared;
}

/**
 * The shared connection's socket.io socket, created if need be but not
 * connected (connectSocket connects it). With a token, that token is used from
 * the next connection on. Unlike the NestJS front end's, it is the same socket
 * for the page's whole life: handlers attached to it are never orphaned.
 */
export function getSocket(token?: string): Socket {
  if (token) givenToken = token;
  return socketOf(getRealtimeClient());
}

/**
 * Connects the shared connection (nothing happens when it is connected or
 * connecting) and returns its socket. With a token, that token is used for
 * this and later connections; without, the configured getToken or the default
 * lookup. Reconnections and token refreshes are the client's: see
 * docs/client.md.
 */
export function connectSocket(token?: string): Socket {
  if (token) givenToken = token;
  const client = getRealtimeClient();
  client.connect();
  return socketOf(client);
}

/**
 * Disconnects the shared connection and forgets the token given to
 * getSocket/connectSocket (the next connectSocket names one, or the lookup
 * finds it). Handlers registered on the shared client stay registered for the
 * next connection.
 */
export function disconnectSocket(): void {
  givenToken = null;
  shared?.disconnect();
}

/** Whether the shared connection is connected. */
export function isSocketConnected(): boolean {
  return shared?.getState().connected ?? false;
}
