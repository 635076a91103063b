// The Socket.IO Admin UI (@socket.io/admin-ui 0.5.1, the real UI from its npm
// package, served by this test from node_modules) in headless Chromium, against
// the real gateway binary with ADMIN_UI_PASSWORD set: a wrong password is
// refused; the right one shows our sockets in two organizations, their rooms,
// the server and the events; a reload logs in again with the session the UI
// kept. Writes a screenshot to artifacts/admin-ui.png.

import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { launchChromium, SKIP_BROWSER, type Chromium } from '../support/chromium.js';
import { Gateway, uid, waitFor } from '../support/gateway.js';
import { ARTIFACTS, PACKAGE_ROOT } from '../support/paths.js';

const PASSWORD = 'admin-ui-test-password-0123';
const UI_ROOT = path.join(PACKAGE_ROOT, 'node_modules/@socket.io/admin-ui/ui/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** Serves the UI's static files from node_modules on a free local port. */
async function serveUI(): Promise<{ server: Server; origin: string }> {
  if (!existsSync(path.join(UI_ROOT, 'index.html'))) {
    throw new Error(`${UI_ROOT}/index.html not found: run npm ci in clients/js (@socket.io/admin-ui is a devDependency)`);
  }
  const root = realpathSync(UI_ROOT);
  const server = createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.join(root, urlPath === '/' ? 'index.html' : urlPath);
    if (!file.startsWith(root + path.sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

let ui: { server: Server; origin: string };
let gw: Gateway;
let browser: Chromium;
const clients: Socket[] = [];
const problems: string[] = [];

/** A socket.io-client connection to the events namespace; resolves with its id once connected. */
async function connect(org: string, user: string): Promise<string> {
  const socket = io(`${gw.url}/events`, { auth: { token: gw.token({ sub: user, orgId: org }) }, transports: ['websocket'], forceNew: true });
  clients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connected', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket.id!;
}

/** Fills the UI's connection form and submits it. */
async function logIn(page: Page, password: string): Promise<void> {
  await page.getByLabel('Server URL').fill(gw.url);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Connect' }).click();
}

/** Opens a page of the UI from its navigation drawer. */
async function open(page: Page, title: string): Promise<void> {
  await page.locator('nav').getByRole('link', { name: title }).click();
  await page.waitForFunction((hash) => location.hash.replace(/\/$/, '') === hash, `#/${title.toLowerCase()}`, { timeout: 10_000 });
}

describe.skipIf(SKIP_BROWSER)('Socket.IO Admin UI in Chromium', () => {
  beforeAll(async () => {
    ui = await serveUI();
    browser = await launchChromium();
    // The UI loads fonts and icons from CDNs: nothing leaves this machine.
    await browser.context.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => route.abort(),
    );
    gw = await Gateway.start({
      env: {
        ADMIN_UI_PASSWORD: PASSWORD,
        ADMIN_UI_EVENTS: 'true',
        // The UI connects from its own origin, with credentials.
        CORS_ORIGINS: ui.origin,
        CORS_CREDENTIALS: 'true',
      },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await browser?.close();
    await gw?.stop();
    await new Promise<void>((resolve) => (ui ? ui.server.close(() => resolve()) : resolve()));
  });

  it('refuses a wrong password, then shows our sockets, rooms, server and events', async () => {
    const orgA = uid('org_a');
    const orgB = uid('org_b');
    const sids = [await connect(orgA, 'user_alice'), await connect(orgA, 'user_bob'), await connect(orgB, 'user_carol')];
    const serverId = String((await gw.waitLog('admin'))[0]!['server']);

    const page = await browser.context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.goto(`${ui.origin}/`);

    // A wrong password: the UI says so and stays on its login form.
    await logIn(page, 'not-the-password-0123');
    await page.getByText('Invalid credentials').waitFor({ timeout: 10_000 });
    await gw.waitLog('admin: login refused: invalid credentials');

    // The right one.
    await logIn(page, PASSWORD);
    await page.getByRole('dialog').waitFor({ state: 'hidden', timeout: 10_000 });

    await open(page, 'Sockets');
    for (const sid of sids) await page.getByRole('cell', { name: sid, exact: true }).waitFor({ timeout: 10_000 });

    await open(page, 'Rooms');
    for (const room of [`org:${orgA}`, `org:${orgB}`, 'user:user_alice', 'user:user_bob', 'user:user_carol']) {
      await page.getByRole('cell', { name: room, exact: true }).waitFor({ timeout: 5_000 });
    }
    // org A's room holds two sockets.
    await expect(page.getByRole('row').filter({ hasText: `org:${orgA}` }).getByRole('cell').nth(2).textContent()).resolves.toMatch(/^\s*2\s*$/);

    await open(page, 'Servers');
    await page.getByRole('cell', { name: serverId, exact: true }).waitFor({ timeout: 10_000 });

    // A socket that connects now is shown as it connects; an event
    // published for org A appears among the events sent.
    const late = await connect(orgB, 'user_dave');
    await open(page, 'Sockets');
    await page.getByRole('cell', { name: late, exact: true }).waitFor({ timeout: 10_000 });
    await gw.publish('invoice:paid', { organizationId: orgA, invoiceId: uid('inv') });
    await open(page, 'Events');
    await page.getByText('invoice:paid').first().waitFor({ timeout: 10_000 });
    await page.getByText(`org:${orgA}`).first().waitFor({ timeout: 5_000 });

    // A reload logs in with the session the UI kept, without the form.
    await page.reload();
    await open(page, 'Sockets');
    await page.getByRole('cell', { name: late, exact: true }).waitFor({ timeout: 10_000 });
    expect(await page.getByRole('dialog').isVisible()).toBe(false);

    await open(page, 'Rooms');
    await page.getByRole('cell', { name: `org:${orgA}`, exact: true }).waitFor({ timeout: 5_000 });
    await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished.catch(() => undefined)))); // the page's slide-in
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, 'admin-ui.png');
    await page.screenshot({ path: file, fullPage: false });
    expect(existsSync(file)).toBe(true);

    // Never a token: the page's own store holds what the server sent.
    const shown = await page.evaluate(() => document.body.innerText);
    expect(shown).not.toMatch(/eyJ[\w-]{10,}\.[\w-]{10,}/);
    await waitFor(() => gw.logsOf('admin: UI connected').length >= 2, 5_000, 'two UI connections logged');
    expect(problems).toEqual([]);
    await page.close();
  });
});
