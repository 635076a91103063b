import { afterEach, describe, expect, it } from 'vitest';

import { extractToken, lookupToken, readCookie } from '../../src/index.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln';

afterEach(() => {
  document.cookie = 'op_auth=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
  document.cookie = 'access_token=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
  document.cookie = 'sid=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
  localStorage.clear();
});

describe('extractToken', () => {
  it('returns a raw token as is', () => {
    expect(extractToken(JWT)).toBe(JWT);
    expect(extractToken(`  ${JWT}\n`)).toBe(JWT);
    expect(extractToken(`Bearer ${JWT}`)).toBe(JWT);
  });
  it('returns the token inside a JSON object, never the JSON itself (the seed bug)', () => {
    expect(extractToken(JSON.stringify({ a: JWT, r: 'refresh' }))).toBe(JWT);
    expect(extractToken(JSON.stringify({ accessToken: JWT }))).toBe(JWT);
    expect(extractToken(JSON.stringify({ access_token: JWT }))).toBe(JWT);
    expect(extractToken(JSON.stringify({ token: JWT }))).toBe(JWT);
    expect(extractToken(JSON.stringify({ state: { accessToken: JWT }, version: 0 }))).toBe(JWT);
    expect(extractToken(JSON.stringify(JWT))).toBe(JWT);
    expect(extractToken(encodeURIComponent(JSON.stringify({ a: JWT })))).toBe(JWT);
    expect(extractToken(JSON.stringify({ jwt: JWT }), ['jwt'])).toBe(JWT);
  });
  it('returns null when there is no token', () => {
    expect(extractToken(null)).toBeNull();
    expect(extractToken('')).toBeNull();
    expect(extractToken('null')).toBeNull();
    expect(extractToken('{"a": 1}')).toBeNull();
    expect(extractToken('{broken')).toBeNull();
    expect(extractToken('two words')).toBeNull();
    expect(extractToken(JSON.stringify({ user: 'x' }))).toBeNull();
  });
});

describe('lookupToken', () => {
  it('prefers the explicit token', () => {
    document.cookie = `op_auth=${encodeURIComponent(JSON.stringify({ a: 'cookie.tok.en' }))}`;
    expect(lookupToken({ token: JWT })).toBe(JWT);
  });
  it('reads the op_auth cookie (URL-encoded JSON, field a), then access_token', () => {
    document.cookie = `sid=1`;
    document.cookie = `access_token=plain.cookie.token`;
    expect(lookupToken()).toBe('plain.cookie.token');
    document.cookie = `op_auth=${encodeURIComponent(JSON.stringify({ a: JWT }))}`;
    expect(lookupToken()).toBe(JWT);
  });
  it('falls back to localStorage, returning the token, not the stored JSON', () => {
    localStorage.setItem('op_auth', JSON.stringify({ a: JWT, user: { id: 'u' } }));
    expect(lookupToken()).toBe(JWT);
  });
  it('uses configurable names', () => {
    document.cookie = `op_auth=${JWT}`;
    localStorage.setItem('my_key', 'stored.token.value');
    expect(lookupToken({ cookieNames: [], storageKeys: ['my_key'] })).toBe('stored.token.value');
    expect(lookupToken({ cookieNames: ['nope'], storageKeys: [] })).toBeNull();
  });
  it('works without a browser', () => {
    expect(lookupToken({ cookie: 'x=1; op_auth=abc.def.ghi', storage: null })).toBe('abc.def.ghi');
    expect(lookupToken({ cookie: '', storage: { getItem: () => JSON.stringify({ token: JWT }) } })).toBe(JWT);
    expect(lookupToken({ cookie: '', storage: null })).toBeNull();
  });
  it('survives a storage that throws', () => {
    const storage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
    };
    expect(lookupToken({ cookie: '', storage })).toBeNull();
  });
});

describe('readCookie', () => {
  it('finds a cookie by exact name', () => {
    expect(readCookie('a=1; op_auth_x=2; op_auth=3', 'op_auth')).toBe('3');
    expect(readCookie('a=1', 'op_auth')).toBeNull();
    expect(readCookie('t=a=b', 't')).toBe('a=b');
  });
});
