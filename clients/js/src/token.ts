// The default token lookup: an explicit token, then a cookie, then
// localStorage. Stored values may be the token itself or a JSON object holding
// it (the Operate web app stores `op_auth` as URL-encoded JSON `{"a": token}`);
// the lookup always returns the token itself, never the JSON blob around it.

/** Cookie and localStorage names tried by default, in order. */
export const DEFAULT_TOKEN_NAMES: readonly string[] = ['op_auth', 'access_token'];

/** Fields of a stored JSON object that may hold the token, in order. */
export const DEFAULT_TOKEN_FIELDS: readonly string[] = ['a', 'accessToken', 'access_token', 'token'];

export interface TokenLookupOptions {
  /** Used when set: nothing else is looked up. */
  token?: string | null;
  /** Cookies to read, in order. Default DEFAULT_TOKEN_NAMES; [] skips cookies. */
  cookieNames?: readonly string[];
  /** localStorage keys to read, in order. Default DEFAULT_TOKEN_NAMES; [] skips localStorage. */
  storageKeys?: readonly string[];
  /** JSON fields that may hold the token. Default DEFAULT_TOKEN_FIELDS. */
  fields?: readonly string[];
  /** The cookie string; default `document.cookie` in a browser. */
  cookie?: string;
  /** The storage; default `localStorage` in a browser. */
  storage?: Pick<Storage, 'getItem'> | null;
}

/**
 * Finds the user's token: `token`, else the first cookie of `cookieNames` holding
 * one, else the first localStorage key of `storageKeys` holding one. Returns null
 * when there is none.
 */
export function lookupToken(options: TokenLookupOptions = {}): string | null {
  const fields = options.fields ?? DEFAULT_TOKEN_FIELDS;
  if (options.token != null) {
    return extractToken(options.token, fields);
  }
  const cookie = options.cookie ?? browserCookie();
  if (cookie) {
    for (const name of options.cookieNames ?? DEFAULT_TOKEN_NAMES) {
      const token = extractToken(readCookie(cookie, name), fields);
      if (token) return token;
    }
  }
  const storage = options.storage === undefined ? browserStorage() : options.storage;
  if (storage) {
    for (const key of options.storageKeys ?? DEFAULT_TOKEN_NAMES) {
      let raw: string | null = null;
      try {
        raw = storage.getItem(key);
      } catch {
        // storage disabled (private mode, sandboxed iframe)
      }
      const token = extractToken(raw, fields);
      if (token) return token;
    }
  }
  return null;
}

/**
 * Returns the token held by a stored value: the value itself, or the first
 * string field of `fields` when it is a JSON object (also inside a `state`
 * object, as state libraries persist it), URL-decoded and without a `Bearer `
 * prefix. Null when the value holds no token.
 */
export function extractToken(raw: string | null | undefined, fields: readonly string[] = DEFAULT_TOKEN_FIELDS): string | null {
  if (raw == null) return null;
  let value = raw.trim();
  if (value.includes('%')) {
    try {
      value = decodeURIComponent(value).trim();
    } catch {
      // not URL-encoded after all
    }
  }
  if (value.startsWith('{') || value.startsWith('"')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return null; // a broken JSON blob is not a token
    }
    return tokenIn(parsed, fields, 0);
  }
  return clean(value);
}

function tokenIn(value: unknown, fields: readonly string[], depth: number): string | null {
  if (typeof value === 'string') return clean(value);
  if (value === null || typeof value !== 'object' || depth > 1) return null;
  const obj = value as Record<string, unknown>;
  for (const f of fields) {
    const v = obj[f];
    if (typeof v === 'string') {
      const t = clean(v);
      if (t) return t;
    }
  }
  return tokenIn(obj['state'], fields, depth + 1);
}

function clean(value: string): string | null {
  let v = value.trim();
  if (/^bearer\s+/i.test(v)) v = v.replace(/^bearer\s+/i, '');
  if (v === '' || /\s/.test(v) || v === 'null' || v === 'undefined') return null;
  return v;
}

/** The value of cookie `name` in a `document.cookie` string, or null. */
export function readCookie(cookie: string, name: string): string | null {
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function browserCookie(): string {
  try {
    return typeof document !== 'undefined' && typeof document.cookie === 'string' ? document.cookie : '';
  } catch {
    return '';
  }
}

function browserStorage(): Pick<Storage, 'getItem'> | null {
  try {
    return typeof localStorage !== 'undefined' ? localStorage : null;
  } catch {
    return null; // access denied
  }
}
