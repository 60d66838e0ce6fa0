// My jobs: the caller's history (an admin sees everyone's), newest first,
// a page at a time with older pages beyond, searched and filtered by the
// master (language, verdict, status, dates); the page shown refreshes
// itself every two seconds. The filters are in the address, so a filtered
// history can be bookmarked.
import { get, type Job, type JobList, type LanguageList } from '../api';
import { every, isAdmin, type Page } from '../app';
import { field, fill, h, setText, syncRows } from '../dom';
import { ago, between, ms, shortId, verdictName, when } from '../format';
import { labelOf, languages as known } from '../languages';
import { badge } from '../result';

const REFRESH = 2000;
const PAGE = 50;
const VERDICTS = ['ok', 'wrong_answer', 'compile_error', 'runtime_error', 'time_limit', 'memory_limit', 'output_limit'];
const STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'];

/** A date input's day as the start of that day in the reader's zone. */
function dayStart(value: string, next = false): string {
  const d = new Date(value + 'T00:00:00');
  if (next) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

export function jobsPage(): Page {
  const admin = isAdmin();
  const params = new URLSearchParams(location.search);
  const select = (id: string, all: string, values: string[], label: (v: string) => string) =>
    h('select', { id }, h('option', { value: '' }, all), values.map((v) => h('option', { value: v }, label(v))));
  const search = h('input', { id: 'jobs-search', type: 'search', placeholder: 'id, or text of the source or input', spellcheck: 'false', value: params.get('q') ?? '' });
  const status = select('status-filter', 'any', STATUSES, (v) => v);
  const verdict = select('verdict-filter', 'any', VERDICTS, verdictName);
  const language = select('language-filter', 'any', Object.keys(known), labelOf);
  const since = h('input', { id: 'since', type: 'date', value: params.get('since') ?? '' });
  const until = h('input', { id: 'until', type: 'date', value: params.get('until') ?? '' });
  status.value = params.get('status') ?? '';
  verdict.value = params.get('verdict') ?? '';
  const wantLang = params.get('language') ?? '';
  if (wantLang && !known[wantLang]) language.append(h('option', { value: wantLang }, wantLang));
  language.value = wantLang;

  const updated = h('span', { id: 'jobs-updated', class: 'muted small', 'aria-live': 'off' });
  const tbody = h('tbody');
  const empty = h('p', { id: 'jobs-empty', class: 'muted', hidden: true });
  const pageNo = h('span', { id: 'jobs-page', class: 'muted small' });
  const newer = h('button', { id: 'jobs-newer', type: 'button', class: 'secondary small', disabled: true }, '← Newer');
  const older = h('button', { id: 'jobs-older', type: 'button', class: 'secondary small', disabled: true }, 'Older →');
  const cols: [string, string, string][] = [
    ['id', 'Job', ''], ['owner', 'Owner', ''], ['lang', 'Language', ''], ['result', 'Result', ''], ['created', 'Submitted', ''],
    ['wait', 'Queue wait', 'num'], ['wall', 'Run', 'num'], ['cpu', 'CPU', 'num'], ['worker', 'Worker', ''],
  ];
  const cells = cols.filter(([c]) => admin || c !== 'owner');
  const table = h('table', { id: 'jobs-table', class: 'list cards' },
    h('thead', null, h('tr', null, cells.map(([, label, cls]) => h('th', { scope: 'col', class: cls || null }, label)))),
    tbody);

  const create = (j: Job) => {
    const row = h('tr', { 'data-job-id': j.id });
    for (const [c, label, cls] of cells) row.append(h('td', { class: `j-${c}` + (cls ? ' ' + cls : ''), 'data-label': label }));
    fill(row.querySelector('.j-id')!, h('a', { href: `/jobs/${encodeURIComponent(j.id)}`, title: j.id }, h('code', null, shortId(j.id))));
    return row;
  };
  const update = (row: HTMLTableRowElement, j: Job) => {
    const cell = (c: string) => row.querySelector(`.j-${c}`)!;
    row.dataset.status = j.status;
    if (admin) setText(cell('owner'), j.owner);
    setText(cell('lang'), labelOf(j.language) + (j.version ? ' ' + j.version : ''));
    const r = cell('result');
    if (r.getAttribute('data-s') !== j.status + j.verdict) {
      r.setAttribute('data-s', j.status + j.verdict);
      fill(r, badge(j), j.status === 'failed' && j.error ? h('span', { class: 'muted small err-text', title: j.error }, ' ' + j.error) : null);
    }
    setText(cell('created'), ago(j.created_at));
    cell('created').setAttribute('title', when(j.created_at));
    setText(cell('wait'), j.started_at ? ms(between(j.created_at, j.started_at)) : j.status === 'queued' ? (j.queue_position ? `#${j.queue_position}` : 'queued') : '—');
    setText(cell('wall'), j.run ? ms(j.run.wall_ms) : '—');
    setText(cell('cpu'), j.run ? ms(j.run.cpu_ms) : '—');
    setText(cell('worker'), j.worker ?? '—');
  };

  // The cursors of the pages seen: cursors[i] is the `before` of page i.
  let cursors = [''];
  let next = '';
  const query = (): URLSearchParams => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const v = search.value.trim();
    if (v) q.set('q', v);
    if (status.value) q.set('status', status.value);
    if (verdict.value) q.set('verdict', verdict.value);
    if (language.value) q.set('language', language.value);
    if (since.value) q.set('since', dayStart(since.value));
    if (until.value) q.set('until', dayStart(until.value, true));
    return q;
  };

  // The filters in force: read from the form when they change, so that a
  // refresh between two keystrokes does not apply half a search.
  let applied = query();
  const filtered = () => [...applied.keys()].some((k) => k !== 'limit');
  const refresh = async () => {
    const q = new URLSearchParams(applied);
    const before = cursors[cursors.length - 1];
    if (before) q.set('before', before);
    try {
      const list = await get<JobList>('/api/v1/jobs?' + q);
      syncRows(tbody, list.jobs, (j) => j.id, create, update);
      next = list.next ?? '';
      older.disabled = !next;
      newer.disabled = cursors.length === 1;
      setText(pageNo, cursors.length > 1 || next ? `page ${cursors.length}` : '');
      empty.hidden = list.jobs.length > 0;
      empty.textContent = filtered() ? 'No job matches these filters.' : 'No jobs yet: run a program from the editor.';
      setText(updated, 'updated ' + new Date().toLocaleTimeString());
      updated.classList.remove('error');
    } catch (e) {
      setText(updated, 'not updated: ' + (e as Error).message);
      updated.classList.add('error');
    }
  };
  const restart = () => {
    applied = query();
    cursors = [''];
    tbody.replaceChildren();
    // The filters go into the address (without the page: a bookmark opens the newest).
    const keep = new URLSearchParams();
    for (const [k, el] of [['q', search], ['status', status], ['verdict', verdict], ['language', language], ['since', since], ['until', until]] as const) {
      if (el.value.trim()) keep.set(k, el.value.trim());
    }
    history.replaceState(null, '', '/jobs' + (keep.size ? '?' + keep : ''));
    void refresh();
  };
  let typing = 0;
  search.addEventListener('input', () => { clearTimeout(typing); typing = window.setTimeout(restart, 300); });
  for (const el of [status, verdict, language, since, until]) el.addEventListener('change', restart);
  older.addEventListener('click', () => { if (next) { cursors.push(next); tbody.replaceChildren(); void refresh(); } });
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); tbody.replaceChildren(); void refresh(); } });
  const clear = h('button', { id: 'jobs-clear', type: 'button', class: 'secondary small', onclick: () => {
    search.value = status.value = verdict.value = language.value = since.value = until.value = '';
    restart();
  } }, 'Clear filters');

  // The languages the cluster runs now join the list (a history may hold others).
  void get<LanguageList>('/api/v1/languages').then((l) => {
    for (const lang of l.languages) {
      if (!language.querySelector(`option[value="${CSS.escape(lang.name)}"]`)) language.append(h('option', { value: lang.name }, labelOf(lang.name)));
    }
  }).catch(() => { /* the catalogue's names remain */ });

  let stop = () => {};
  return {
    title: 'My jobs',
    el: h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', null, admin ? 'Jobs (all users)' : 'My jobs'), updated),
      h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the jobs', onsubmit: (e: Event) => { e.preventDefault(); restart(); } },
        field('Search', search), field('Language', language), field('Verdict', verdict), field('Status', status),
        field('From', since), field('To', until), clear),
      h('div', { class: 'table-wrap' }, table),
      empty,
      h('div', { class: 'pager' }, newer, pageNo, older)),
    resume() { stop = every(REFRESH, refresh); },
    dispose() { stop(); clearTimeout(typing); },
  };
}
