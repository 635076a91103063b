// Builds the realtime binary once for the test run (or uses $REALTIME_BINARY)
// and hands its path to the tests (inject('gatewayBinary')).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

import { REPO_ROOT } from './paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    gatewayBinary: string;
  }
}

export default function setup(project: TestProject): () => void {
  const given = process.env['REALTIME_BINARY'];
  if (given) {
    if (!existsSync(given)) throw new Error(`REALTIME_BINARY=${given} does not exist`);
    project.provide('gatewayBinary', path.resolve(given));
    return () => {};
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'realtime-js-'));
  const binary = path.join(dir, 'realtime');
  execFileSync('go', ['build', '-o', binary, './cmd/realtime'], { cwd: REPO_ROOT, stdio: 'inherit' });
  project.provide('gatewayBinary', binary);
  return () => rmSync(dir, { recursive: true, force: true });
}
