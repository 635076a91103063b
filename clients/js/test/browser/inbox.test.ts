// The user inbox in a real browser: a Chromium tab keeps the position of the
// last event in localStorage; after a reload, and in a new tab, the client
// first receives what was published while no tab was connected, from the
// gateway's per-user history, then live events, each once.

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bundleClient } from '../support/bundle.js';
import { launchChromium, SKIP_BROWSER, type Chromium } from '../support/chromium.js';
import { Gateway, mintToken, sleep, uid } from '../support/gateway.js';

interface PageGlobals {
  OperateRealtime: typeof import('../../src/index.js');
  __got: string[];
  __gaps: number;
  __connected: () => boolean;
}

/** Runs in the page: connects this package's client with its defaults, recording notifications. */
function open({ url, token }: { url: string; token: string }): void {
  const w = window as unknown as PageGlobals;
  w.__got = [];
  w.__gaps = 0;
  const client = w.OperateRealtime.createRealtimeClient({ url, token, logger: null });
  client.on('notification:new', (p) => w.__got.push(p.notificationId));
  client.on('history:gap', () => w.__gaps++);
  w.__connected = () => client.getState().connected;
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

let gw: Gateway;
let browser: Chromium;
let clientBundle: string;

describe.skipIf(SKIP_BROWSER)('the inbox in a Chromium tab', () => {
  beforeAll(async () => {
    clientBundle = await bundleClient();
    browser = await launchChromium();
    gw = await Gateway.start({ env: { HISTORY_SIZE: '100', HISTORY_TTL: '1h' } });
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('delivers what was published while no tab was connected after a reload and in a new tab, once each', async () => {
    const org = uid('org');
    const user = uid('user');
    const token = mintToken({ sub: user, orgId: org });
    const notify = (id: string) =>
      gw.publish('notification:new', { organizationId: org, userId: user, notificationId: id, title: 't', message: 'm', type: 'info' });
    const problems: string[] = [];
    const newPage = async (): Promise<Page> => {
      const page = await browser.context.newPage();
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      // A page of the gateway's origin (see stays-connected.test.ts for why not page.route).
      await page.addInitScript({ content: clientBundle });
      await page.goto(`${gw.url}/`);
      return page;
    };
    const got = (page: Page) => page.evaluate(() => (window as unknown as PageGlobals).__got);
    const connect = async (page: Page) => {
      await page.evaluate(open, { url: gw.url, token });
      const ok = await eventually(() => page.evaluate(() => (window as unknown as PageGlobals).__connected()), 10_000);
      expect(ok, 'the page connected').toBe(true);
    };
    const receives = async (page: Page, want: string[]) => {
      await eventually(async () => (await got(page)).length >= want.length, 10_000);
      await sleep(200); // a duplicate would arrive right after
      expect(await got(page)).toEqual(want);
    };

    const page = await newPage();
    await connect(page);
    await notify('n1');
    await receives(page, ['n1']);

    await page.reload(); // the socket is gone; the page has not connected again yet
    await gw.waitLog('gateway: client disconnected', { userId: user }, 1);
    await notify('n2');
    await notify('n3');
    await connect(page);
    await receives(page, ['n2', 'n3']);
    await notify('n4');
    await receives(page, ['n2', 'n3', 'n4']);
    await page.close();
    await gw.waitLog('gateway: client disconnected', { userId: user }, 2);

    await notify('n5'); // no tab open
    const tab = await newPage();
    await connect(tab);
    await receives(tab, ['n5']);
    expect(await tab.evaluate(() => (window as unknown as PageGlobals).__gaps)).toBe(0);
    await tab.close();
    expect(problems).toEqual([]);
  }, 60_000);
});
