#!/usr/bin/env node
// Builds the development console into gateway/console/dist (embedded in the
// realtime binary, committed so that `go run ./cmd/realtime` needs no npm) and
// writes gateway/console/build.sha256: the SHA-256 of every input and output,
// in `sha256sum` format, relative to the repository. A Go test
// (gateway/console) checks the inputs against it without npm.
//
//   node scripts/build-console.mjs           build and stamp (make console)
//   node scripts/build-console.mjs --check   rebuild into a temporary directory and fail
//                                            unless the committed build is identical

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

// The environment must not change the output (vitest runs this with
// NODE_ENV=test, which would select React's development build).
process.env.NODE_ENV = 'production';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const DIST = 'gateway/console/dist';
const STAMP = 'gateway/console/build.sha256';

/** The build's inputs, relative to the repository: keep in sync with gateway/console's test. */
export function inputs() {
  const files = [
    'clients/js/package.json',
    'clients/js/package-lock.json',
    'clients/js/tsconfig.json',
    'clients/js/scripts/build-console.mjs',
    ...walk('clients/js/console'),
    ...walk('clients/js/src'),
  ];
  return files.sort();
}

function walk(rel) {
  const out = [];
  for (const e of readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
    const child = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(child));
    else if (e.isFile()) out.push(child);
  }
  return out;
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** sha256sum lines: inputs, then the outputs found in outDir, named as under DIST. */
function stamp(outDir) {
  const lines = inputs().map((f) => `${sha256(path.join(REPO, f))}  ${f}`);
  const outputs = readdirSync(outDir).sort();
  for (const f of outputs) lines.push(`${sha256(path.join(outDir, f))}  ${DIST}/${f}`);
  return lines.join('\n') + '\n';
}

async function buildTo(outDir) {
  await build({
    configFile: path.join(PKG, 'console/vite.config.ts'),
    mode: 'production',
    build: { outDir, emptyOutDir: true },
    logLevel: 'warn',
  });
}

const check = process.argv.includes('--check');
if (!check) {
  const out = path.join(REPO, DIST);
  await buildTo(out);
  writeFileSync(path.join(REPO, STAMP), stamp(out));
  console.log(`console built into ${DIST} (${readdirSync(out).join(', ')}); ${STAMP} updated`);
} else {
  const tmp = mkdtempSync(path.join(tmpdir(), 'realtime-console-'));
  try {
    await buildTo(tmp);
    const want = stamp(tmp);
    let have = '';
    try {
      have = readFileSync(path.join(REPO, STAMP), 'utf8');
    } catch {
      // missing: reported below
    }
    let committed = [];
    try {
      committed = readdirSync(path.join(REPO, DIST)).sort();
    } catch {
      // missing
    }
    const problems = [];
    const built = readdirSync(tmp).sort();
    if (committed.join() !== built.join()) problems.push(`files: committed [${committed}] ≠ built [${built}]`);
    for (const f of built) {
      if (!committed.includes(f)) continue;
      if (sha256(path.join(tmp, f)) !== sha256(path.join(REPO, DIST, f))) problems.push(`${DIST}/${f} differs from a fresh build`);
    }
    if (have !== want) {
      const a = new Set(have.split('\n'));
      for (const l of want.split('\n')) if (l && !a.has(l)) problems.push(`${STAMP} lacks: ${l}`);
    }
    if (problems.length) {
      console.error(`The committed console build is stale:\n  ${problems.join('\n  ')}\nRun \`make console\` and commit ${DIST} and ${STAMP}.`);
      process.exitCode = 1;
    } else {
      console.log(`the committed console build (${DIST}) is current`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
