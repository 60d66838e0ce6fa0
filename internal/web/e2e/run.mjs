// Browser tests of grappe's web UI: a real master with real workers (started
// by browser_test.go), Debian's chromium driven headless by playwright-core.
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
import { mkdir } from 'node:fs/promises';
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
  check((await $('#tests-result tbody tr').count()) === 2, 'want 2 test rows');
  check((await $('#tests-result tr[data-test="1"]').getAttribute('data-verdict')) === 'ok', 'case 1 not ok');
  check((await $('#tests-result tr[data-test="2"]').getAttribute('data-verdict')) === 'wrong_answer', 'case 2 not wrong_answer');
  check((await textOf('#tests-result tr[data-test="2"]')).includes('10'), 'case 2 does not show the program\'s output 10');
  while (await $('.remove-test').count()) await $('.remove-test').first().click();
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
  }
  check(await visible('#sandbox-warning'), 'no warning for workers without a sandbox');
  check((await textOf('#sandbox-warning')).includes('w1'), 'sandbox warning does not name w1');
  await until('the user among the clients', async () => (await textOf('#clients-table')).includes(USER));
  await $('#chart-queue canvas').first().waitFor({ timeout: 10_000 });
  check(/^\d+$/.test(await textOf('#stat-queue')), 'queue depth card');
});

await step('dashboard actions: drain and undrain a worker, cancel a job', async () => {
  await $('tr[data-worker="w1"] button.drain').click();
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

await step('no request left the machine, no CSP violation, no script error', async () => {
  check(foreign.length === 0, `requests to other hosts: ${foreign.join(', ')}`);
  check(cspViolations.length === 0, `CSP violations:\n  ${cspViolations.join('\n  ')}`);
  check(pageErrors.length === 0, `uncaught errors:\n  ${pageErrors.join('\n  ')}`);
});

await browser.close();
log(failed ? 'FAIL' : `PASS: ${stepNo} steps; screenshots in ${SHOTS}`);
process.exit(failed ? 1 : 0);
