// Browser tests of grappe's web UI: a real master with real workers (started
// by browser_test.go: w1 and w2 run Python and C; the master's autoscaler,
// local provisioner, min 1, max 2, keeps one bash worker, auto-1), Debian's
// chromium driven headless by playwright-core.
// Each step asserts something a user sees; the run stops at the first
// failure, with a screenshot of the page.
//
// Environment (set by browser_test.go):
//   GRAPPE_URL       the master, https://127.0.0.1:PORT
//   GRAPPE_USER      an admin user of the cluster, GRAPPE_PASSWORD its password
//   GRAPPE_PLAIN_USER  a user without the admin role, GRAPPE_PLAIN_PASSWORD
//   GRAPPE_CONTROL   http://127.0.0.1:PORT of the test's control endpoint:
//                    POST /stop-worker?name=N, /stop-master, /restart-master
//   GRAPPE_SHOTS     directory for screenshots
//   GRAPPE_CHROMIUM  the browser (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env('GRAPPE_URL');
const USER = env('GRAPPE_USER');
const PASSWORD = env('GRAPPE_PASSWORD');
const PLAIN_USER = env('GRAPPE_PLAIN_USER');
const PLAIN_PASSWORD = env('GRAPPE_PLAIN_PASSWORD');
const CONTROL = env('GRAPPE_CONTROL');
const SHOTS = env('GRAPPE_SHOTS', '/tmp/grappe-web-shots');
const CHROMIUM = env('GRAPPE_CHROMIUM', '/usr/bin/chromium');
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(...a);

/** Polls fn until it returns something truthy; fails with what was awaited. */
async function until(what, fn, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message.split('\n')[0]})` : ''}`);
    }
    await sleep(100);
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function control(action, query = '') {
  const r = await fetch(`${CONTROL}/${action}${query}`, { method: 'POST' });
  check(r.ok, `control ${action}: ${r.status} ${await r.text()}`);
}

await mkdir(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright gives the browser a fresh temporary --user-data-dir.
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--ignore-certificate-errors',
  ],
});
const foreign = [];
const cspViolations = [];
const pageErrors = [];

/** A page in a fresh browser context (its own cookies), watched for stray requests, CSP violations and errors. */
async function newPage() {
  // The cluster CA is the test's own: the browser does not know it.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP });
  // Everything the page loads must come from the master (loopback here).
  context.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) foreign.push(req.url());
  });
  // CSP violations, reported from inside the page (the init script runs
  // through the DevTools protocol, outside the page's CSP) and as console
  // messages by chromium itself.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const p = await context.newPage();
  p.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|CSP violation/i.test(t)) cspViolations.push(t);
    if (m.type() === 'error' || m.type() === 'warning') log(`  [console.${m.type()}] ${t}`);
  });
  p.on('pageerror', (e) => { pageErrors.push(e.message); log(`  [pageerror] ${e.message}`); });
  return p;
}
const page = await newPage();

const $ = (sel) => page.locator(sel);
const textOf = async (sel) => ((await $(sel).first().textContent({ timeout: 1000 })) ?? '').trim();
const visible = (sel) => $(sel).first().isVisible();

let failed = false;
let stepNo = 0;
async function step(name, fn) {
  if (failed) return;
  stepNo++;
  const t0 = Date.now();
  log(`▶ ${stepNo}. ${name}`);
  try {
    await fn();
    log(`✓ ${stepNo}. ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed = true;
    log(`✗ ${stepNo}. ${name}: ${e.stack ?? e}`);
    const shot = join(SHOTS, `failure-${stepNo}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    log(`  page: ${page.url()}, screenshot ${shot}`);
    log(`  visible text: ${(await page.locator('body').innerText().catch(() => '?')).slice(0, 2000)}`);
  }
}

/** Replaces the editor's text as a paste would. */
async function setSource(src) {
  await $('.cm-content').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(src);
  // (Playwright's CSS locators see into the editor's shadow root.)
  await until('the editor to hold the program', async () =>
    (await $('.cm-content .cm-line').allTextContents()).join('\n') === src);
}

async function waitVerdict(verdict, timeout = 60_000) {
  await until(`verdict ${verdict}`, async () => {
    const v = await $('#verdict .badge').getAttribute('data-verdict', { timeout: 500 }).catch(() => null);
    const s = await $('#verdict .badge').getAttribute('data-status', { timeout: 500 }).catch(() => null);
    if (s === 'failed' || s === 'cancelled' || (v && v !== verdict)) {
      throw new Error(`job ended ${s} ${v}: ${await textOf('#result-box').catch(() => '')}`);
    }
    return v === verdict;
  }, timeout);
}

/** Submits a job from inside the page, as another tab of the user would. */
async function submitInPage(req) {
  return page.evaluate(async (body) => {
    const csrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)grappe_csrf=([^;]+)/) ?? [])[1] ?? '');
    const r = await fetch('/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(body) });
    if (r.status !== 201) throw new Error(`submit: ${r.status} ${await r.text()}`);
    return (await r.json()).id;
  }, req);
}

async function noHorizontalScroll(what) {
  const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(sw <= iw + 1, `${what}: the page is ${sw} px wide in a ${iw} px window (horizontal scrolling)`);
}

async function login() {
  await $('#login-username').fill(USER);
  await $('#login-password').fill(PASSWORD);
  await $('#login-submit').click();
  await until('the user name in the header', async () => (await textOf('#whoami')).startsWith(USER));
}

// ---------------------------------------------------------------------------

await step('log in (a wrong password is refused)', async () => {
  const resp = await page.goto(BASE + '/');
  const csp = resp.headers()['content-security-policy'] ?? '';
  check(csp.includes("script-src 'self'") && csp.includes("default-src 'self'"), `CSP header of the page: ${csp}`);
  await $('#login-form').waitFor();
  check(new URL(page.url()).pathname === '/login', `not sent to /login but ${page.url()}`);
  await until('the indicator to turn green', async () => (await $('#conn').getAttribute('data-state')) === 'up');
  await $('#login-username').fill(USER);
  await $('#login-password').fill('not the password');
  await $('#login-submit').click();
  await until('a login error', async () => /wrong/i.test(await textOf('#login-error')));
  await page.screenshot({ path: join(SHOTS, 'login-desktop.png') });
  await login();
  check(new URL(page.url()).pathname === '/', `after login at ${page.url()}`);
  await $('.cm-content').waitFor();
});

await step('run a Python program: its output streams live, then the verdict', async () => {
  await until('python in the language list', () => $('#language option[value="python"]').count());
  await $('#language').selectOption('python');
  await setSource([
    'import sys, time',
    // Output written before the page's event stream is connected is not
    // replayed live (the final result has it): give the stream time to
    // connect, even on a loaded machine.
    'time.sleep(2)',
    'print("hello from python", sys.stdin.read().strip(), flush=True)',
    'time.sleep(2)',
    'print("bye", file=sys.stderr)',
    '',
  ].join('\n'));
  await $('#stdin').fill('grappe');
  // Ctrl-Enter from inside the editor runs the program.
  await $('.cm-content').click();
  await page.keyboard.press('Control+Enter');
  await until('the first line of output', async () => (await textOf('#output')).includes('hello from python grappe'), 30_000);
  // The program is still sleeping: the line came over the event stream, not
  // with the final result.
  const status = await $('#run-status .badge').getAttribute('data-status', { timeout: 1000 });
  check(status === 'running', `output shown while the job is "${status}", want running (not streamed?)`);
  await waitVerdict('ok');
  check((await textOf('#output .stderr')).includes('bye'), 'stderr "bye" not shown');
  check((await textOf('#exit-code')) === '0', `exit code ${await textOf('#exit-code')}`);
  check(/^w[12]$/.test(await textOf('#worker')), `worker ${await textOf('#worker')}`);
  check(/\d+ (ms|s)/.test(await textOf('#cpu-time')), `CPU time ${await textOf('#cpu-time')}`);
  check(/\d+(\.\d+)? s/.test(await textOf('#wall-time')), `wall time ${await textOf('#wall-time')} (the program slept 2 s)`);
  // Without a sandbox the plain runner may not measure memory.
  check(/\d+(\.\d+)? (KB|MB)|not measured/.test(await textOf('#memory')), `memory ${await textOf('#memory')}`);
  await page.screenshot({ path: join(SHOTS, 'editor-desktop.png') });
});

await step('open a C file with a compile error: language guessed, compiler message shown', async () => {
  await $('#open-file').setInputFiles({
    name: 'broken.c', mimeType: 'text/x-c',
    buffer: Buffer.from('#include <stdio.h>\nint main(void) {\n    return undeclared_thing;\n}\n'),
  });
  await until('the language to switch to C', async () => (await $('#language').inputValue()) === 'c');
  check((await textOf('#file-name')) === 'broken.c', `file name shown: ${await textOf('#file-name')}`);
  await until('the source in the editor', async () => (await textOf('.cm-content')).includes('undeclared_thing'));
  await $('#stdin').fill('');
  await $('#run').click();
  await waitVerdict('compile_error');
  const msg = await textOf('#compile-output');
  check(msg.includes('undeclared_thing') && /error/i.test(msg), `compiler output: ${msg}`);
  // The error is marked in the editor, and its message leads to its line.
  await until('the error underlined in the editor', async () => (await $('#editor .cm-lintRange-error').count()) > 0);
  check((await $('#editor .cm-lint-marker-error').count()) > 0, 'no error marker in the gutter');
  const diag = $('#diagnostics li[data-line="3"] button.diag').first();
  check((await diag.textContent()).includes('undeclared_thing'), `diagnostic: ${await textOf('#diagnostics')}`);
  await $('#sample').focus();
  await diag.click();
  await until('the cursor on line 3', async () => (await textOf('#editor .cm-activeLine')).includes('return undeclared_thing'));
  await page.screenshot({ path: join(SHOTS, 'compile-error-desktop.png') });
});

await step('test cases: one result per case', async () => {
  await $('#language').selectOption('python');
  await setSource('print(int(input()) * 2)\n');
  if (!(await $('#tests-panel').getAttribute('open') !== null)) await $('#tests-panel summary').click();
  await $('#add-test').click();
  await $('#add-test').click();
  await $('#test-stdin-1').fill('3');
  await $('#test-expected-1').fill('6');
  await $('#test-stdin-2').fill('5');
  await $('#test-expected-2').fill('11');
  await page.keyboard.press('Control+Enter');
  await waitVerdict('wrong_answer');
  await $('#tests-result').waitFor();
  check((await $('#tests-result .case').count()) === 2, 'want 2 test rows');
  const case1 = $('#tests-result .case[data-test="1"]');
  const case2 = $('#tests-result .case[data-test="2"]');
  check((await case1.getAttribute('data-verdict')) === 'ok', 'case 1 not ok');
  check((await case2.getAttribute('data-verdict')) === 'wrong_answer', 'case 2 not wrong_answer');
  // The failing case is the one opened, its input, expected and actual
  // output side by side, the differing line marked.
  check(await case2.evaluate((d) => d.open), 'the failing case is not opened');
  check(!(await case1.evaluate((d) => d.open)), 'the passing case is opened');
  const cols = await case2.locator('.case-col h4').allTextContents();
  check(cols.join('|') === 'Input|Expected output|Actual output', `case columns: ${cols.join('|')}`);
  check((await case2.locator('.case-col').nth(2).textContent()).includes('10'), 'case 2 does not show the program\'s output 10');
  check((await case2.locator('.diff-del').textContent()).includes('11') && (await case2.locator('.diff-add').textContent()).includes('10'), 'the difference is not marked');
  check((await textOf('#tests-result .case[data-test="2"] .diff-note')).includes('line 1'), 'no first difference named');
  const [y1, y2] = [await case1.boundingBox(), await case2.boundingBox()];
  check(y2.y > y1.y && Math.abs(y2.width - y1.width) < 2 && y2.width > 300, 'cases are not full-width rows, one under the other');
  // The main output box says which case it shows.
  check((await textOf('#output-case')) === 'Showing test case 2 of 2, the first that failed.', `output note: ${await textOf('#output-case')}`);
  check((await textOf('#output')) === '10', `main output: ${await textOf('#output')}`);
  await case1.locator('.show-case').click();
  await until('case 1 in the main box', async () => (await textOf('#output-case')) === 'Showing test case 1 of 2.' && (await textOf('#output')) === '6');
  await page.screenshot({ path: join(SHOTS, 'test-cases-desktop.png'), fullPage: true });
  while (await $('.remove-test').count()) await $('.remove-test').first().click();
});

await step('output: stdout and stderr tabs, ANSI colours as text, a traceback marked in the code', async () => {
  await $('#language').selectOption('python');
  await setSource([
    'import sys',
    'print("\\x1b[31mred\\x1b[0m plain <b>not bold</b>")',
    'print("to stderr", file=sys.stderr, flush=True)',
    'def f(n):',
    '    return 10 / n',
    'f(0)',
    '',
  ].join('\n'));
  await $('#stdin').fill('');
  await $('#run').click();
  await waitVerdict('runtime_error');
  check((await textOf('#output .stdout.ansi-fg-1')) === 'red', `red text: "${await textOf('#output .stdout.ansi-fg-1').catch(() => '')}"`);
  check(!(await textOf('#output')).includes('\x1b'), 'escape codes shown raw');
  check((await $('#output b').count()) === 0 && (await textOf('#output')).includes('<b>not bold</b>'), 'output became markup');
  check(await visible('#output .stderr'), 'stderr not shown with all streams');
  await $('#output-tab-stdout').click();
  check(!(await visible('#output .stderr')) && await visible('#output .stdout'), 'the stdout tab shows stderr');
  await $('#output-tab-stderr').click();
  check(await visible('#output .stderr') && !(await visible('#output .stdout')), 'the stderr tab shows stdout');
  check((await $('#output .stderr').allTextContents()).join('').includes('ZeroDivisionError'), 'no traceback on stderr');
  await page.screenshot({ path: join(SHOTS, 'output-tabs-desktop.png') });
  // Copy takes the stream shown.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  await $('#output-copy').click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied.includes('ZeroDivisionError') && !copied.includes('plain'), `copied: ${copied.slice(0, 200)}`);
  await $('#output-tab-all').click();
  // The traceback points at line 5, marked in the editor.
  await until('the traceback marked', async () => (await $('#editor .cm-lintRange-error').count()) > 0);
  check((await textOf('#diagnostics li[data-line="5"]')).includes('ZeroDivisionError'), `diagnostics: ${await textOf('#diagnostics')}`);
  // Download gives the output as a file.
  const [dl] = await Promise.all([page.waitForEvent('download'), $('#output-download').click()]);
  check(/output\.txt$/.test(dl.suggestedFilename()), `download name ${dl.suggestedFilename()}`);
});

await step('a time limit says which limit and its value; the elapsed time counts meanwhile', async () => {
  await setSource('while True:\n    pass\n');
  if (!(await $('#limits-panel').getAttribute('open') !== null)) await $('#limits-panel summary').click();
  await $('#limit-cpu').fill('1000');
  await $('#limit-wall').fill('3000');
  await $('#run').click();
  await until('the elapsed time', async () => /(waiting|running) for \d/.test(await textOf('#elapsed')), 10_000);
  await waitVerdict('time_limit');
  const hit = await textOf('#limit-hit');
  check(/^(CPU time limit 1 s|Wall time limit 3 s) exceeded/.test(hit), `limit message: "${hit}"`);
  check(!(await visible('#elapsed')), 'the elapsed time still shown after the end');
  // The verdict is above the output, not under it.
  const [v, o] = [await $('#verdict').boundingBox(), await $('#output').boundingBox()];
  check(v.y < o.y, 'the verdict is below the output');
  await $('#limit-cpu').fill('');
  await $('#limit-wall').fill('');
});

await step('a refused limit is explained next to its field, in words', async () => {
  const hint = await textOf('#limit-cpu-hint');
  check(/default 5 s, at most 1 min/.test(hint), `CPU limit hint: "${hint}"`);
  await $('#limit-memory').fill('999999');
  await $('#run').click();
  await until('the explanation', () => visible('#limit-memory-error'));
  const why = await textOf('#limit-memory-error');
  check(/^Memory can be at most \d+ MB on this cluster/.test(why) && !why.includes('memory_mb'), `refusal: "${why}"`);
  check((await $('#limit-memory').getAttribute('aria-invalid')) === 'true', 'field not marked invalid');
  await $('#limits-panel').screenshot({ path: join(SHOTS, 'limit-refused.png') });
  await $('#limit-memory').fill('');
  check(!(await visible('#limit-memory-error')), 'the explanation stays after a new value');
  // A master that does not say its maxima (an older one): its refusal is
  // placed next to the field all the same, in the same words.
  await page.route('**/api/v1/languages', async (route) => {
    const r = await route.fetch();
    const body = await r.json();
    delete body.limits;
    await route.fulfill({ response: r, body: JSON.stringify(body) });
  });
  try {
    await page.reload();
    await $('.cm-content').waitFor();
    await until('python offered', () => $('#language option[value="python"]').count());
    if (!(await $('#limits-panel').getAttribute('open') !== null)) await $('#limits-panel summary').click();
    check((await textOf('#limit-memory-hint')) === '', 'a maximum shown that the master did not give');
    await $('#limit-memory').fill('999999');
    await $('#run').click();
    await until('the master\'s refusal explained', () => visible('#limit-memory-error'));
    const why = await textOf('#limit-memory-error');
    check(/^Memory can be at most \d+ MB on this cluster; you asked for 999999 MB/.test(why), `server refusal: "${why}"`);
    await $('#limit-memory').fill('');
  } finally {
    await page.unroute('**/api/v1/languages');
  }
  await page.reload();
  await $('.cm-content').waitFor();
});

await step('100,000 lines of output: the verdict stays above it, in view', async () => {
  await until('python offered', () => $('#language option[value="python"]').count());
  await $('#language').selectOption('python');
  await setSource('import sys\nsys.stdout.write("x\\n" * 100000)\n');
  await $('#stdin').fill('');
  await page.evaluate(() => window.scrollTo(0, 0));
  await $('#run').click();
  await waitVerdict('ok');
  const [v, o] = [await $('#verdict').boundingBox(), await $('#output').boundingBox()];
  check(v.y < o.y && v.y > 0 && v.y < DESKTOP.height, `verdict at y=${Math.round(v.y)}, output at y=${Math.round(o.y)}`);
  check(await $('#output-download').isVisible(), 'no download of the output');
});

await step('binary output is offered as a file, not shown', async () => {
  await setSource('import sys\nsys.stdout.buffer.write(bytes(range(256)))\n');
  await $('#run').click();
  await waitVerdict('ok');
  check((await textOf('#output-files')).includes('wrote 256 bytes of binary data to stdout'), `binary note: ${await textOf('#output-files')}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), $('#output-binary-stdout').click()]);
  const bytes = await readFile(await dl.path());
  check(bytes.length === 256 && bytes[255] === 255 && bytes[0] === 0, `downloaded ${bytes.length} bytes`);
});

await step('two files: an error in the header opens its tab; fixed, the program runs', async () => {
  await $('#language').selectOption('c');
  await setSource('#include <stdio.h>\n#include "util.h"\nint main(void) {\n    printf("%d\\n", twice(21));\n    return 0;\n}\n');
  await $('#new-file-name').fill('util.h');
  await $('#add-file').click();
  await until('the util.h tab', async () => (await $('.file-tab[aria-selected="true"]').textContent()) === 'util.h');
  await setSource('static int twice(int x) {\n    return 2 * y;\n}\n');
  await $('#compile-args').fill('-Wall');
  await $('.file-tab[data-file="main"]').click();
  await until('main.c back', async () => (await textOf('.cm-content')).includes('twice(21)'));
  await $('#run').click();
  await waitVerdict('compile_error');
  const d = $('#diagnostics li[data-file="util.h"] button.diag').first();
  await d.click();
  await until('util.h opened at its error', async () => (await $('.file-tab[aria-selected="true"]').textContent()).startsWith('util.h') &&
    (await textOf('#editor .cm-activeLine')).includes('2 * y'));
  await page.screenshot({ path: join(SHOTS, 'two-files-desktop.png') });
  await setSource('static int twice(int x) {\n    return 2 * x;\n}\n');
  await $('#run').click();
  await waitVerdict('ok');
  check((await textOf('#output')) === '42', `output ${await textOf('#output')}`);
  await $('.tab-close[aria-label="Remove util.h"]').click();
  await $('#compile-args').fill('');
});

await step('dark theme and font size are remembered; the shortcuts are listed; Escape then Tab leaves the editor', async () => {
  await $('#theme-toggle').click();
  await $('#font-size').selectOption('18');
  await page.reload();
  await $('.cm-content').waitFor();
  check(await page.evaluate(() => document.documentElement.classList.contains('theme-dark')), 'dark theme forgotten');
  check((await $('#theme-toggle').getAttribute('aria-pressed')) === 'true', 'theme button not pressed');
  const size = await $('.cm-editor').evaluate((e) => getComputedStyle(e).fontSize);
  check(size === '18px', `code font size ${size}`);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg === 'rgb(15, 17, 21)', `dark background: ${bg}`);
  await page.screenshot({ path: join(SHOTS, 'editor-dark-desktop.png') });
  await $('#shortcuts').click();
  await $('#shortcuts-dialog').waitFor();
  check((await textOf('#shortcuts-dialog')).includes('Escape, then Tab'), 'Escape not in the shortcuts');
  await $('#shortcuts-close').click();
  await $('.cm-content').click();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.id === 'editor'), 'Tab alone left the editor');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.id !== 'editor'), 'Escape then Tab stayed in the editor');
  await $('#theme-toggle').click();
  await $('#font-size').selectOption('14');
});

await step('phone (390 px): Run brings the result into view; the user\'s name is shown', async () => {
  await page.setViewportSize(PHONE);
  await sleep(300);
  check(await visible('#whoami'), 'the user name is hidden on a phone');
  await $('#language').selectOption('python');
  await setSource('print("on a phone:", input())\n');
  // Standard input read from a file.
  await $('#stdin-file').setInputFiles({ name: 'in.txt', mimeType: 'text/plain', buffer: Buffer.from('from a file\n') });
  await until('stdin from the file', async () => (await $('#stdin').inputValue()) === 'from a file\n');
  await page.evaluate(() => window.scrollTo(0, 0));
  await $('#run').click();
  await waitVerdict('ok');
  // The verdict and the start of the output are on screen, without scrolling.
  const [panel, verdict, out] = [await $('#output-panel').boundingBox(), await $('#verdict').boundingBox(), await $('#output').boundingBox()];
  check(panel.y >= -5 && verdict.y > 0 && out.y + 20 < PHONE.height,
    `the result is not in view: panel at y=${Math.round(panel.y)}, output at y=${Math.round(out.y)} in a ${PHONE.height} px window`);
  check((await textOf('#output')) === 'on a phone: from a file', `output: ${await textOf('#output')}`);
  await noHorizontalScroll('editor after Run');
  await page.screenshot({ path: join(SHOTS, 'editor-phone-result.png') });
  await page.setViewportSize(DESKTOP);
});

await step('my jobs: history refreshes by itself; job page shows source, stdin, result; run again', async () => {
  await $('#nav-jobs').click();
  await until('3 jobs listed', async () => (await $('#jobs-table tbody tr').count()) >= 3);
  const before = await $('#jobs-table tbody tr').count();
  await submitInPage({ language: 'python', source: 'print("from elsewhere")', limits: {} });
  await until('the new job to appear without a reload', async () => (await $('#jobs-table tbody tr').count()) === before + 1, 8000);
  await page.screenshot({ path: join(SHOTS, 'jobs-desktop.png') });
  // The Python job of step 2 (verdict ok, output "hello from python").
  const okRow = $('#jobs-table tbody tr').filter({ has: page.locator('.j-result [data-verdict="ok"]') }).last();
  await okRow.locator('.j-id a').click();
  await $('#job-source .cm-content').waitFor();
  check((await textOf('#job-source .cm-content')).includes('hello from python'), 'source not shown');
  check((await textOf('#job-stdin')) === 'grappe', `stdin shown: ${await textOf('#job-stdin')}`);
  check((await textOf('#job-output')).includes('hello from python grappe'), 'output not shown');
  check((await $('#verdict .badge').getAttribute('data-verdict')) === 'ok', 'verdict not ok');
  await page.screenshot({ path: join(SHOTS, 'job-desktop.png'), fullPage: true });
  const first = page.url();
  await $('#rerun').click();
  await until('a new job page', async () => page.url() !== first && /\/jobs\/[^/]+$/.test(new URL(page.url()).pathname));
  await waitVerdict('ok');
  await until('the re-run output', async () => (await textOf('#job-output')).includes('hello from python grappe'));
});

await step('history: older pages, search, filters by language, verdict and date', async () => {
  // More jobs than a page holds (50).
  await page.evaluate(async () => {
    const csrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)grappe_csrf=([^;]+)/) ?? [])[1] ?? '');
    for (let i = 0; i < 52; i++) {
      const body = { language: 'python', source: `print(${i})  # history-filler-${i}`, limits: {} };
      const r = await fetch('/api/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(body) });
      if (r.status !== 201) throw new Error(`submit ${i}: ${r.status}`);
    }
  });
  await $('#nav-jobs').click();
  await until('a full first page', async () => (await $('#jobs-table tbody tr').count()) === 50);
  await until('an older page offered', async () => !(await $('#jobs-older').isDisabled()));
  const firstIds = await $('#jobs-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.jobId));
  await $('#jobs-older').click();
  await until('page 2', async () => (await textOf('#jobs-page')) === 'page 2' && (await $('#jobs-table tbody tr').count()) > 0);
  const secondIds = await $('#jobs-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.jobId));
  check(!secondIds.some((id) => firstIds.includes(id)), 'page 2 repeats jobs of page 1');
  // The oldest job of all (step 2's) is on a later page.
  check(!(await $('#jobs-newer').isDisabled()), 'no way back to newer jobs');
  await $('#jobs-newer').click();
  await until('page 1 again', async () => (await $('#jobs-table tbody tr').first().getAttribute('data-job-id')) === firstIds[0]);

  await $('#jobs-search').fill('history-filler-7');
  await until('one job found', async () => (await $('#jobs-table tbody tr').count()) === 1);
  check(new URL(page.url()).searchParams.get('q') === 'history-filler-7', `filters not in the address: ${page.url()}`);
  await $('#jobs-clear').click();
  await $('#verdict-filter').selectOption('compile_error');
  await until('only compile errors', async () => {
    const v = await $('#jobs-table tbody tr .j-result .badge').evaluateAll((bs) => bs.map((b) => b.dataset.verdict));
    return v.length >= 2 && v.every((x) => x === 'compile_error');
  });
  await $('#language-filter').selectOption('c');
  await until('compile errors in C', async () => {
    const l = await $('#jobs-table tbody tr .j-lang').allTextContents();
    return l.length >= 2 && l.every((x) => x.startsWith('C'));
  });
  await page.screenshot({ path: join(SHOTS, 'history-filtered-desktop.png') });
  // A compile error's job page marks the error in its source, and Back
  // returns to the filtered history (the filters are in the address).
  await $('#jobs-table tbody tr .j-id a').first().click();
  await until('the error marked on the job page', async () => (await $('#job-source .cm-lintRange-error').count()) > 0);
  check((await $('#diagnostics li').count()) > 0, 'no diagnostics on the job page');
  await page.goBack();
  await until('the filtered history again', async () => (await $('#verdict-filter').inputValue()) === 'compile_error' &&
    (await $('#language-filter').inputValue()) === 'c' && (await $('#jobs-table tbody tr').count()) >= 2);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  await $('#until').fill(yesterday);
  await until('nothing before yesterday', async () => (await visible('#jobs-empty')) && (await textOf('#jobs-empty')) === 'No job matches these filters.');
  await $('#jobs-clear').click();
  await until('all jobs again', async () => (await $('#jobs-table tbody tr').count()) === 50);
  await page.setViewportSize(PHONE);
  await sleep(300);
  await noHorizontalScroll('history');
  check(await visible('#jobs-table tbody tr:first-child .j-worker'), 'a column of the history hidden on a phone');
  await page.screenshot({ path: join(SHOTS, 'history-phone.png') });
  await page.setViewportSize(DESKTOP);
});

await step('a read-only link: opened without a session, then withdrawn', async () => {
  await $('#jobs-search').fill('history-filler-7');
  await until('the job found', async () => (await $('#jobs-table tbody tr').count()) === 1);
  await $('#jobs-table tbody tr .j-id a').click();
  await $('#share-make').click();
  const url = await until('the link', async () => $('#share-url').inputValue());
  check(url.startsWith(BASE + '/shared/'), `link ${url}`);
  await page.screenshot({ path: join(SHOTS, 'share-desktop.png') });
  const anon = await newPage();
  try {
    await anon.goto(url);
    await anon.locator('#shared-note').waitFor({ timeout: 10_000 });
    check(new URL(anon.url()).pathname.startsWith('/shared/'), `sent to ${anon.url()}`);
    check(((await anon.locator('#job-source .cm-content').textContent()) ?? '').includes('history-filler-7'), 'source not shown');
    await until('the output', async () => ((await anon.locator('#job-output').textContent()) ?? '').trim() === '7');
    for (const sel of ['#rerun', '#open-in-editor', '#cancel-job', '#share', '#whoami', '#nav-jobs']) {
      check((await anon.locator(sel).count()) === 0, `${sel} offered on a shared page`);
    }
    const status = await anon.evaluate(async () => (await fetch('/api/v1/jobs')).status);
    check(status === 401, `the shared page's visitor can list jobs: ${status}`);
    await anon.screenshot({ path: join(SHOTS, 'shared-page.png'), fullPage: true });
    await $('#share-stop').click();
    await $('#unshare-dialog-ok').click();
    await until('not shared', async () => (await textOf('#share-state')).startsWith('Only you'));
    await anon.reload();
    await anon.locator('#job-error').waitFor({ timeout: 10_000 });
    check(((await anon.locator('#job-error').textContent()) ?? '').includes('withdrawn'), 'a withdrawn link still works');
  } finally {
    await anon.context().close();
  }
});

await step('dashboard: two workers with their load, clients, charts', async () => {
  await $('#nav-dashboard').click();
  for (const w of ['w1', 'w2']) {
    await until(`worker ${w} up`, async () => (await textOf(`tr[data-worker="${w}"] .w-status`)) === 'up');
    const cpu = await textOf(`tr[data-worker="${w}"] .w-cpu`);
    const mem = await textOf(`tr[data-worker="${w}"] .w-mem`);
    const slots = await textOf(`tr[data-worker="${w}"] .w-slots`);
    check(/^\d+(\.\d)? %$/.test(cpu), `${w} CPU: "${cpu}"`);
    check(/^\d+(\.\d)? %$/.test(mem) && mem !== '0.0 %', `${w} memory: "${mem}"`);
    check(/^\d+\/2$/.test(slots), `${w} slots: "${slots}"`);
    check((await textOf(`tr[data-worker="${w}"] .w-langs`)).includes('Python'), `${w} languages`);
    check(/s ago/.test(await textOf(`tr[data-worker="${w}"] .w-beat`)), `${w} last heartbeat`);
    check((await textOf(`tr[data-worker="${w}"] .w-infra`)) === '0', `${w} infrastructure failures`);
  }
  // The warning names exactly the live workers without a sandbox: auto-1
  // (--insecure-no-sandbox), and w1 and w2 unless the test runs them in
  // the Linux sandbox (as root).
  const bare = await page.evaluate(async () => (await (await fetch('/api/v1/workers')).json()).workers
    .filter((w) => w.sandbox === 'none' && w.status !== 'lost').map((w) => w.name).sort());
  check(bare.includes('auto-1'), `workers without a sandbox: ${bare.join(', ')} (auto-1 runs without one)`);
  await until('the warning for workers without a sandbox', () => visible('#sandbox-warning'));
  const warning = await textOf('#sandbox-warning');
  const named = (warning.match(/No sandbox on (.+?): programs/)?.[1] ?? '').split(', ').sort();
  check(named.join() === bare.join(), `sandbox warning names ${named.join(', ')}, want ${bare.join(', ')}`);
  await until('the user among the clients', async () => (await textOf('#clients-table')).includes(USER));
  await $('#chart-queue canvas').first().waitFor({ timeout: 10_000 });
  check(/^\d+$/.test(await textOf('#stat-queue')), 'queue depth card');
});

await step('dashboard: the autoscaler panel, the worker it started, its decisions; started_by in the workers table', async () => {
  await until('the autoscaler panel', () => visible('#autoscaler'));
  check((await textOf('#as-provisioner')) === 'local', `provisioner: "${await textOf('#as-provisioner')}"`);
  check((await textOf('#as-range')) === '1–2', `min–max: "${await textOf('#as-range')}"`);
  check((await textOf('#as-idle')) === '1 min', `idle: "${await textOf('#as-idle')}"`);
  check((await textOf('#as-languages')) === 'Bash', `languages: "${await textOf('#as-languages')}"`);
  await until('desired 1 and actual 1', async () => (await textOf('#as-desired')) === '1' && (await textOf('#as-actual')) === '1');
  check(!(await $('#as-actual').locator('xpath=..').getAttribute('class')).includes('behind'), 'actual = desired marked as behind');
  const aw = 'tr[data-auto-worker="auto-1"]';
  await until('auto-1 up among the workers it started', async () => (await textOf(`${aw} .aw-phase`)) === 'up');
  check((await $('#as-workers tbody tr').count()) === 1, `${await $('#as-workers tbody tr').count()} started workers listed, want 1`);
  check((await textOf(`${aw} .aw-restarts`)) === '0', `restarts: "${await textOf(`${aw} .aw-restarts`)}"`);
  check(/^pid \d+$/.test(await textOf(`${aw} .aw-pid`)), `pid: "${await textOf(`${aw} .aw-pid`)}"`);
  check(/auto-1\.log$/.test((await $(`${aw} .aw-pid`).getAttribute('title')) ?? ''), 'no log path in the pid\'s title');
  check((await textOf(`${aw} .aw-reason`)).includes('below the minimum of 1'), `why: "${await textOf(`${aw} .aw-reason`)}"`);
  check((await textOf(`${aw} .aw-error`)) === '—', `error: "${await textOf(`${aw} .aw-error`)}"`);
  check(await $('#as-workers-empty').isHidden(), '"no worker" shown next to auto-1');
  // The decisions as the master has them, newest first.
  const st = await page.evaluate(async () => (await fetch('/api/v1/autoscaler')).json());
  check(st.enabled && st.decisions.length > 0, `API: ${JSON.stringify(st).slice(0, 300)}`);
  await until('the decisions listed', async () => (await $('#as-decisions tbody tr').count()) === Math.min(20, st.decisions.length));
  const rows = $('#as-decisions tbody tr');
  check((await rows.first().getAttribute('data-action')) === st.decisions[0].action, 'the first row is not the newest decision');
  const start = $('#as-decisions tbody tr[data-action="start"]').filter({ has: page.locator('.d-worker', { hasText: /^auto-1$/ }) });
  check((await start.count()) === 1, `${await start.count()} "start auto-1" rows`);
  check(((await start.locator('.d-reason').textContent()) ?? '').includes('below the minimum of 1'), 'start decision without its reason');
  check(/\d{1,2}:\d{2}/.test((await start.locator('.d-time').textContent()) ?? ''), 'decision without its time');
  // The workers table: started_by under the name of auto-1 only.
  await until('auto-1 in the workers table', () => visible('tr[data-worker="auto-1"] .w-origin'));
  const origin = await textOf('tr[data-worker="auto-1"] .w-origin');
  check(origin.startsWith('auto (local): below the minimum of 1'), `auto-1 started_by: "${origin}"`);
  check((await textOf('tr[data-worker="auto-1"] .w-name-text')) === 'auto-1', 'auto-1 name cell');
  for (const w of ['w1', 'w2']) check(!(await visible(`tr[data-worker="${w}"] .w-origin`)), `${w} shown as started by the autoscaler`);
  await $('#autoscaler').screenshot({ path: join(SHOTS, 'autoscaler-desktop.png') });
});

await step('dashboard: the autoscaler panel with a canned answer; hidden when disabled or absent', async () => {
  // The master's answers are replaced in the browser (Playwright routes):
  // a busy autoscaler, then one turned off, then an older master.
  const now = Date.now();
  const iso = (ago) => new Date(now - ago).toISOString();
  const busy = {
    enabled: true, provisioner: 'exec',
    policy: {
      min: 0, max: 5, max_jobs: 2, wait_ms: 10000, backlog_ms: 3000, idle_ms: 90000, up_cooldown_ms: 10000,
      down_cooldown_ms: 30000, max_starts_per_minute: 10, join_timeout_ms: 120000,
    },
    desired: 3, actual: 1, languages: ['python', 'c'],
    held: 'at most 10 starts a minute', start_failures: 2, backoff_until: iso(-60_000),
    workers: [
      { name: 'auto-7', phase: 'up', state: 'running', reason: 'queue pressure: 6 python jobs waiting for 12s', started_at: iso(300_000), restarts: 0, pid: 4242, log: '/var/lib/grappe/autoscale/logs/auto-7.log' },
      { name: 'auto-8', phase: 'starting', state: 'restarting', reason: 'queue pressure: 6 python jobs waiting for 12s', started_at: iso(60_000), restarts: 3, pid: 4300, error: 'exit status 1 (see /var/lib/grappe/autoscale/logs/auto-8.log)' },
      { name: 'auto-9', phase: 'starting', state: 'failed', reason: 'queue pressure: 4 python jobs waiting for 15s', started_at: iso(30_000), restarts: 0, error: 'exited 5 times in a row within 10s of starting, last: exit status 2 (see /var/lib/grappe/autoscale/logs/auto-9.log)' },
    ],
    // 25 decisions, newest first: "decision 25" … "decision 1".
    decisions: Array.from({ length: 25 }, (_, i) => ({
      time: iso(i * 7000), action: ['start', 'hold', 'fail', 'drain', 'stop'][i % 5], worker: i % 5 === 1 ? undefined : `auto-${25 - i}`, reason: `decision ${25 - i}`,
    })),
  };
  const off = { enabled: false, desired: 0, actual: 0, start_failures: 0, workers: [], decisions: [] };
  let answer = { status: 200, body: busy };
  let served = 0;
  await page.route('**/api/v1/autoscaler', (route) => {
    served++;
    return route.fulfill({ status: answer.status, contentType: 'application/json', body: JSON.stringify(answer.body) });
  });
  /** Waits for two more refreshes of the dashboard with the current answer. */
  const twoRefreshes = async () => {
    const n = served;
    await until('two refreshes', async () => served >= n + 2);
    await sleep(200);
  };
  try {
    await until('the canned autoscaler', async () => (await textOf('#as-provisioner')) === 'exec');
    check((await textOf('#as-range')) === '0–5', `min–max: "${await textOf('#as-range')}"`);
    check((await textOf('#as-desired')) === '3' && (await textOf('#as-actual')) === '1', 'desired/actual');
    check((await $('#as-actual').locator('xpath=..').getAttribute('class')).includes('behind'), 'actual below desired not marked');
    check((await textOf('#as-idle')) === '1 min 30 s', `idle: "${await textOf('#as-idle')}"`);
    check((await textOf('#as-slots')) === '2', `slots: "${await textOf('#as-slots')}"`);
    check((await textOf('#as-languages')) === 'Python, C', `languages: "${await textOf('#as-languages')}"`);
    check((await textOf('#as-policy')).includes('waited 10 s') && (await textOf('#as-policy')).includes('within 2 min'), `policy: "${await textOf('#as-policy')}"`);
    const held = await textOf('#as-held');
    check(await visible('#as-held'), 'no note on the held scale-up');
    check(held.includes('at most 10 starts a minute') && held.includes('2 failed starts in a row') && held.includes('next start not before'), `held: "${held}"`);
    await until('three started workers', async () => (await $('#as-workers tbody tr').count()) === 3);
    check((await $('#as-workers tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.autoWorker))).join() === 'auto-7,auto-8,auto-9', 'started workers order');
    const a8 = 'tr[data-auto-worker="auto-8"]';
    check((await textOf(`${a8} .aw-restarts`)) === '3', `auto-8 restarts: "${await textOf(`${a8} .aw-restarts`)}"`);
    check((await textOf(`${a8} .aw-phase`)) === 'starting restarting', `auto-8 phase: "${await textOf(`${a8} .aw-phase`)}"`);
    check((await textOf(`${a8} .aw-error`)).startsWith('exit status 1'), `auto-8 error: "${await textOf(`${a8} .aw-error`)}"`);
    check((await $('tr[data-auto-worker="auto-9"] .aw-phase [data-state="failed"]').count()) === 1, 'auto-9 not shown failed');
    check(((await $('tr[data-auto-worker="auto-9"] .aw-error .err-text').getAttribute('title')) ?? '').includes('exited 5 times'), 'auto-9 error without its full text in the title');
    check(!(await visible('tr[data-auto-worker="auto-9"] .aw-pid')), 'a pid shown for a worker without one');
    // The last 20 decisions, newest first.
    await until('20 decisions', async () => (await $('#as-decisions tbody tr').count()) === 20);
    const reasons = await $('#as-decisions tbody .d-reason').allTextContents();
    check(reasons[0] === 'decision 25' && reasons[19] === 'decision 6', `decisions shown: ${reasons.join(', ')}`);
    check(reasons.every((r, i) => r === `decision ${25 - i}`), `decisions not newest first: ${reasons.join(', ')}`);
    check((await textOf('#as-decisions tbody tr:nth-child(2) .d-worker')) === '—', 'a hold without a worker');
    check((await $('#as-decisions tbody tr:nth-child(3) .d-action .badge.bad').textContent()) === 'fail', 'a failed start is not marked');
    await page.screenshot({ path: join(SHOTS, 'autoscaler-canned-desktop.png'), fullPage: true });
    await page.setViewportSize(PHONE);
    await sleep(500);
    await noHorizontalScroll('dashboard with a busy autoscaler');
    check(await visible('tr[data-auto-worker="auto-9"] .aw-error'), 'auto-9 error hidden on a phone');
    check(await visible('#as-decisions tbody tr:first-child .d-reason'), 'decision reason hidden on a phone');
    await $('#autoscaler').screenshot({ path: join(SHOTS, 'autoscaler-phone.png') });
    await page.setViewportSize(DESKTOP);

    answer = { status: 200, body: off };
    await until('the panel hidden when the autoscaler is off', async () => !(await visible('#autoscaler')));
    await twoRefreshes();
    check(!(await visible('#autoscaler')), 'the panel came back while the autoscaler is off');
    check((await textOf('#dash-updated')).startsWith('updated'), `dashboard: "${await textOf('#dash-updated')}"`);
    check(/^\d+$/.test(await textOf('#stat-queue')), 'the rest of the dashboard is not filled in');

    answer = { status: 200, body: busy };
    await until('the panel back', () => visible('#autoscaler'));
    answer = { status: 404, body: { error: { code: 'not_found', message: 'no such endpoint: GET /api/v1/autoscaler' } } };
    await until('the panel hidden on a master without the endpoint', async () => !(await visible('#autoscaler')));
    await twoRefreshes();
    check(!(await visible('#autoscaler')), 'the panel came back on a master without the endpoint');
    check((await textOf('#dash-updated')).startsWith('updated'), `a 404 breaks the dashboard: "${await textOf('#dash-updated')}"`);
  } finally {
    await page.unroute('**/api/v1/autoscaler');
  }
  await until('the real autoscaler again', async () => (await textOf('#as-provisioner')) === 'local');
  await until('auto-1 alone again', async () => (await $('#as-workers tbody tr').count()) === 1);
});

await step('dashboard actions: drain and undrain a worker, cancel a job', async () => {
  await $('tr[data-worker="w1"] button.drain').click();
  await $('#drain-dialog-ok').click(); // drain asks first (see the admin block below)
  await until('w1 draining', async () => (await textOf('tr[data-worker="w1"] .w-status')) === 'draining');
  await $('tr[data-worker="w1"] button.drain').click();
  await until('w1 up again', async () => (await textOf('tr[data-worker="w1"] .w-status')) === 'up');
  const id = await submitInPage({ language: 'python', source: 'import time\ntime.sleep(60)', limits: { wall_ms: 90000, cpu_ms: 60000 } });
  await until('the job among the jobs in flight', async () => (await $(`#active-jobs tr[data-job-id="${id}"]`).count()) === 1);
  await $(`#active-jobs tr[data-job-id="${id}"] button.cancel-job`).click();
  await $('#cancel-dialog').waitFor();
  await $('#cancel-dialog-ok').click();
  await until('the job to leave the list', async () => (await $(`#active-jobs tr[data-job-id="${id}"]`).count()) === 0);
  const status = await page.evaluate(async (id) => (await (await fetch(`/api/v1/jobs/${id}`)).json()).status, id);
  check(status === 'cancelled', `job status ${status}, want cancelled`);
  await sleep(1500); // one more refresh, so the screenshot shows the final state
  await page.screenshot({ path: join(SHOTS, 'dashboard-desktop.png'), fullPage: true });
});

await step('phone width (390 px): no sideways scrolling', async () => {
  await page.setViewportSize(PHONE);
  await sleep(500);
  await noHorizontalScroll('dashboard');
  check(await visible('#autoscaler'), 'no autoscaler panel on a phone');
  check((await textOf('tr[data-worker="auto-1"] .w-origin')).startsWith('auto (local):'), 'started_by not shown on a phone');
  check(await visible('tr[data-worker="auto-1"] .w-origin'), 'started_by hidden on a phone');
  check(await visible('tr[data-auto-worker="auto-1"] .aw-reason'), 'why auto-1 was started hidden on a phone');
  await page.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: true });
  await $('#nav-editor').click();
  await $('.cm-content').waitFor();
  await $('#language').selectOption('python');
  await sleep(300);
  await noHorizontalScroll('editor');
  await page.screenshot({ path: join(SHOTS, 'editor-phone.png'), fullPage: true });
  await page.setViewportSize(DESKTOP);
});

await step('stop a worker: the dashboard shows it lost', async () => {
  await $('#nav-dashboard').click();
  await until('w2 up', async () => (await textOf('tr[data-worker="w2"] .w-status')) === 'up');
  await control('stop-worker', '?name=w2');
  await until('w2 lost', async () => (await textOf('tr[data-worker="w2"] .w-status')) === 'lost', 20_000);
  check((await textOf('tr[data-worker="w1"] .w-status')) === 'up', 'w1 is no longer up');
  check(await $('tr[data-worker="w2"] button.drain').isDisabled(), 'a lost worker can still be drained');
});

await step('logout asks for confirmation and ends the session', async () => {
  await $('#logout').click();
  await $('#logout-dialog').waitFor();
  await $('#logout-dialog-cancel').click();
  await until('the dialog to close', async () => (await $('#logout-dialog').count()) === 0);
  check(await visible('#whoami'), 'logged out although the user cancelled');
  await $('#logout').click();
  await $('#logout-dialog-ok').click();
  await $('#login-form').waitFor();
  const status = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
  check(status === 401, `session still valid after logout: ${status}`);
  await page.goto(BASE + '/dashboard');
  await $('#login-form').waitFor();
  await login();
  await until('back on the dashboard after login', async () => new URL(page.url()).pathname === '/dashboard');
});

await step('a user who is not an admin: own jobs only, no dashboard', async () => {
  const p = await newPage();
  try {
    await p.goto(BASE + '/jobs');
    await p.locator('#login-username').fill(PLAIN_USER);
    await p.locator('#login-password').fill(PLAIN_PASSWORD);
    await p.locator('#login-submit').click();
    await p.locator('#jobs-empty').waitFor({ timeout: 10_000 });
    check(new URL(p.url()).pathname === '/jobs', `after login at ${p.url()}`);
    check((await p.locator('#jobs-table tbody tr').count()) === 0, `${PLAIN_USER} sees jobs of others`);
    check((await p.locator('#nav-dashboard').count()) === 0, 'the dashboard is in the menu of a plain user');
    await p.goto(BASE + '/dashboard');
    await p.locator('#not-admin').waitFor({ timeout: 10_000 });
  } finally {
    await p.context().close();
  }
});

await step('the connection indicator turns red when the master stops, green when it is back', async () => {
  await until('green', async () => (await $('#conn').getAttribute('data-state')) === 'up');
  await until('the dashboard filled in', async () => (await textOf('tr[data-worker="w1"] .w-status')) === 'up');
  await control('stop-master');
  await until('red', async () => (await $('#conn').getAttribute('data-state')) === 'down', 8000);
  check((await textOf('#conn')).includes('unreachable'), `indicator text: ${await textOf('#conn')}`);
  await until('the dashboard to say it is not up to date', async () => (await textOf('#dash-updated')).startsWith('not updated'));
  await page.screenshot({ path: join(SHOTS, 'disconnected.png') });
  await control('restart-master');
  await until('green again', async () => (await $('#conn').getAttribute('data-state')) === 'up', 15_000);
});

await step('an interactive run: type a name into the terminal, see the answer', async () => {
  await $('#nav-editor').click();
  await until('python in the language list', () => $('#language option[value="python"]').count());
  await $('#language').selectOption('python');
  await setSource('name = input("What is your name? ")\nprint("Hello, " + name + "!")\n');
  await $('#interactive').check();
  await $('#terminal').waitFor();
  // The terminal's rows, spaces as the DOM renderer writes them (no-break).
  const screen = () => page.evaluate(() => (document.querySelector('#terminal .xterm-rows')?.textContent ?? '').replace(/\u00a0/g, ' '));
  await $('#run').click();
  await until('the prompt in the terminal', async () => (await screen()).includes('What is your name?'), 30_000);
  await $('#terminal').click();
  await page.keyboard.type('Ada');
  await page.keyboard.press('Enter');
  await until('the answer in the terminal', async () => (await screen()).includes('Hello, Ada!'), 30_000);
  await waitVerdict('ok');
  await page.screenshot({ path: join(SHOTS, 'interactive.png') });
  await $('#interactive').uncheck();
});

// ---------------------------------------------------------------------------
// First use and watching the cluster as an admin: the one-time sign-in link,
// users and tokens, the audit log, a sick worker, drain confirmation, queue
// positions, the banner while the master is down, charts across a restart.

/** A page in its own browser context, logged in with a password. */
async function loginAs(user, password) {
  const p = await newPage();
  await p.goto(BASE + '/');
  await p.locator('#login-username').fill(user);
  await p.locator('#login-password').fill(password);
  await p.locator('#login-submit').click();
  await until(`${user} logged in`, async () => ((await p.locator('#whoami').textContent({ timeout: 500 })) ?? '').startsWith(user));
  return p;
}

/** Calls the API from inside page p (its session cookie), returning the status and the body. */
async function apiIn(p, method, path, body, headers = {}) {
  return p.evaluate(async ([method, path, body, headers]) => {
    const csrf = decodeURIComponent((document.cookie.match(/(?:^|;\s*)grappe_csrf=([^;]+)/) ?? [])[1] ?? '');
    const r = await fetch(path, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: await r.text() };
  }, [method, path, body, headers]);
}

const NEW_USER = 'carol';
const NEW_PASSWORD = 'carol first password';
const NEW_PASSWORD2 = 'carol second password';
let adminPage; // the admin signed in by the link: used by the whole block
let carolPage;
let carolToken = '';

await step('first login through the one-time sign-in link; used twice it is refused', async () => {
  const r = await fetch(`${CONTROL}/signin-link`, { method: 'POST' });
  check(r.ok, `signin-link: ${r.status}`);
  const link = await r.text();
  const secret = link.split('#/signin/')[1];
  check(link.startsWith(BASE + '/#/signin/grp_') && secret.length > 40, `link: ${link}`);
  adminPage = await newPage();
  // The secret is in the fragment: no request may carry it (no URL, no Referer).
  const leaks = [];
  adminPage.on('request', (req) => {
    if (req.url().includes(secret) || (req.headers().referer ?? '').includes(secret)) leaks.push(req.url());
  });
  await adminPage.goto(link);
  await until('signed in as admin', async () => ((await adminPage.locator('#whoami').textContent({ timeout: 500 })) ?? '') === 'admin (admin)');
  check(!adminPage.url().includes(secret), `the secret stays in the address bar: ${adminPage.url()}`);
  check(await adminPage.locator('#nav-users').isVisible() && await adminPage.locator('#nav-audit').isVisible(), 'no Users and Audit log in the menu of an admin');
  await adminPage.screenshot({ path: join(SHOTS, 'signin-link-desktop.png') });
  // A second use, in another browser: the login page says why.
  const again = await newPage();
  try {
    await again.goto(link);
    await again.locator('#login-form').waitFor({ timeout: 10_000 });
    await until('the reason on the login page', async () => /used already or has expired/.test((await again.locator('#login-error').textContent()) ?? ''));
    check((await again.locator('#whoami').count()) === 0, 'a used link signed in again');
    await again.screenshot({ path: join(SHOTS, 'signin-link-used.png') });
  } finally {
    await again.context().close();
  }
  check(leaks.length === 0, `the sign-in secret was sent in: ${leaks.join(', ')}`);
});

await step('an admin creates a user, who logs in and changes their password', async () => {
  const a = adminPage;
  await a.locator('#nav-users').click();
  await a.locator('#users-table').waitFor();
  await a.locator('#new-user-name').fill(NEW_USER);
  await a.locator('#new-user-password').fill(NEW_PASSWORD);
  await a.locator('#new-user-submit').click();
  await until(`${NEW_USER} in the users table`, () => a.locator(`tr[data-user="${NEW_USER}"]`).count());
  check(((await a.locator(`tr[data-user="${NEW_USER}"] .u-role`).textContent()) ?? '').trim() === 'user', 'role of the new user');
  // The same name again is refused, in words.
  await a.locator('#new-user-name').fill(NEW_USER);
  await a.locator('#new-user-password').fill(NEW_PASSWORD);
  await a.locator('#new-user-submit').click();
  await until('a conflict message', async () => /exists already/.test((await a.locator('#new-user-error').textContent()) ?? ''));
  await a.screenshot({ path: join(SHOTS, 'users-desktop.png'), fullPage: true });

  carolPage = await loginAs(NEW_USER, NEW_PASSWORD);
  const c = carolPage;
  check((await c.locator('#nav-users').count()) === 0, 'Users in the menu of a plain user');
  await c.locator('#whoami').click();
  await c.locator('#password-form').waitFor();
  await until('the quotas', async () => /of at most \d/.test((await c.locator('#acc-queued').textContent()) ?? ''));
  check(/\d/.test((await c.locator('#limits-table tr[data-limit="CPU time"] .l-max').textContent()) ?? ''), 'no maximum CPU time shown');
  // A wrong current password is refused, in words.
  await c.locator('#pw-current').fill('not my password');
  await c.locator('#pw-new').fill(NEW_PASSWORD2);
  await c.locator('#pw-again').fill(NEW_PASSWORD2);
  await c.locator('#pw-save').click();
  await until('"current password is wrong"', async () => /current password is wrong/.test((await c.locator('#pw-error').textContent()) ?? ''));
  await c.locator('#pw-current').fill(NEW_PASSWORD);
  await c.locator('#pw-save').click();
  await until('the form cleared after the change', async () => (await c.locator('#pw-current').inputValue()) === '' && (await c.locator('#pw-error').textContent()) === '');
  await c.screenshot({ path: join(SHOTS, 'settings-desktop.png'), fullPage: true });
  // Still logged in, with a session that works for changes too.
  const me = await apiIn(c, 'GET', '/api/v1/session');
  check(me.status === 200 && JSON.parse(me.body).username === NEW_USER, `session after the change: ${me.status}`);
  // The page logged in again with the new password (the change ended the
  // sessions); the old one is refused. (Five password attempts for carol
  // in a minute so far: the most the login throttle allows at once.)
  const old = await apiIn(c, 'POST', '/api/v1/login', { username: NEW_USER, password: NEW_PASSWORD });
  check(old.status === 401, `the old password: ${old.status} ${old.body}`);
});

await step('a token is created (shown once), logs in, and is revoked', async () => {
  const c = carolPage;
  await c.locator('#my-tokens-name').fill('ci');
  await c.locator('#my-tokens-create').click();
  await c.locator('#my-tokens-secret').waitFor();
  carolToken = ((await c.locator('#my-tokens-secret').textContent()) ?? '').trim();
  check(carolToken.startsWith('grp_'), `the new token: "${carolToken}"`);
  await until('the token listed', () => c.locator('tr[data-token-name="ci"]').count());
  check(!((await c.locator('#my-tokens-table').textContent()) ?? '').includes(carolToken), 'the list shows the secret');
  await c.screenshot({ path: join(SHOTS, 'token-created-desktop.png'), fullPage: true });
  // The login page takes the token.
  const t = await newPage();
  try {
    await t.goto(BASE + '/');
    await t.locator('#login-with-token summary').click();
    await t.locator('#login-token').fill(carolToken);
    await t.locator('#login-token-submit').click();
    await until('logged in with the token', async () => ((await t.locator('#whoami').textContent({ timeout: 500 })) ?? '') === NEW_USER);
  } finally {
    await t.context().close();
  }
  // The admin sees it among carol's tokens.
  const a = adminPage;
  await a.locator(`tr[data-user="${NEW_USER}"] button.user-tokens`).click();
  await until("carol's token in the admin's view", () => a.locator('#user-tokens tr[data-token-name="ci"]').count());
  // Revoked after a confirmation, it no longer works.
  await c.locator('tr[data-token-name="ci"] button.revoke-token').click();
  await c.locator('#revoke-dialog').waitFor();
  await c.locator('#revoke-dialog-ok').click();
  await until('the token gone from the list', async () => (await c.locator('tr[data-token-name="ci"]').count()) === 0);
  const used = await apiIn(c, 'GET', '/api/v1/jobs', undefined, { Authorization: `Bearer ${carolToken}` });
  check(used.status === 401, `the revoked token: ${used.status}`);
});

await step('the audit log: what happened, filtered', async () => {
  const a = adminPage;
  await a.locator('#nav-audit').click();
  await a.locator('#audit-table').waitFor();
  const actions = async () => a.locator('#audit-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.action));
  await until('the actions of this run', async () => {
    const got = await actions();
    return ['user.add', 'login', 'user.password', 'token.create', 'token.revoke', 'login.failed', 'worker.drain'].every((x) => got.includes(x));
  });
  const add = a.locator('#audit-table tbody tr[data-action="user.add"]').first();
  check(((await add.locator('.au-actor').textContent()) ?? '') === 'admin' && ((await add.locator('.au-target').textContent()) ?? '') === NEW_USER, 'user.add row: who and on whom');
  check(/\d{1,2}:\d{2}/.test((await add.locator('.au-time').textContent()) ?? ''), 'an entry without its time');
  await a.screenshot({ path: join(SHOTS, 'audit-desktop.png'), fullPage: true });
  await a.locator('#audit-action').selectOption('login.failed');
  await until('failed logins only', async () => {
    const got = await actions();
    return got.length > 0 && got.every((x) => x === 'login.failed');
  });
  check(((await a.locator('#audit-table tbody').textContent()) ?? '').includes(USER), `the wrong password of ${USER} (first step) is not there`);
  await a.locator('#audit-action').selectOption('');
  await a.locator('#audit-actor').fill(NEW_USER);
  await until(`${NEW_USER}'s actions only`, async () => {
    const who = await a.locator('#audit-table tbody .au-actor').allTextContents();
    return who.length >= 3 && who.every((x) => x === NEW_USER);
  });
  await a.locator('#audit-actor').fill('nobody-at-all');
  await a.locator('#audit-empty').waitFor();
});

await step('a worker that fails jobs stands out: unhealthy, failures and rate, last error', async () => {
  await $('#nav-dashboard').click();
  await until('w1 up', async () => (await textOf('tr[data-worker="w1"] .w-badge')) === 'up');
  check(!(await visible('tr[data-worker="w1"] .w-failed')), `w1 shown with failed jobs: ${await textOf('tr[data-worker="w1"] .w-failed')}`);
  // The master's answer, with w1 made sick (a failing worker cannot be
  // made on purpose in this cluster).
  await page.route('**/api/v1/workers', async (route) => {
    const resp = await route.fetch();
    const body = await resp.json();
    for (const w of body.workers) {
      if (w.name !== 'w1') continue;
      Object.assign(w, {
        status: 'unhealthy', health: 'sandbox: cannot create cgroup: no space left on device', infra_failures: 4,
        jobs_failed: 7, failure_rate: 0.7, last_error: 'the sandbox failed to start', last_error_at: new Date(Date.now() - 30_000).toISOString(),
      });
    }
    await route.fulfill({ response: resp, json: body });
  });
  try {
    await until('w1 unhealthy', async () => (await textOf('tr[data-worker="w1"] .w-badge')) === 'unhealthy');
    const row = 'tr[data-worker="w1"]';
    check((await $(row).getAttribute('class')).includes('failing'), 'the sick worker\'s row is not marked');
    check(await visible(`${row} .w-why`), 'why it is unhealthy is not shown');
    check((await textOf(`${row} .w-why`)).includes('no space left on device'), `why: "${await textOf(`${row} .w-why`)}"`);
    check(await visible(`${row} .w-failed`) && (await textOf(`${row} .w-failed`)) === '7 failed (70 %)', `failed jobs: "${await textOf(`${row} .w-failed`)}"`);
    check((await textOf('#stat-workers-sub')).includes('1 unhealthy'), `summary: "${await textOf('#stat-workers-sub')}"`);
    await $('#workers-table').screenshot({ path: join(SHOTS, 'worker-unhealthy-desktop.png') });
    await page.setViewportSize(PHONE);
    await sleep(400);
    check(await visible(`${row} .w-why`) && await visible(`${row} .w-failed`), 'the sick worker\'s details hidden on a phone');
    await $('#workers-table').screenshot({ path: join(SHOTS, 'worker-unhealthy-phone.png') });
    await page.setViewportSize(DESKTOP);
  } finally {
    await page.unroute('**/api/v1/workers');
  }
  await until('w1 up again', async () => (await textOf('tr[data-worker="w1"] .w-badge')) === 'up');
});

await step('drain asks for confirmation; cancelled, nothing changes', async () => {
  await $('tr[data-worker="w1"] button.drain').click();
  await $('#drain-dialog').waitFor();
  check((await textOf('#drain-dialog-text')).includes('w1'), 'the dialog does not name the worker');
  await $('#drain-dialog-cancel').click();
  await until('the dialog closed', async () => (await $('#drain-dialog').count()) === 0);
  await sleep(2000); // a refresh or so
  check((await textOf('tr[data-worker="w1"] .w-badge')) === 'up', 'w1 drained although the admin cancelled');
});

let sleepers = [];
await step('queue positions are numbers', async () => {
  // w1's two slots run two of them; the others wait (w2 is gone).
  const src = 'import time\ntime.sleep(100)';
  for (let i = 0; i < 4; i++) sleepers.push(await submitInPage({ language: 'python', source: src, limits: { wall_ms: 110000, cpu_ms: 60000 } }));
  await until('two sleepers queued with their places', async () => {
    const where = await $('#active-jobs td.a-where').allTextContents();
    return where.filter((w) => /^#\d+ in /.test(w)).length >= 2;
  }, 20_000);
  const where = await $('#active-jobs td.a-where').allTextContents();
  check(!where.some((w) => w.includes('?')), `places: ${where.join(' | ')}`);
  await page.screenshot({ path: join(SHOTS, 'queue-positions-desktop.png'), fullPage: true });
});

await step('the master stops: one banner, retries backing off, jobs in flight shown unknown', async () => {
  await until('a sleeper running on w1', async () => (await $('#active-jobs td.a-where').allTextContents()).includes('w1'));
  const first = await $('#stats-note').getAttribute('data-first');
  check(first, `the charts have no history yet: "${await textOf('#stats-note')}"`);
  const sent = [];
  const watch = (req) => { if (req.url().startsWith(BASE)) sent.push({ t: Date.now(), path: new URL(req.url()).pathname }); };
  page.on('request', watch);
  try {
    await control('stop-master');
    await until('the banner', () => visible('#offline-banner'), 8000);
    check((await $('.offline-banner').count()) === 1, 'more than one banner');
    const from = Date.now();
    await sleep(9000);
    const during = sent.filter((r) => r.t >= from);
    const checks = during.filter((r) => r.path === '/healthz').length;
    const others = during.filter((r) => r.path !== '/healthz');
    log(`  in 9 s: ${checks} checks, other requests: ${others.map((r) => r.path).join(', ') || 'none'}`);
    check(checks >= 2 && checks <= 5, `${checks} /healthz checks in 9 s (want a backoff: 1, 2, 4, 8 s…)`);
    check(others.length === 0, `requests while the master is down: ${others.map((r) => r.path).join(', ')}`);
    check(/Next try in \d+ s|Trying again now/.test(await textOf('#offline-retry')), `retry text: "${await textOf('#offline-retry')}"`);
    check(/Last reached at/.test(await textOf('#offline-since')), 'the banner does not say when the master was last reached');
    // A job the page last saw running is shown unknown, not "running on w1".
    const shown = await page.evaluate(() => {
      const td = [...document.querySelectorAll('#active-jobs td.a-where')].find((x) => x.textContent === 'w1');
      const badge = document.querySelector('#active-jobs .badge[data-status="running"]');
      return {
        where: td ? getComputedStyle(td, '::after').content : '', size: td ? getComputedStyle(td).fontSize : '',
        badge: badge ? getComputedStyle(badge, '::after').content : '',
      };
    });
    check(shown.where.includes('unknown') && shown.size === '0px', `the running job's place while down: ${JSON.stringify(shown)}`);
    check(shown.badge.includes('unknown'), `the running job's status while down: ${JSON.stringify(shown)}`);
    await page.screenshot({ path: join(SHOTS, 'master-down-banner-desktop.png') });
    await page.setViewportSize(PHONE);
    await sleep(300);
    check(await visible('#offline-banner'), 'no banner on a phone');
    await page.screenshot({ path: join(SHOTS, 'master-down-banner-phone.png') });
    await page.setViewportSize(DESKTOP);
    await control('restart-master');
    await until('the banner gone', async () => !(await visible('#offline-banner')), 20_000);
    await until('the tables live again', async () => (await textOf('#dash-updated')).startsWith('updated'));
  } finally {
    page.off('request', watch);
  }
  // History from before the restart is drawn: the store kept it.
  await until('the charts back with their history', async () => {
    const f = await $('#stats-note').getAttribute('data-first');
    return f && Date.parse(f) <= Date.parse(first);
  }, 20_000);
  await $('#stats-span').selectOption('1440');
  await until('24 hours of history drawn', async () => Number(await $('#stats-note').getAttribute('data-points')) > 0);
  await $('#activity').screenshot({ path: join(SHOTS, 'charts-after-restart-desktop.png') });
  await page.setViewportSize(PHONE);
  await sleep(500);
  await noHorizontalScroll('dashboard with its charts');
  await $('#activity').screenshot({ path: join(SHOTS, 'charts-phone.png') });
  await page.setViewportSize(DESKTOP);
  for (const id of sleepers) await apiIn(page, 'POST', `/api/v1/jobs/${id}/cancel`);
});

await step('an admin resets a password', async () => {
  const a = adminPage;
  await a.locator('#nav-users').click();
  await a.locator(`tr[data-user="${PLAIN_USER}"] button.reset-password`).click();
  await a.locator('#reset-dialog').waitFor();
  await a.locator('#reset-password-input').fill('reset by the admin');
  await a.locator('#reset-dialog-ok').click();
  await until('the dialog closed', async () => (await a.locator('#reset-dialog').count()) === 0);
  await until('the new password works', async () => (await apiIn(a, 'POST', '/api/v1/login', { username: PLAIN_USER, password: 'reset by the admin' })).status === 200);
  check((await apiIn(a, 'POST', '/api/v1/login', { username: PLAIN_USER, password: PLAIN_PASSWORD })).status === 401, 'the old password still works');
});

await step('settings, users and audit pages fit a phone', async () => {
  for (const [p, path, what] of [[carolPage, '/settings', 'settings'], [adminPage, '/users', 'users'], [adminPage, '/audit', 'audit log']]) {
    await p.setViewportSize(PHONE);
    await p.goto(BASE + path);
    await p.locator('h1').first().waitFor();
    await sleep(500);
    const [sw, iw] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(sw <= iw + 1, `${what}: ${sw} px wide in a ${iw} px window`);
    await p.screenshot({ path: join(SHOTS, `${what.replace(' ', '-')}-phone.png`), fullPage: true });
  }
  await carolPage.context().close();
  await adminPage.context().close();
});

await step('no request left the machine, no CSP violation, no script error', async () => {
  check(foreign.length === 0, `requests to other hosts: ${foreign.join(', ')}`);
  check(cspViolations.length === 0, `CSP violations:\n  ${cspViolations.join('\n  ')}`);
  check(pageErrors.length === 0, `uncaught errors:\n  ${pageErrors.join('\n  ')}`);
});

await browser.close();
log(failed ? 'FAIL' : `PASS: ${stepNo} steps; screenshots in ${SHOTS}`);
process.exit(failed ? 1 : 0);
