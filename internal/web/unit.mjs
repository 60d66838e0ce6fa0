// Unit tests of the UI's pure logic (ui/**/*.test.ts): esbuild bundles
// each test file for node, and node's own test runner runs them. Run by
// `npm test` and by the Go test TestUnit.
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
process.chdir(here);
const tests = (await readdir('ui')).filter((f) => f.endsWith('.test.ts')).map((f) => join('ui', f));
// Beside ui/, so that a test reads its data relative to its own URL.
const out = await mkdtemp(join(here, '.unit-'));
try {
  await esbuild.build({
    entryPoints: tests, bundle: true, platform: 'node', format: 'esm', outdir: out,
    outExtension: { '.js': '.mjs' }, logLevel: 'warning', packages: 'external',
  });
  const files = (await readdir(out)).map((f) => join(out, f));
  const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  await rm(out, { recursive: true, force: true });
}
