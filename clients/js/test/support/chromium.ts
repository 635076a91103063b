// Headless Chromium for the browser tests: Debian's chromium package driven by
// playwright-core (never a browser download), in a throwaway profile.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** REALTIME_SKIP_BROWSER=1 skips the browser tests (scripts/test-js.sh documents it). */
export const SKIP_BROWSER = process.env['REALTIME_SKIP_BROWSER'] === '1';

export interface Chromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium, or fails with what to install. */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: apt-get install -y chromium (scripts/test-js.sh does), or set CHROMIUM_PATH; REALTIME_SKIP_BROWSER=1 skips the browser tests`,
    );
  }
  const profile = mkdtempSync(path.join(tmpdir(), 'realtime-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    return {
      context,
      close: async () => {
        try {
          await context.close();
        } finally {
          rmSync(profile, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
