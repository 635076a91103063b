// Presence against a real gateway process: client.presence() and usePresence().

import { act, cleanup, render, screen, waitFor as rtlWaitFor } from '@testing-library/react';
import { StrictMode, type ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  createRealtimeClient,
  type PresenceChangePayload,
  type RealtimeClient,
  type RealtimeClientOptions,
} from '../../src/index.js';
import { RealtimeProvider, usePresence } from '../../src/react.js';
import { Gateway, uid, waitFor } from '../support/gateway.js';

let gw: Gateway;
const clients: RealtimeClient[] = [];

beforeAll(async () => {
  // A short grace period, so that a departure is reported quickly.
  gw = await Gateway.start({ env: { PRESENCE_GRACE: '100ms' } });
});
afterAll(async () => {
  await gw?.stop();
});
afterEach(() => {
  cleanup();
  for (const c of clients.splice(0)) c.disconnect();
});

function client(org: string, user: string, options: RealtimeClientOptions = {}): RealtimeClient {
  const c = createRealtimeClient({
    url: gw.url,
    reconnection: { delay: 50, maxDelay: 300 },
    logger: null,
    getToken: () => gw.token({ sub: user, orgId: org }),
    ...options,
  });
  clients.push(c);
  return c;
}

async function connected(c: RealtimeClient): Promise<void> {
  await waitFor(() => c.getState().identity, 5_000, 'connected');
}

describe('client.presence', () => {
  it("answers with the organization's users and streams changes to watchers", async () => {
    const org = uid('org');
    const a = client(org, 'alice');
    await connected(a);
    const changes: string[] = [];
    a.on('presence:joined', (p: PresenceChangePayload) => changes.push(`joined ${p.organizationId === org ? '' : 'OTHER '}${p.userId}`));
    a.on('presence:left', (p) => changes.push(`left ${p.userId}`));

    const first = await a.presence({ watch: true });
    expect(first.success).toBe(true);
    if (!first.success) return;
    expect(first.organizationId).toBe(org);
    expect(first.watching).toBe(true);
    expect(first.users.map((u) => [u.userId, u.connections])).toEqual([['alice', 1]]);
    expect(first.users[0]!.since).toMatch(/Z$/);

    const b = client(org, 'bob');
    const stranger = client(uid('other_org'), 'eve');
    await connected(b);
    await connected(stranger);
    await waitFor(() => changes.includes('joined bob'), 5_000, 'bob joined');
    const second = await a.presence();
    expect(second.success && second.users.map((u) => u.userId)).toEqual(['alice', 'bob']);

    b.disconnect();
    await waitFor(() => changes.includes('left bob'), 5_000, 'bob left');
    expect(changes).toEqual(['joined bob', 'left bob']); // nothing of the other organization

    const off = await a.presence({ watch: false });
    expect(off.success && off.watching).toBe(false);
  });

  it('is NOT_CONNECTED while disconnected', async () => {
    const c = client(uid('org'), 'u', { autoConnect: false });
    const r = await c.presence();
    expect(r).toMatchObject({ success: false, code: 'NOT_CONNECTED' });
  });
});

function Online(): ReactNode {
  const { users, ready, error } = usePresence();
  return (
    <p data-testid="online">
      {ready ? 'ready' : 'waiting'} {users.map((u) => u.userId).join(',')} {error ?? ''}
    </p>
  );
}

describe('usePresence', () => {
  it('lists who is online and follows joins and departures, under StrictMode', async () => {
    const org = uid('org');
    const me = client(org, 'me', { autoConnect: false });
    render(
      <StrictMode>
        <RealtimeProvider client={me}>
          <Online />
          <Online />
        </RealtimeProvider>
      </StrictMode>,
    );
    await rtlWaitFor(() => expect(screen.getAllByTestId('online')[0]!.textContent).toBe('ready me '), { timeout: 5_000 });

    const other = client(org, 'zoe');
    await connected(other);
    await rtlWaitFor(() => expect(screen.getAllByTestId('online')[1]!.textContent).toBe('ready me,zoe '), { timeout: 5_000 });

    act(() => other.disconnect());
    await rtlWaitFor(() => expect(screen.getAllByTestId('online')[0]!.textContent).toBe('ready me '), { timeout: 5_000 });

    // Unmounted: the connection stops watching (the last holder released it).
    cleanup();
    const ack = await me.presence();
    expect(ack.success && ack.watching).toBe(false);
  });
});
