// This package as a browser script, for pages driven by the browser tests.

import path from 'node:path';
import { build, type Rolldown } from 'vite';

import { PACKAGE_ROOT } from './paths.js';

/** The IIFE bundle of this package (window.OperateRealtime), socket.io-client included. */
export async function bundleClient(): Promise<string> {
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    root: PACKAGE_ROOT,
    build: {
      write: false,
      minify: false,
      lib: { entry: path.join(PACKAGE_ROOT, 'src/index.ts'), name: 'OperateRealtime', formats: ['iife'] },
    },
  });
  const result = (Array.isArray(out) ? out[0] : out) as Rolldown.RolldownOutput;
  const chunk = result.output.find((o) => o.type === 'chunk');
  if (!chunk) throw new Error('vite build of src/index.ts produced no chunk');
  // Init scripts run inside a function: the IIFE's `var` would stay local.
  return `${chunk.code}\nglobalThis.OperateRealtime = OperateRealtime;\n`;
}
