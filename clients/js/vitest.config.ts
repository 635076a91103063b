import { defineConfig } from 'vitest/config';

// Three projects: unit tests (no server), tests against a real gateway process
// (jsdom, React Testing Library), and pages in headless Chromium (the console;
// a page that stays connected on the server's default timing, with its own
// timeout).
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.{ts,tsx}'],
          environment: 'jsdom',
          testTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'gateway',
          include: ['test/gateway/**/*.test.{ts,tsx}'],
          environment: 'jsdom',
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/setup-rtl.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
