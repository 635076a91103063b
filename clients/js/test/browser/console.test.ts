// The development console in headless Chromium (Debian's chromium package,
// driven by playwright-core; no browser download): two pages signed in to
// different organizations; events reach only their organization's page.
// Writes a screenshot to artifacts/console.png.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ARTIFACTS } from '../support/paths.js';
import { launchChromium, SKIP_BROWSER, type Chromium } from '../support/chromium.js';
import { Gateway, sleep, uid } from '../support/gateway.js';

let gw: Gateway;
let browser: Chromium;
let context: BrowserContext;
const problems: string[] = [];

async function signIn(org: string, user: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`${org}: page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${org}: console ${msg.type()}: ${msg.text()}`);
  });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${gw.url}/`);
  await page.getByTestId('org-input').fill(org);
  await page.getByTestId('user-input').fill(user);
  await page.getByTestId('connect').click();
  await page.locator('[data-testid=status][data-status=connected]').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid=feed-entry][data-event=connected]').waitFor({ timeout: 5_000 });
  return page;
}

function entries(page: Page, text: string) {
  return page.getByTestId('feed-entry').filter({ hasText: text });
}

describe.skipIf(SKIP_BROWSER)('development console in Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
    context = browser.context;
    gw = await Gateway.start();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('delivers an event for organization A to A within a second, and never to B', async () => {
    const orgA = uid('org_a');
    const orgB = uid('org_b');
    const a = await signIn(orgA, 'user_alice');
    const b = await signIn(orgB, 'user_bob');
    await expect(a.getByTestId('status').textContent()).resolves.toBe('connected · websocket');
    await expect(a.getByTestId('identity').textContent()).resolves.toBe(`user_alice @ ${orgA}`);
    await expect(b.getByTestId('identity').textContent()).resolves.toBe(`user_bob @ ${orgB}`);

    // Through the HTTP API, for organization A.
    const invoiceId = uid('inv');
    const start = Date.now();
    await gw.publish('invoice:paid', { organizationId: orgA, invoiceId, invoiceNumber: 'INV-2025-0042', amount: 1234.5, currency: 'EUR' });
    await entries(a, invoiceId).waitFor({ timeout: 1_000 });
    const elapsed = Date.now() - start;
    expect(elapsed).toBeLessThan(1_000);
    const entry = entries(a, invoiceId);
    await expect(entry.getAttribute('data-event')).resolves.toBe('invoice:paid');
    await expect(entry.locator('.badge').textContent()).resolves.toBe('invoice:paid');
    await expect(entry.locator('time').textContent()).resolves.toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/);
    const colour = await entry.locator('.badge').evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(colour).toBe('rgb(37, 99, 235)'); // the invoice domain's blue

    // The console's own button: a sample of the bank domain, published for A.
    await a.getByTestId('publish-bank').click();
    await a.locator('[data-testid=feed-entry][data-event^="bank:"]').first().waitFor({ timeout: 2_000 });
    await expect(a.getByTestId('publish-result').textContent()).resolves.toMatch(/^published bank:/);

    await sleep(1_000);
    expect(await entries(b, invoiceId).count()).toBe(0);
    expect(await b.locator(`[data-testid=feed-entry][data-org="${orgA}"]`).count()).toBe(0);
    expect(await b.locator('[data-testid=feed-entry][data-event^="bank:"]').count()).toBe(0);

    // B's own events still reach B.
    const docId = uid('doc');
    await gw.publish('document:uploaded', { organizationId: orgB, documentId: docId });
    await entries(b, docId).waitFor({ timeout: 1_000 });
    expect(await entries(a, docId).count()).toBe(0);

    await a.close();
    await b.close();
  });

  it('filters domains with subscribe, and writes a screenshot', async () => {
    const org = uid('org_demo');
    const page = await signIn(org, 'user_demo');

    // Off: invoice. The server stops sending it. (The checkbox shows the
    // server's answer, so it changes when the acknowledgement arrives.)
    await page.getByTestId('filter-invoice').click();
    await page.getByText('receiving 40 event types').waitFor({ timeout: 2_000 });
    const hidden = uid('inv');
    const shown = uid('exp');
    await gw.publish('invoice:created', { organizationId: org, invoiceId: hidden });
    await gw.publish('expense:created', { organizationId: org, expenseId: shown, amount: 49.9, currency: 'EUR' });
    await entries(page, shown).waitFor({ timeout: 1_000 });
    await sleep(300);
    expect(await entries(page, hidden).count()).toBe(0);

    // On again.
    expect(await page.getByTestId('filter-invoice').isChecked()).toBe(false);
    await page.getByTestId('filter-invoice').click();
    await page.getByText('receiving 46 event types').waitFor({ timeout: 2_000 });
    expect(await page.getByTestId('filter-invoice').isChecked()).toBe(true);
    const back = uid('inv');
    await gw.publish('invoice:created', { organizationId: org, invoiceId: back });
    await entries(page, back).waitFor({ timeout: 1_000 });

    // A colourful feed for the screenshot: one sample of each domain.
    await page.getByTestId('publish-all').click();
    await page.locator('[data-testid=feed-entry][data-event^="automation:"]').waitFor({ timeout: 2_000 });
    await page.locator('[data-testid=feed-entry][data-event^="notification:"]').waitFor({ timeout: 2_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, 'console.png');
    await page.screenshot({ path: file, fullPage: false });
    expect(existsSync(file)).toBe(true);
    await page.close();
  });

  it('sends long-polling payloads gzip-compressed, and the browser decodes them', async () => {
    // The Engine.IO long-polling protocol spoken by the page's own fetch:
    // Chromium sends its Accept-Encoding and decodes the response, as it
    // does for socket.io-client's polling transport.
    const org = uid('org_poll');
    const page = await context.newPage();
    const codings: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('transport=polling') && r.request().method() === 'GET') codings.push(r.headers()['content-encoding'] ?? '');
    });
    await page.goto(`${gw.url}/`);
    const sid = await page.evaluate(async (token) => {
      const base = '/socket.io/?EIO=4&transport=polling';
      const open = await (await fetch(base)).text();
      const id = (JSON.parse(open.slice(1)) as { sid: string }).sid;
      const res = await fetch(`${base}&sid=${id}`, { method: 'POST', body: '40/events,' + JSON.stringify({ token }) });
      if (res.status !== 200) throw new Error(`CONNECT: ${res.status}`);
      return id;
    }, gw.token({ sub: 'user_poll', orgId: org }));
    const poll = () => page.evaluate(async (id) => (await fetch(`/socket.io/?EIO=4&transport=polling&sid=${id}`)).text(), sid);

    let received = '';
    while (!received.includes('"connected"')) received += await poll();
    const ids = Array.from({ length: 10 }, () => uid('inv'));
    for (const invoiceId of ids) {
      await gw.publish('invoice:created', { organizationId: org, invoiceId, invoiceNumber: `INV-${invoiceId}`, amount: 99.5, currency: 'EUR' });
    }
    const before = codings.length;
    received = '';
    while (!ids.every((id) => received.includes(id))) received += await poll();

    const payloadCodings = codings.slice(before);
    expect(payloadCodings).toContain('gzip'); // ten events: well over the 1 KiB threshold
    expect(received.split('\x1e').filter((p) => p.startsWith('42/events,["invoice:created"')).length).toBe(10);
    await page.close();
  });

  it('logged no page errors, CSP violations or warnings', () => {
    expect(problems).toEqual([]);
  });
});
