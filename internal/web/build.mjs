// Builds the web UI: ui/ (TypeScript, CSS) → dist/ (committed, embedded by
// the Go package with go:embed). Run through `make web` (npm ci, type check,
// this script). `node build.mjs --check` builds into a temporary directory
// and fails if the committed dist/ differs, so a stale bundle is caught.
//
// Asset names carry a content hash (dist/assets/main-XXXX.js), so the Go
// handler can let browsers cache them forever; index.html, which names
// them, is served no-cache.
import * as esbuild from 'esbuild';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
process.chdir(here);
const check = process.argv.includes('--check');
const out = check ? await mkdtemp(join(tmpdir(), 'grappe-web-')) : 'dist';

await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: ['ui/main.ts'],
  bundle: true,
  // Language modes and the chart library are split into chunks loaded on
  // demand, so the first page a phone loads stays small.
  splitting: true,
  format: 'esm',
  minify: true,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  charset: 'utf8',
  legalComments: 'eof',
  logLevel: check ? 'warning' : 'info',
});

const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === 'ui/main.ts');
if (!entry || !entry[1].cssBundle) throw new Error('build: no entry output or CSS bundle in the metafile');
const asset = (p) => '/' + relative(out, p).split('\\').join('/');
const html = (await readFile('ui/index.html', 'utf8'))
  .replace('{{script}}', asset(entry[0]))
  .replace('{{style}}', asset(entry[1].cssBundle));
await writeFile(join(out, 'index.html'), html);
await copyFile('ui/favicon.svg', join(out, 'favicon.svg'));

if (check) {
  const diff = await compare(out, 'dist');
  await rm(out, { recursive: true, force: true });
  if (diff.length) {
    console.error('dist/ is stale; run `make web` and commit dist/:\n  ' + diff.join('\n  '));
    process.exit(1);
  }
  console.log('dist/ is up to date');
}

async function files(dir, base = dir) {
  const list = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) list.push(...(await files(p, base)));
    else list.push(relative(base, p));
  }
  return list.sort();
}

async function compare(a, b) {
  const [fa, fb] = [await files(a), await files(b).catch(() => [])];
  const diff = [];
  for (const f of new Set([...fa, ...fb])) {
    if (!fa.includes(f)) diff.push('extra in dist: ' + f);
    else if (!fb.includes(f)) diff.push('missing from dist: ' + f);
    else if (!(await readFile(join(a, f))).equals(await readFile(join(b, f)))) diff.push('differs: ' + f);
  }
  return diff;
}
