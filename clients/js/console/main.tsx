// The development console: sign in as any user of any organization (a token
// from the development server's POST /dev/token), watch the live feed, publish
// sample events through the HTTP API (POST /dev/publish, which adds the
// development API key on the server), and filter domains with `subscribe`.
// Served by `realtime serve` at / in development mode only.

import { StrictMode, useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';

import {
  EVENT_DOMAIN,
  EVENT_DOMAINS,
  type EventDomain,
  type EventName,
  type ServerEventName,
} from '../src/index.js';
import { RealtimeProvider, useRealtimeClient, useWebSocket, useWebSocketEvent } from '../src/react.js';
import { DOMAIN_EVENTS, sample, type PublishRequest } from './samples.js';
import './console.css';

const ORGS = ['org_demo', 'org_acme', 'org_globex'];
const USERS = ['user_demo', 'user_alice', 'user_bob'];
const TTLS = ['1h', '10m', '2m'];
const MAX_FEED = 200;

interface Session {
  org: string;
  user: string;
  ttl: string;
}

/** Asks the development server for a token of user in org. */
async function mintToken(s: Session): Promise<string> {
  const res = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ organizationId: s.org, userId: s.user, ttl: s.ttl }),
  });
  const body = (await res.json().catch(() => ({}))) as { token?: string; message?: string };
  if (!res.ok || !body.token) throw new Error(`POST /dev/token: ${res.status} ${body.message ?? ''}`.trim());
  return body.token;
}

/** Publishes events through the HTTP API (via the development-only /dev/publish). */
async function publish(events: PublishRequest[]): Promise<string[]> {
  const res = await fetch('/dev/publish', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(events),
  });
  const body = (await res.json().catch(() => ({}))) as { ids?: string[]; code?: string; message?: string };
  if (res.status !== 202 || !body.ids) throw new Error(`${res.status} ${body.code ?? ''}: ${body.message ?? ''}`);
  return body.ids;
}

function domainOf(event: string): EventDomain | 'control' {
  return (EVENT_DOMAIN as Record<string, EventDomain | undefined>)[event] ?? 'control';
}

function clock(ms: number, withMs = true): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const hms = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return withMs ? `${hms}.${p(d.getMilliseconds(), 3)}` : hms;
}

/** A payload on one wrapping line: `key: value` pairs, JSON values. */
function compact(payload: unknown): string {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return JSON.stringify(payload);
  return Object.entries(payload as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join('  ');
}

function App(): ReactNode {
  const params = new URLSearchParams(location.search);
  const initial: Session = {
    org: params.get('org') || ORGS[0]!,
    user: params.get('user') || USERS[0]!,
    ttl: params.get('ttl') || TTLS[0]!,
  };
  const [form, setForm] = useState<Session>(initial);
  const [session, setSession] = useState<(Session & { n: number }) | null>(
    params.has('org') && params.has('user') ? { ...initial, n: 0 } : null,
  );
  const getToken = useCallback(() => (session ? mintToken(session) : Promise.resolve(null)), [session]);

  const signIn = (e: FormEvent) => {
    e.preventDefault();
    const s = { org: form.org.trim(), user: form.user.trim(), ttl: form.ttl };
    if (!s.org || !s.user) return;
    setSession((prev) => ({ ...s, n: (prev?.n ?? 0) + 1 }));
    const q = new URLSearchParams({ org: s.org, user: s.user });
    if (s.ttl !== TTLS[0]) q.set('ttl', s.ttl);
    history.replaceState(null, '', `?${q}`);
  };

  return (
    <div className="app">
      <header>
        <h1>
          Operate Realtime <span>development console</span>
        </h1>
        <form className="signin" onSubmit={signIn} data-testid="signin">
          <label>
            Organization
            <input
              list="orgs"
              value={form.org}
              onChange={(e) => setForm({ ...form, org: e.target.value })}
              data-testid="org-input"
              spellCheck={false}
            />
          </label>
          <label>
            User
            <input
              list="users"
              value={form.user}
              onChange={(e) => setForm({ ...form, user: e.target.value })}
              data-testid="user-input"
              spellCheck={false}
            />
          </label>
          <label>
            Token TTL
            <select value={form.ttl} onChange={(e) => setForm({ ...form, ttl: e.target.value })} data-testid="ttl-select">
              {TTLS.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <button type="submit" data-testid="connect">
            {session ? 'Switch' : 'Connect'}
          </button>
          <datalist id="orgs">
            {ORGS.map((o) => (
              <option key={o} value={o} />
            ))}
          </datalist>
          <datalist id="users">
            {USERS.map((u) => (
              <option key={u} value={u} />
            ))}
          </datalist>
        </form>
      </header>
      {session ? (
        <RealtimeProvider key={`${session.org}/${session.user}/${session.n}`} getToken={getToken}>
          <Dashboard session={session} />
        </RealtimeProvider>
      ) : (
        <p className="hint">
          Pick an organization and a user, then connect. Open a second tab with another organization: events published
          for one never reach the other.
        </p>
      )}
    </div>
  );
}

interface FeedEntry {
  seq: number;
  at: number;
  event: ServerEventName | 'client';
  payload: unknown;
}

function Dashboard({ session }: { session: Session }): ReactNode {
  const { status, error, state, connect, disconnect } = useWebSocket();
  const client = useRealtimeClient();
  const [feed, setFeed] = useState<FeedEntry[]>([]);
  const seq = useRef(0);
  const add = useCallback((event: FeedEntry['event'], payload: unknown) => {
    const entry = { seq: ++seq.current, at: Date.now(), event, payload };
    setFeed((f) => [entry, ...f].slice(0, MAX_FEED));
  }, []);

  // Every event the server sends, control events included.
  useEffect(() => client.onAny((event, payload) => add(event, payload)), [client, add]);
  // A typed handler, as an app would use: note refreshed tokens in the feed.
  useWebSocketEvent('auth:expiring', () => add('client', { note: 'auth:expiring received: refreshing the token' }));
  useEffect(
    () =>
      client.onStateChange((s, p) => {
        if (s.expiresAt && p.expiresAt && s.expiresAt !== p.expiresAt && s.connected) {
          add('client', { note: 'token refreshed', expiresAt: s.expiresAt });
        }
      }),
    [client, add],
  );

  return (
    <main>
      <section className="bar">
        <span className={`status status-${status}`} data-testid="status" data-status={status}>
          {status}
          {state.transport ? ` · ${state.transport}` : ''}
        </span>
        <span className="who" data-testid="identity">
          {state.identity ? `${state.identity.userId} @ ${state.identity.organizationId}` : `${session.user} @ ${session.org}`}
        </span>
        {state.expiresAt ? <span className="muted">token until {clock(Date.parse(state.expiresAt), false)}</span> : null}
        {error ? (
          <span className="error" data-testid="error" data-code={error.code}>
            {error.code}: {error.message}
          </span>
        ) : null}
        <span className="spacer" />
        {status === 'connected' || status === 'connecting' ? (
          <button onClick={disconnect}>Disconnect</button>
        ) : (
          <button onClick={connect}>Reconnect</button>
        )}
      </section>
      <div className="columns">
        <aside>
          <Publisher session={session} onError={(m) => add('client', { error: m })} />
          <DomainFilter />
        </aside>
        <Feed feed={feed} onClear={() => setFeed([])} />
      </div>
    </main>
  );
}

function Publisher({ session, onError }: { session: Session; onError: (message: string) => void }): ReactNode {
  const counters = useRef(new Map<EventDomain, number>());
  const n = useRef(Math.floor(Math.random() * 9000));
  const [last, setLast] = useState('');

  const next = (domain: EventDomain): PublishRequest => {
    const events = DOMAIN_EVENTS[domain];
    const i = counters.current.get(domain) ?? 0;
    counters.current.set(domain, i + 1);
    return sample(events[i % events.length]!, ++n.current, session.org, session.user);
  };
  const send = (requests: PublishRequest[]) => {
    publish(requests).then(
      (ids) =>
        setLast(
          requests.length === 1
            ? `published ${requests[0]!.event} (${ids[0]})`
            : `published ${ids.length} events: ${requests.map((r) => r.event).join(', ')}`,
        ),
      (err: Error) => {
        setLast(`failed: ${err.message}`);
        onError(err.message);
      },
    );
  };

  return (
    <section className="panel">
      <h2>Publish a sample</h2>
      <p className="muted">Through the HTTP API, for {session.org}. Each click sends the domain's next event.</p>
      <div className="buttons">
        {EVENT_DOMAINS.map((d) => (
          <button key={d} className={`domain d-${d}`} data-testid={`publish-${d}`} onClick={() => send([next(d)])}>
            {d}
          </button>
        ))}
        <button className="all" data-testid="publish-all" onClick={() => send(EVENT_DOMAINS.map(next))}>
          one of each
        </button>
      </div>
      <p className="muted small" data-testid="publish-result">
        {last}
      </p>
    </section>
  );
}

function DomainFilter(): ReactNode {
  const client = useRealtimeClient();
  const { state } = useWebSocket();
  const [busy, setBusy] = useState(false);
  const subs = state.subscriptions;
  const on = (d: EventDomain) => subs === null || DOMAIN_EVENTS[d].every((e: EventName) => subs.includes(e));

  const run = (p: Promise<{ success: boolean }>) => {
    setBusy(true);
    void p.finally(() => setBusy(false));
  };
  // The first change is always an unsubscribe (everything starts on), so
  // later subscribes add to the filter.
  const toggle = (d: EventDomain) => run(on(d) ? client.unsubscribe(`${d}:*`) : client.subscribe(`${d}:*`));

  return (
    <section className="panel">
      <h2>Filter (server-side)</h2>
      <p className="muted">
        {subs === null ? 'receiving every event' : `receiving ${subs.length} event types`}
        {busy ? ' …' : ''}
      </p>
      <div className="filters">
        {EVENT_DOMAINS.map((d) => (
          <label key={d} className={`check d-${d}`}>
            <input type="checkbox" checked={on(d)} onChange={() => toggle(d)} data-testid={`filter-${d}`} />
            {d}
          </label>
        ))}
      </div>
      <div className="buttons">
        <button onClick={() => run(client.subscribe('*'))} data-testid="filter-all">
          all
        </button>
        <button onClick={() => run(client.unsubscribe('*'))} data-testid="filter-none">
          none
        </button>
      </div>
    </section>
  );
}

function Feed({ feed, onClear }: { feed: FeedEntry[]; onClear: () => void }): ReactNode {
  return (
    <section className="feed">
      <h2>
        Live feed <span className="muted">({feed.length})</span>
        <button className="link" onClick={onClear}>
          clear
        </button>
      </h2>
      <ol data-testid="feed">
        {feed.map((e) => {
          const domain = domainOf(e.event);
          return (
            <li
              key={e.seq}
              className={`entry d-${domain}`}
              data-testid="feed-entry"
              data-event={e.event}
              data-org={(e.payload as { organizationId?: string } | null)?.organizationId ?? ''}
            >
              <time>{clock(e.at)}</time>
              <span className={`badge d-${domain}`}>{e.event}</span>
              <pre>{compact(e.payload)}</pre>
            </li>
          );
        })}
      </ol>
    </section>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
