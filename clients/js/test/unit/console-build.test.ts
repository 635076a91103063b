// The console embedded in the realtime binary (gateway/console/dist) must be
// what its sources build to: rebuild it into a temporary directory and compare
// the bytes (the build is deterministic: fixed file names, no hashes, no
// source maps, locked dependency versions).

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

import { PACKAGE_ROOT } from '../support/paths.js';

it('the committed console build is current with its sources (else: make console)', async () => {
  const run = promisify(execFile);
  const result = await run(process.execPath, [path.join(PACKAGE_ROOT, 'scripts/build-console.mjs'), '--check'], {
    cwd: PACKAGE_ROOT,
  }).catch((err: { stdout?: string; stderr?: string }) => err);
  expect(result.stderr ?? '').toBe('');
  expect(result.stdout).toContain('is current');
});
