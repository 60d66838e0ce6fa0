// The audit log (admin): logins and failed logins, users, passwords and
// tokens made or removed, workers drained or revoked; newest first,
// filtered by who, what, text and time, older pages on demand.
import { get, type AuditEntry, type AuditList } from '../api';
import { isAdmin, toast, type Page } from '../app';
import { field, h } from '../dom';
import { clock, when } from '../format';

const PAGE = 50;
const ACTIONS: [string, string][] = [
  ['', 'any action'], ['login', 'logins'], ['login.failed', 'failed logins'], ['user.', 'users and passwords'],
  ['token.', 'API tokens'], ['worker.', 'workers'], ['join-token.rotate', 'join token rotations'],
];
const SINCE: [string, number][] = [['any time', 0], ['last hour', 1], ['last 24 hours', 24], ['last 7 days', 168]];

export function auditPage(): Page {
  if (!isAdmin()) {
    return {
      title: 'Audit log',
      el: h('section', { class: 'page narrow' }, h('h1', null, 'Audit log'), h('p', { id: 'not-admin' }, 'The audit log is for administrators.')),
    };
  }
  const actor = h('input', { id: 'audit-actor', placeholder: 'user name', autocapitalize: 'none', spellcheck: 'false' });
  const action = h('select', { id: 'audit-action' }, ACTIONS.map(([v, label]) => h('option', { value: v }, label)));
  const text = h('input', { id: 'audit-q', type: 'search', placeholder: 'in targets and details' });
  const since = h('select', { id: 'audit-since' }, SINCE.map(([label, hours]) => h('option', { value: String(hours) }, label)));
  const body = h('tbody');
  const empty = h('p', { class: 'muted', id: 'audit-empty', hidden: true }, 'No entry matches.');
  const more = h('button', { type: 'button', id: 'audit-more', class: 'secondary', hidden: true }, 'Older entries');
  let next = 0;
  let generation = 0; // a filter changed: answers to older queries are dropped

  const query = (before: number) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (action.value) q.set('action', action.value);
    if (text.value.trim()) q.set('q', text.value.trim());
    const hours = Number(since.value);
    if (hours) q.set('since', new Date(Date.now() - hours * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'));
    if (before) q.set('before', String(before));
    return '/api/v1/audit?' + q.toString();
  };

  async function load(append: boolean): Promise<void> {
    const gen = append ? generation : ++generation;
    try {
      const list = await get<AuditList>(query(append ? next : 0));
      if (gen !== generation) return;
      const rows = list.entries.map(row);
      if (append) body.append(...rows);
      else body.replaceChildren(...rows);
      next = list.next_before ?? 0;
      more.hidden = !next;
      empty.hidden = body.rows.length > 0;
    } catch (e) {
      toast(`The audit log could not be read: ${(e as Error).message}`);
    }
  }

  let typing = 0;
  const later = () => { clearTimeout(typing); typing = window.setTimeout(() => void load(false), 300); };
  actor.addEventListener('input', later);
  text.addEventListener('input', later);
  action.addEventListener('change', () => void load(false));
  since.addEventListener('change', () => void load(false));
  more.addEventListener('click', () => void load(true));

  const el = h('section', { class: 'page audit' },
    h('div', { class: 'page-head' }, h('h1', null, 'Audit log'),
      h('button', { type: 'button', class: 'secondary small', id: 'audit-refresh', onclick: () => void load(false) }, 'Refresh')),
    h('form', { class: 'filters', id: 'audit-filters', onsubmit: (e: Event) => e.preventDefault() },
      field('Who', actor), field('What', action), field('Text', text), field('When', since)),
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table', class: 'list cards' },
      h('thead', null, h('tr', null, ['Time', 'Who', 'Action', 'On', 'Detail', 'From'].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    empty, more);
  return { title: 'Audit log', el, resume: () => void load(false) };
}

const kinds: Record<string, string> = { 'login.failed': 'bad', 'user.password.failed': 'bad', 'user.remove': 'busy', 'token.revoke': 'busy', 'worker.revoke': 'busy' };

function row(e: AuditEntry): HTMLTableRowElement {
  return h('tr', { 'data-seq': e.seq, 'data-action': e.action },
    h('th', { scope: 'row', class: 'au-time', title: when(e.time) }, clock(e.time)),
    h('td', { class: 'au-actor', 'data-label': 'Who' }, e.actor || '(unknown)'),
    h('td', { class: 'au-action', 'data-label': 'Action' }, h('span', { class: `badge ${kinds[e.action] ?? 'muted'}` }, e.action)),
    h('td', { class: 'au-target', 'data-label': 'On' }, e.target || '—'),
    h('td', { class: 'au-detail', 'data-label': 'Detail' }, e.detail || '—'),
    h('td', { class: 'au-addr', 'data-label': 'From' }, e.addr || '—'));
}
