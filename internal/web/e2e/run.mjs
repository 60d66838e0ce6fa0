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

await step('no request left the machine, no CSP violation, no script error', async () => {
  check(foreign.length === 0, `requests to other hosts: ${foreign.join(', ')}`);
  check(cspViolations.length === 0, `CSP violations:\n  ${cspViolations.join('\n  ')}`);
  check(pageErrors.length === 0, `uncaught errors:\n  ${pageErrors.join('\n  ')}`);
});

await browser.close();
log(failed ? 'FAIL' : `PASS: ${stepNo} steps; screenshots in ${SHOTS}`);
process.exit(failed ? 1 : 0);
