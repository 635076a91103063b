import type { RealtimeErrorCode } from './protocol.js';

/**
 * A connection error with a machine-readable code: the gateway's `err.data.code`
 * for a refused connection (`INVALID_TOKEN`, `TOKEN_EXPIRED`, ...), or one of the
 * client's codes (`TRANSPORT_ERROR`, `RECONNECT_FAILED`, ...).
 */
export class RealtimeError extends Error {
  override readonly name = 'RealtimeError';
  /** The code; a string for codes newer than this client. */
  readonly code: RealtimeErrorCode | (string & {});
  /** Whether the client retries by itself after this error. */
  readonly retrying: boolean;

  constructor(code: RealtimeErrorCode | (string & {}), message: string, options?: { cause?: unknown; retrying?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retrying = options?.retrying ?? false;
  }
}

/** Codes after which logging in again (a new token from the app) is the only way forward. */
export const FATAL_AUTH_CODES: ReadonlySet<string> = new Set([
  'NO_TOKEN',
  'INVALID_TOKEN',
  'NO_ORGANIZATION',
  'NO_USER',
  'TOKEN_REVOKED',
]);
