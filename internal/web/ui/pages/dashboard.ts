// The cluster dashboard (admin): workers with their load, connected
// clients, jobs in flight, and charts of the last ten minutes. Tables are
// polled every 1.5 s and updated in place; the charts follow
// /api/v1/stats, which gains a point every 5 s. The autoscaler panel
// (/api/v1/autoscaler) is shown only when the master runs with
// --autoscale, and follows the tables' refresh.
import {
  ApiError, get, post,
  type Autoscaler, type AutoscaleDecision, type AutoscaledWorker, type Client, type Cluster, type Job, type Worker,
} from '../api';
import { confirmDialog, every, isAdmin, toast, type Page } from '../app';
import { fill, h, setText, syncRows } from '../dom';
import { ago, clock, duration, pct, shortId, when } from '../format';
import { labelOf } from '../languages';
import { badge } from '../result';
import { activityCharts } from './activity';

const REFRESH = 1500;
/** Decisions of the autoscaler shown, newest first (the master keeps more). */
const DECISIONS = 20;

export function dashboardPage(): Page {
  if (!isAdmin()) {
    return {
      title: 'Dashboard',
      el: h('section', { class: 'page narrow' }, h('h1', null, 'Dashboard'),
        h('p', { id: 'not-admin' }, 'The cluster dashboard is for administrators.')),
    };
  }
  const stops: (() => void)[] = [];
  let disposed = false;

  // --- summary cards --------------------------------------------------------
  const card = (id: string, label: string) => {
    const value = h('div', { class: 'value', id }, '—');
    const sub = h('div', { class: 'sub muted small', id: id + '-sub' });
    return { el: h('div', { class: 'stat' }, h('div', { class: 'label' }, label), value, sub), value, sub };
  };
  const cWorkers = card('stat-workers', 'Workers up');
  const cSlots = card('stat-slots', 'Slots in use');
  const cQueue = card('stat-queue', 'Queued jobs');
  const cRunning = card('stat-running', 'Running jobs');
  const cClients = card('stat-clients', 'Clients');
  const updated = h('span', { id: 'dash-updated', class: 'muted small' });
  const sandboxWarning = h('div', { id: 'sandbox-warning', class: 'alarm', role: 'alert', hidden: true });

  // --- workers ----------------------------------------------------------------
  const workersBody = h('tbody');
  const meter = (cls: string) => h('div', { class: `meter ${cls}` }, h('div', { class: 'meter-bar' }, h('div', { class: 'meter-fill' })), h('span', { class: 'meter-text' }));
  const setMeter = (m: Element, fraction: number, label: string) => {
    const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
    // A width computed at run time: set through the CSSOM, which the CSP
    // allows (a style attribute would not be).
    (m.querySelector('.meter-fill') as HTMLElement).style.width = `${(f * 100).toFixed(1)}%`;
    m.classList.toggle('high', f >= 0.9);
    setText(m.querySelector('.meter-text')!, label);
  };
  const workerRow = (w: Worker) => {
    const drain = h('button', { type: 'button', class: 'secondary small drain' });
    drain.addEventListener('click', () => void toggleDrain(drain.dataset.name!, drain.dataset.action as 'drain' | 'undrain'));
    // data-label names each cell when a phone shows rows as cards.
    return h('tr', { 'data-worker': w.name },
      h('th', { scope: 'row', class: 'w-name' }, h('span', { class: 'w-name-text' }), h('small', { class: 'w-origin', hidden: true })),
      h('td', { class: 'w-address', 'data-label': 'Address' }),
      h('td', { class: 'w-status', 'data-label': 'Status' }, h('span', { class: 'w-badge' }), h('small', { class: 'w-why', hidden: true })),
      h('td', { class: 'w-langs', 'data-label': 'Languages' }),
      h('td', { class: 'w-slots', 'data-label': 'Slots' }, meter('slots')),
      h('td', { class: 'w-cpu', 'data-label': 'CPU' }, meter('cpu')),
      h('td', { class: 'w-mem', 'data-label': 'Memory' }, meter('mem')),
      // Failed jobs under the jobs done, so the table stays as wide.
      h('td', { class: 'w-done num', 'data-label': 'Jobs done' }, h('span', { class: 'w-done-count' }), h('small', { class: 'w-failed', hidden: true })),
      h('td', { class: 'w-infra num', 'data-label': 'Infra failures' }),
      h('td', { class: 'w-beat', 'data-label': 'Heartbeat' }),
      h('td', { class: 'w-sandbox', 'data-label': 'Sandbox' }),
      h('td', { class: 'w-actions' }, drain));
  };
  const updateWorker = (row: HTMLTableRowElement, w: Worker) => {
    const c = (k: string) => row.querySelector('.w-' + k)!;
    row.dataset.status = w.status;
    setText(c('name-text'), w.name);
    // Started by the autoscaler: which provisioner and why, under the name.
    const origin = c('origin') as HTMLElement;
    const o = w.started_by;
    origin.hidden = !o;
    setText(origin, o ? `auto (${o.provisioner}): ${o.reason}` : '');
    if (o) origin.title = `Started by the autoscaler (${o.provisioner} provisioner) ${when(o.started_at)}: ${o.reason}`;
    else origin.removeAttribute('title');
    setText(c('address'), w.address || '—');
    const st = c('status');
    if (st.getAttribute('data-status') !== w.status) {
      st.setAttribute('data-status', w.status);
      const bad = w.status === 'lost' || w.status === 'unhealthy';
      fill(c('badge'), h('span', { class: `badge ${w.status === 'up' ? 'good' : bad ? 'bad' : 'busy'}` }, w.status));
    }
    // Why the worker is sick, in words under its status: its machinery's
    // own verdict, else the error of its last failed job.
    const why = c('why') as HTMLElement;
    const reason = w.health || w.last_error || '';
    why.hidden = !reason;
    setText(why, reason ? (w.health ? w.health : `last error${w.last_error_at ? ` (${ago(w.last_error_at)})` : ''}: ${w.last_error}`) : '');
    if (reason) why.title = reason;
    else why.removeAttribute('title');
    // Failed jobs and their share of what it ended: a worker failing
    // most of its jobs is marked even before it calls itself unhealthy.
    const failed = w.jobs_failed ?? 0;
    const rate = w.failure_rate ?? 0;
    (c('failed') as HTMLElement).hidden = failed === 0;
    setText(c('failed'), failed ? `${failed} failed (${pct(rate * 100)})` : '');
    row.classList.toggle('failing', w.status === 'unhealthy' || (failed >= 3 && rate >= 0.5));
    const langs = (w.languages ?? []).map((l) => labelOf(l.name)).join(', ');
    setText(c('langs'), langs || '—');
    c('langs').setAttribute('title', (w.languages ?? []).map((l) => `${l.name} ${l.version}`).join('\n'));
    // A lost worker's last load is history, not its load: not shown.
    const lost = w.status === 'lost';
    setMeter(c('slots').firstElementChild!, lost || !w.slots ? 0 : w.running / w.slots, lost ? `—/${w.slots}` : `${w.running}/${w.slots}`);
    setMeter(c('cpu').firstElementChild!, lost ? 0 : w.cpu_percent / 100, lost ? '—' : pct(w.cpu_percent));
    setMeter(c('mem').firstElementChild!, lost ? 0 : w.memory_percent / 100, lost ? '—' : pct(w.memory_percent));
    setText(c('done-count'), String(w.jobs_done));
    setText(c('infra'), String(w.infra_failures ?? 0));
    c('infra').classList.toggle('nonzero', (w.infra_failures ?? 0) > 0);
    setText(c('beat'), ago(w.last_heartbeat));
    c('beat').setAttribute('title', when(w.last_heartbeat));
    const sb = c('sandbox');
    if (sb.getAttribute('data-sandbox') !== w.sandbox) {
      sb.setAttribute('data-sandbox', w.sandbox);
      fill(sb, w.sandbox === 'none'
        ? h('span', { class: 'badge bad', title: 'Programs run as plain processes: no isolation' }, '⚠ none')
        : h('span', { class: 'badge good' }, w.sandbox || '?'));
    }
    const btn = row.querySelector('button.drain') as HTMLButtonElement;
    const action = w.status === 'draining' ? 'undrain' : 'drain';
    btn.dataset.name = w.name;
    btn.dataset.action = action;
    setText(btn, action === 'drain' ? 'Drain' : 'Undrain');
    btn.disabled = w.status === 'lost';
    btn.setAttribute('aria-label', `${action === 'drain' ? 'Drain' : 'Undrain'} ${w.name}`);
  };

  async function toggleDrain(name: string, action: 'drain' | 'undrain'): Promise<void> {
    if (action === 'drain' && !(await confirmDialog(
      `Drain ${name}? It gets no new job; the jobs it runs finish there. Undrain gives it jobs again.`, 'Drain', 'drain-dialog'))) return;
    try {
      await post<Worker>(`/api/v1/workers/${encodeURIComponent(name)}/${action}`);
      toast(action === 'drain' ? `${name} gets no new job now.` : `${name} takes jobs again.`, 'info');
      await refresh();
    } catch (e) {
      toast(`${action} ${name} failed: ${(e as Error).message}`);
    }
  }

  // --- clients ----------------------------------------------------------------
  const clientsBody = h('tbody');
  const clientRow = () => h('tr', null,
    h('td', { class: 'c-user' }), h('td', { class: 'c-address' }), h('td', { class: 'c-since' }), h('td', { class: 'c-seen' }),
    h('td', { class: 'c-requests num' }), h('td', { class: 'c-total num' }), h('td', { class: 'c-running num' }), h('td', { class: 'c-queued num' }));
  const updateClient = (row: HTMLTableRowElement, c: Client) => {
    const cell = (k: string) => row.querySelector('.c-' + k)!;
    setText(cell('user'), c.user);
    setText(cell('address'), c.address);
    setText(cell('since'), ago(c.since));
    cell('since').setAttribute('title', when(c.since));
    setText(cell('seen'), ago(c.last_seen));
    setText(cell('requests'), String(c.requests));
    setText(cell('total'), String(c.jobs_total));
    setText(cell('running'), String(c.jobs_running));
    setText(cell('queued'), String(c.jobs_queued));
  };

  // --- jobs in flight -----------------------------------------------------------
  const activeBody = h('tbody');
  const activeRow = (j: Job) => {
    const btn = h('button', { type: 'button', class: 'danger small cancel-job', 'aria-label': `Cancel job ${j.id}` }, 'Cancel');
    btn.addEventListener('click', () => void cancelJob(j.id, j.owner));
    return h('tr', { 'data-job-id': j.id },
      h('td', null, h('a', { href: `/jobs/${encodeURIComponent(j.id)}`, title: j.id }, h('code', null, shortId(j.id)))),
      h('td', { class: 'a-owner' }), h('td', { class: 'a-lang' }), h('td', { class: 'a-status' }),
      h('td', { class: 'a-where' }), h('td', { class: 'a-age' }), h('td', null, btn));
  };
  const updateActive = (row: HTMLTableRowElement, j: Job) => {
    const cell = (k: string) => row.querySelector('.a-' + k)!;
    setText(cell('owner'), j.owner);
    setText(cell('lang'), labelOf(j.language));
    if (cell('status').getAttribute('data-status') !== j.status) {
      cell('status').setAttribute('data-status', j.status);
      fill(cell('status'), badge(j));
    }
    setText(cell('where'), j.status === 'running' ? j.worker ?? '—'
      : j.queue_position ? `#${j.queue_position} in ${j.owner}'s queue` : `in ${j.owner}'s queue`);
    setText(cell('age'), ago(j.created_at));
  };
  async function cancelJob(id: string, owner: string): Promise<void> {
    if (!(await confirmDialog(`Cancel ${owner}'s job ${shortId(id)}?`, 'Cancel job', 'cancel-dialog'))) return;
    try {
      await post<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`);
      toast(`Job ${shortId(id)} cancelled.`, 'info');
      await refresh();
    } catch (e) {
      toast(`Cancel failed: ${(e as Error).message}`);
    }
  }
  const activeEmpty = h('p', { class: 'muted', id: 'active-empty' }, 'No job is queued or running.');

  // --- autoscaler ---------------------------------------------------------------
  const fact = (label: string, id: string) => {
    const dd = h('dd', { id }, '—');
    return { el: h('div', { class: 'fact' }, h('dt', null, label), dd), dd };
  };
  const fProvisioner = fact('Provisioner', 'as-provisioner');
  const fRange = fact('Workers (min–max)', 'as-range');
  const fDesired = fact('Desired', 'as-desired');
  const fActual = fact('Actual', 'as-actual');
  const fIdle = fact('Stop after idle', 'as-idle');
  const fSlots = fact('Slots per worker', 'as-slots');
  const fLangs = fact('Languages', 'as-languages');
  const asPolicy = h('p', { class: 'muted small', id: 'as-policy' });
  const asHeld = h('p', { class: 'warn', id: 'as-held', role: 'status', hidden: true });

  const asWorkersBody = h('tbody');
  const asWorkerRow = (w: AutoscaledWorker) => h('tr', { 'data-auto-worker': w.name },
    h('th', { scope: 'row', class: 'aw-name' }, h('span', { class: 'aw-name-text' }), h('small', { class: 'aw-pid muted', hidden: true })),
    h('td', { class: 'aw-phase', 'data-label': 'Phase' }),
    h('td', { class: 'aw-restarts num', 'data-label': 'Restarts' }),
    h('td', { class: 'aw-started', 'data-label': 'Started' }),
    h('td', { class: 'aw-reason', 'data-label': 'Why' }),
    h('td', { class: 'aw-error', 'data-label': 'Error' }));
  const phaseKind: Record<string, string> = { up: 'good', starting: 'busy', draining: 'busy', stopping: 'muted' };
  const updateAsWorker = (row: HTMLTableRowElement, w: AutoscaledWorker) => {
    const c = (k: string) => row.querySelector('.aw-' + k)!;
    row.dataset.phase = w.phase;
    setText(c('name-text'), w.name);
    const pid = c('pid') as HTMLElement;
    pid.hidden = !w.pid;
    setText(pid, w.pid ? `pid ${w.pid}` : '');
    if (w.log) pid.title = `log: ${w.log}`;
    else pid.removeAttribute('title');
    // The phase is the autoscaler's; the state (restarting, failed), the
    // provisioner's view, is added when it is not plain "running".
    const state = w.state && w.state !== 'running' ? w.state : '';
    const ph = c('phase');
    if (ph.getAttribute('data-phase') !== w.phase + '/' + state) {
      ph.setAttribute('data-phase', w.phase + '/' + state);
      fill(ph, h('span', { class: `badge ${phaseKind[w.phase] ?? 'muted'}` }, w.phase),
        state ? [' ', h('span', { class: `badge ${state === 'failed' ? 'bad' : 'busy'}`, 'data-state': state }, state)] : null);
    }
    setText(c('restarts'), String(w.restarts ?? 0));
    setText(c('started'), ago(w.started_at));
    c('started').setAttribute('title', when(w.started_at));
    setText(c('reason'), w.reason || '—');
    const err = c('error');
    if (err.getAttribute('data-error') !== (w.error ?? '')) {
      err.setAttribute('data-error', w.error ?? '');
      fill(err, w.error ? h('span', { class: 'error err-text', title: w.error }, w.error) : '—');
    }
  };
  const asWorkersEmpty = h('p', { class: 'muted', id: 'as-workers-empty' }, 'The autoscaler runs no worker now.');

  const decisionsBody = h('tbody');
  const actionKind: Record<string, string> = { start: 'good', undrain: 'good', drain: 'busy', hold: 'busy', stop: 'muted', fail: 'bad' };
  const decisionRow = (d: AutoscaleDecision) => h('tr', { 'data-action': d.action },
    h('th', { scope: 'row', class: 'd-time', title: when(d.time) }, clock(d.time)),
    h('td', { class: 'd-action', 'data-label': 'Action' }, h('span', { class: `badge ${actionKind[d.action] ?? 'muted'}` }, d.action)),
    h('td', { class: 'd-worker', 'data-label': 'Worker' }, d.worker || '—'),
    h('td', { class: 'd-reason', 'data-label': 'Reason' }, d.reason || '—'));
  const decisionsEmpty = h('p', { class: 'muted', id: 'as-decisions-empty' }, 'No decision yet.');

  const asSection = h('section', { id: 'autoscaler', class: 'autoscaler', 'aria-labelledby': 'autoscaler-title', hidden: true },
    h('h2', { id: 'autoscaler-title' }, 'Autoscaler'),
    h('div', { class: 'panel as-summary' },
      h('dl', { class: 'facts', id: 'as-facts' }, fProvisioner.el, fRange.el, fDesired.el, fActual.el, fIdle.el, fSlots.el, fLangs.el),
      asPolicy, asHeld),
    h('h3', null, 'Workers it started'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'as-workers', class: 'list cards' },
      h('thead', null, h('tr', null, ['Name', 'Phase', 'Restarts', 'Started', 'Why', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
      asWorkersBody)),
    asWorkersEmpty,
    h('h3', null, `Recent decisions (last ${DECISIONS}, newest first)`),
    h('div', { class: 'table-wrap' }, h('table', { id: 'as-decisions', class: 'list cards' },
      h('thead', null, h('tr', null, ['Time', 'Action', 'Worker', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
      decisionsBody)),
    decisionsEmpty);

  /** Shows the autoscaler's state; a = null (an older master: no such endpoint) or disabled hides the panel. */
  function showAutoscaler(a: Autoscaler | null): void {
    asSection.hidden = !a?.enabled;
    if (!a?.enabled) return;
    const p = a.policy;
    setText(fProvisioner.dd, a.provisioner || '?');
    setText(fRange.dd, p ? `${p.min}–${p.max}` : '—');
    setText(fDesired.dd, String(a.desired));
    setText(fActual.dd, String(a.actual));
    // Fewer (or more) workers than wanted: starts or stops are under way,
    // or held back.
    fActual.el.classList.toggle('behind', a.actual !== a.desired);
    setText(fIdle.dd, p ? duration(p.idle_ms) : '—');
    setText(fSlots.dd, p ? String(p.max_jobs) : '—');
    setText(fLangs.dd, a.languages?.length ? a.languages.map(labelOf).join(', ') : 'any (learned when the first joins)');
    setText(asPolicy, p
      ? `Scales up when a job has waited ${duration(p.wait_ms)} or the queue has exceeded the free slots for ${duration(p.backlog_ms)} `
        + `(${duration(p.up_cooldown_ms)} between scale-ups, at most ${p.max_starts_per_minute} starts a minute); `
        + `scales down no sooner than ${duration(p.down_cooldown_ms)} after a change; a started worker must join within ${duration(p.join_timeout_ms)}.`
      : '');
    const notes = [
      a.held ? `Scale-up held: ${a.held}.` : '',
      a.start_failures ? `${a.start_failures} failed start${a.start_failures > 1 ? 's' : ''} in a row`
        + (a.backoff_until ? `; next start not before ${clock(a.backoff_until)}.` : '.') : '',
    ].filter(Boolean);
    asHeld.hidden = notes.length === 0;
    setText(asHeld, notes.join(' '));
    const ws = a.workers ?? [];
    syncRows(asWorkersBody, ws, (w) => w.name, asWorkerRow, updateAsWorker);
    asWorkersEmpty.hidden = ws.length > 0;
    // Decisions never change once made: a row per decision, keyed by its
    // content (and its rank among equal ones).
    const seen = new Map<string, number>();
    const ds = (a.decisions ?? []).slice(0, DECISIONS);
    const key = (d: AutoscaleDecision) => {
      const k = [d.time, d.action, d.worker ?? '', d.reason].join('\u0000');
      const n = (seen.get(k) ?? 0) + 1;
      seen.set(k, n);
      return k + '#' + n;
    };
    syncRows(decisionsBody, ds, key, decisionRow, (row, d) => {
      const t = row.querySelector('.d-time')!;
      setText(t, clock(d.time)); // "today" may have become yesterday
    });
    decisionsEmpty.hidden = ds.length > 0;
  }

  // --- refresh ------------------------------------------------------------------
  async function refresh(): Promise<void> {
    try {
      const [ws, cl, clients, running, queued, as] = await Promise.all([
        get<{ workers: Worker[] }>('/api/v1/workers'),
        get<Cluster>('/api/v1/cluster'),
        get<{ clients: Client[] }>('/api/v1/clients'),
        get<{ jobs: Job[] }>('/api/v1/jobs?status=running&limit=100'),
        get<{ jobs: Job[] }>('/api/v1/jobs?status=queued&limit=100'),
        // A master older than the autoscaler has no such endpoint: no panel.
        get<Autoscaler>('/api/v1/autoscaler').catch((e) => {
          if (e instanceof ApiError && e.status === 404) return null;
          throw e;
        }),
      ]);
      if (disposed) return;
      const workers = ws.workers.slice().sort((a, b) => a.name.localeCompare(b.name));
      syncRows(workersBody, workers, (w) => w.name, workerRow, updateWorker);
      const by = (s: string) => workers.filter((w) => w.status === s).length;
      setText(cWorkers.value, String(by('up')));
      setText(cWorkers.sub, [
        by('draining') ? `${by('draining')} draining` : '',
        by('unhealthy') ? `${by('unhealthy')} unhealthy` : '',
        by('lost') ? `${by('lost')} lost` : '',
      ].filter(Boolean).join(', ') || `of ${workers.length}`);
      setText(cSlots.value, `${cl.slots_in_use}/${cl.slots}`);
      setText(cSlots.sub, cl.slots ? pct((100 * cl.slots_in_use) / cl.slots) : '');
      setText(cQueue.value, String(cl.queue_depth));
      setText(cRunning.value, String(cl.jobs?.running ?? running.jobs.length));
      setText(cRunning.sub, `${cl.jobs?.done ?? 0} done, ${cl.jobs?.failed ?? 0} failed`);
      setText(cClients.value, String(cl.clients));
      const bare = workers.filter((w) => w.sandbox === 'none' && w.status !== 'lost');
      sandboxWarning.hidden = bare.length === 0;
      setText(sandboxWarning, bare.length
        ? `⚠ No sandbox on ${bare.map((w) => w.name).join(', ')}: programs run there as plain processes that can read and change the worker's files and reach its network. Do not let untrusted users submit jobs to this cluster.`
        : '');
      syncRows(clientsBody, clients.clients, (c) => c.user + '@' + c.address, clientRow, updateClient);
      const active = [...running.jobs, ...queued.jobs];
      syncRows(activeBody, active, (j) => j.id, activeRow, updateActive);
      activeEmpty.hidden = active.length > 0;
      showAutoscaler(as);
      setText(updated, 'updated ' + new Date().toLocaleTimeString());
      updated.classList.remove('error');
    } catch (e) {
      setText(updated, 'not updated: ' + (e as Error).message);
      updated.classList.add('error');
      throw e;
    }
  }

  const activity = activityCharts();

  const el = h('section', { class: 'page dashboard' },
    h('div', { class: 'page-head' }, h('h1', null, 'Cluster'), updated),
    sandboxWarning,
    h('div', { class: 'stats' }, cWorkers.el, cSlots.el, cQueue.el, cRunning.el, cClients.el),
    h('h2', null, 'Workers'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'workers-table', class: 'list cards' },
      h('thead', null, h('tr', null, ['Name', 'Address', 'Status', 'Languages', 'Slots', 'CPU', 'Memory', 'Jobs done', 'Infra failures', 'Last heartbeat', 'Sandbox', ''].map((t) => h('th', { scope: 'col' }, t)))),
      workersBody)),
    asSection,
    activity.el,
    h('h2', null, 'Jobs in flight'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'active-jobs', class: 'list' },
      h('thead', null, h('tr', null, ['Job', 'Owner', 'Language', 'Status', 'Worker / place', 'Submitted', ''].map((t) => h('th', { scope: 'col' }, t)))),
      activeBody)),
    activeEmpty,
    h('h2', null, 'Connected clients'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'clients-table', class: 'list' },
      h('thead', null, h('tr', null, ['User', 'Address', 'Since', 'Last seen', 'Requests', 'Jobs', 'Running', 'Queued'].map((t) => h('th', { scope: 'col' }, t)))),
      clientsBody)));

  return {
    title: 'Dashboard',
    el,
    resume() {
      stops.push(every(REFRESH, refresh));
      activity.start();
      // While the master cannot be reached the tables are not refreshed:
      // say so where their time is.
      const offline = () => {
        setText(updated, 'not updated: the master cannot be reached');
        updated.classList.add('error');
      };
      window.addEventListener('grappe:offline', offline);
      stops.push(() => window.removeEventListener('grappe:offline', offline));
    },
    dispose() {
      disposed = true;
      stops.forEach((s) => s());
      activity.stop();
    },
  };
}
