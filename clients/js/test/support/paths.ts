import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** clients/js */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository. */
export const REPO_ROOT = path.resolve(PACKAGE_ROOT, '../..');
/** Test artifacts (gitignored): screenshots. */
export const ARTIFACTS = process.env['ARTIFACTS_DIR'] ?? path.join(REPO_ROOT, 'artifacts');
