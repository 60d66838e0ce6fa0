// My jobs: the caller's jobs, newest first (an admin sees everyone's),
// refreshed every two seconds.
import { get, type Job } from '../api';
import { every, isAdmin, type Page } from '../app';
import { fill, h, setText, syncRows } from '../dom';
import { ago, between, ms, shortId, when } from '../format';
import { labelOf } from '../languages';
import { badge } from '../result';

const REFRESH = 2000;

export function jobsPage(): Page {
  const admin = isAdmin();
  const filter = h('select', { id: 'status-filter' },
    ['', 'queued', 'running', 'done', 'failed', 'cancelled'].map((s) => h('option', { value: s }, s || 'all')));
  const updated = h('span', { id: 'jobs-updated', class: 'muted small', 'aria-live': 'off' });
  const tbody = h('tbody');
  const empty = h('p', { id: 'jobs-empty', class: 'muted', hidden: true });
  const table = h('table', { id: 'jobs-table', class: 'list' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Job'),
      admin ? h('th', { scope: 'col' }, 'Owner') : null,
      h('th', { scope: 'col' }, 'Language'),
      h('th', { scope: 'col' }, 'Result'),
      h('th', { scope: 'col' }, 'Submitted'),
      h('th', { scope: 'col', class: 'num' }, 'Queue wait'),
      h('th', { scope: 'col', class: 'num' }, 'Run'),
      h('th', { scope: 'col', class: 'num' }, 'CPU'),
      h('th', { scope: 'col' }, 'Worker'))),
    tbody);

  const cells = ['id', admin ? 'owner' : '', 'lang', 'result', 'created', 'wait', 'wall', 'cpu', 'worker'].filter(Boolean);
  const create = (j: Job) => {
    const row = h('tr', { 'data-job-id': j.id });
    for (const c of cells) row.append(h('td', { class: `j-${c}` + (['wait', 'wall', 'cpu'].includes(c) ? ' num' : '') }));
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

  const refresh = async () => {
    const q = new URLSearchParams({ limit: '100' });
    if (filter.value) q.set('status', filter.value);
    try {
      const { jobs } = await get<{ jobs: Job[] }>('/api/v1/jobs?' + q);
      syncRows(tbody, jobs, (j) => j.id, create, update);
      empty.hidden = jobs.length > 0;
      empty.textContent = filter.value ? `No ${filter.value} jobs.` : 'No jobs yet: run a program from the editor.';
      setText(updated, 'updated ' + new Date().toLocaleTimeString());
      updated.classList.remove('error');
    } catch (e) {
      setText(updated, 'not updated: ' + (e as Error).message);
      updated.classList.add('error');
    }
  };
  let stop = () => {};
  filter.addEventListener('change', () => { tbody.replaceChildren(); void refresh(); });

  return {
    title: 'My jobs',
    el: h('section', { class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', null, admin ? 'Jobs (all users)' : 'My jobs'),
        h('div', { class: 'group' }, h('label', { for: 'status-filter', class: 'inline' }, 'Status'), filter, updated)),
      h('div', { class: 'table-wrap' }, table),
      empty),
    resume() { stop = every(REFRESH, refresh); },
    dispose() { stop(); },
  };
}
