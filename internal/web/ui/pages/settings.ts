// A user's own settings: their password (the current one asked), their
// API tokens, and what they may use (quotas and job limits).
import { api, ApiError, get, put, setCSRF, type Account, type Limits, type Session } from '../api';
import { state, toast, type Page } from '../app';
import { field, fill, h } from '../dom';
import { duration, kb } from '../format';
import { tokenPanel } from '../tokens';

export function settingsPage(): Page {
  const me = state.session!.username;
  const facts = h('dl', { class: 'facts', id: 'account-facts' });
  const limits = h('div', { class: 'table-wrap' });

  // --- password ---------------------------------------------------------------
  const current = h('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = h('input', { id: 'pw-again', type: 'password', autocomplete: 'new-password', required: true });
  const save = h('button', { type: 'submit', id: 'pw-save' }, 'Change password');
  const pwError = h('p', { id: 'pw-error', class: 'error', role: 'alert' });
  const pwForm = h('form', { id: 'password-form', class: 'panel narrow-form' },
    field('Current password', current), field('New password', next, 'At least 8 characters.'), field('New password again', again), save, pwError);
  pwForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    pwError.textContent = '';
    if (next.value !== again.value) {
      pwError.textContent = 'The two new passwords differ.';
      again.select();
      return;
    }
    save.disabled = true;
    try {
      await put(`/api/v1/users/${encodeURIComponent(me)}/password`, { password: next.value, current_password: current.value });
      // The change ended every login session of the user, this one too:
      // open a new one with the new password, so the page stays usable.
      const s = await api<Session>('POST', '/api/v1/session', { username: me, password: next.value }, { quiet401: true });
      state.session = s;
      setCSRF(s.csrf_token);
      pwForm.reset();
      toast('Password changed. Your other login sessions were ended; your API tokens still work.', 'info');
    } catch (err) {
      const e = err as ApiError;
      pwError.textContent = e.status === 403 ? 'The current password is wrong.' : e.message;
      (e.status === 403 ? current : next).select();
    } finally {
      save.disabled = false;
    }
  });

  const tokens = tokenPanel('/api/v1/tokens', 'my-tokens', 'yours');

  async function load(): Promise<void> {
    try {
      const a = await get<Account>('/api/v1/account');
      const fact = (label: string, id: string, value: string) => h('div', { class: 'fact' }, h('dt', null, label), h('dd', { id }, value));
      fill(facts,
        fact('User', 'acc-user', a.username),
        fact('Role', 'acc-role', a.role),
        fact('Jobs waiting', 'acc-queued', `${a.jobs_queued} of at most ${a.max_queued_jobs.toLocaleString()}`),
        fact('Jobs running', 'acc-running', String(a.jobs_running)),
        fact('Jobs in all', 'acc-total', a.jobs_total.toLocaleString()),
        fact('API requests', 'acc-rate', `${a.requests_per_second.toLocaleString()}/s (bursts of ${a.burst.toLocaleString()})`));
      fill(limits, limitsTable(a.default_limits, a.max_limits));
    } catch (e) {
      fill(facts, h('p', { class: 'error' }, `Your account could not be read: ${(e as Error).message}`));
    }
    await tokens.load().catch((e) => toast(`Your tokens could not be read: ${(e as Error).message}`));
  }

  const el = h('section', { class: 'page settings' },
    h('h1', null, 'Settings'),
    h('h2', null, 'Account and quotas'), facts,
    h('h3', null, 'Limits of one job'), limits,
    h('h2', null, 'Password'), pwForm,
    h('h2', null, 'API tokens'),
    h('p', { class: 'muted small' }, 'A token lets a program (the grappe CLI, a script, CI) act as you. Revoke one you no longer use.'),
    tokens.el);
  return { title: 'Settings', el, resume: () => void load() };
}

/** Each limit of a job: its default and its maximum. */
function limitsTable(def: Limits, max: Limits): HTMLElement {
  const rows: [string, (l: Limits) => string][] = [
    ['CPU time', (l) => (l.cpu_ms ? duration(l.cpu_ms) : '—')],
    ['Wall time', (l) => (l.wall_ms ? duration(l.wall_ms) : '—')],
    ['Memory', (l) => (l.memory_mb ? kb(l.memory_mb * 1024) : '—')],
    ['Processes', (l) => (l.processes ? String(l.processes) : '—')],
    ['Output', (l) => (l.output_kb ? kb(l.output_kb) : '—')],
  ];
  return h('table', { class: 'list', id: 'limits-table' },
    h('thead', null, h('tr', null, ['Limit', 'Default', 'Maximum'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows.map(([name, f]) => h('tr', { 'data-limit': name }, h('th', { scope: 'row' }, name), h('td', { class: 'l-default' }, f(def)), h('td', { class: 'l-max' }, f(max))))));
}
