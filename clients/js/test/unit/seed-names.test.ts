// The NestJS front end's names, at run time (their types: test/types).

import { describe, expect, it } from 'vitest';

import {
  configureSocket,
  EVENT_NAMES,
  getOrgRoom,
  getRealtimeClient,
  getSocket,
  getUserRoom,
  InvoiceEvent,
  isSocketConnected,
  WebSocketEvent,
  type HRPayload,
  type HrEventPayload,
  type WebSocketEvent as WebSocketEventName,
} from '../../src/index.js';

describe('the seed names', () => {
  it('WebSocketEvent holds every catalog event under its whole name in capitals', () => {
    expect(Object.values(WebSocketEvent)).toEqual([...EVENT_NAMES]);
    for (const [key, name] of Object.entries(WebSocketEvent)) {
      expect(key).toBe(name.replace(':', '_').toUpperCase());
    }
    expect(WebSocketEvent.INVOICE_CREATED).toBe(InvoiceEvent.CREATED);
    const asType: WebSocketEventName = WebSocketEvent.DOCUMENT_OCR_COMPLETE;
    expect(asType).toBe('document:ocr_complete');
  });

  it('names the rooms as the gateway does', () => {
    expect(getOrgRoom('org_1')).toBe('org:org_1');
    expect(getUserRoom('user_1')).toBe('user:user_1');
  });

  it('aliases the payload types', () => {
    const p: HrEventPayload = { organizationId: 'o', timestamp: '2025-01-31T09:30:00.000Z', employeeId: 'e' };
    const same: HRPayload = p;
    expect(same.employeeId).toBe('e');
  });
});

describe('the shared connection before any connection', () => {
  it('getSocket creates one socket and connects nothing; configureSocket comes first or not at all', () => {
    configureSocket({ url: 'http://127.0.0.1:9', logger: null });
    const socket = getSocket();
    expect(getSocket()).toBe(socket);
    expect(socket.connected).toBe(false);
    expect(socket.active).toBe(false); // not even trying
    expect(isSocketConnected()).toBe(false);
    expect(getRealtimeClient().getState().status).toBe('disconnected');
    expect(getRealtimeClient().url).toBe('http://127.0.0.1:9/events');
    expect(() => configureSocket({})).toThrow(/configureSocket\(\) must come before/);
  });
});
