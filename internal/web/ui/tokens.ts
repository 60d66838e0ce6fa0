// A list of API tokens with their creation and revocation: the user's own
// (settings, /api/v1/tokens) or, for an admin, any user's
// (/api/v1/users/NAME/tokens). A new token's secret is shown once, with a
// copy button: the master keeps only its hash.
import { del, get, post, type APIToken } from './api';
import { confirmDialog, toast } from './app';
import { field, fill, h } from './dom';
import { when } from './format';

const EXPIRIES: [string, number][] = [['never', 0], ['in 30 days', 30], ['in 90 days', 90], ['in a year', 365]];

/** The token panel over base (…/tokens); idp prefixes element ids. */
export function tokenPanel(base: string, idp: string, whose: string): { el: HTMLElement; load(): Promise<void> } {
  const body = h('tbody');
  const empty = h('p', { class: 'muted', id: `${idp}-empty`, hidden: true }, 'No token.');
  const name = h('input', { id: `${idp}-name`, maxlength: 128, required: true, placeholder: 'what it is for, e.g. ci' });
  const expiry = h('select', { id: `${idp}-expiry` }, EXPIRIES.map(([label, days]) => h('option', { value: String(days) }, label)));
  const create = h('button', { type: 'submit', id: `${idp}-create` }, 'Create token');
  const created = h('div', { id: `${idp}-created`, class: 'new-secret', hidden: true, role: 'status' });
  const form = h('form', { class: 'inline-form', id: `${idp}-form` }, field('Name', name), field('Expires', expiry), create);

  async function load(): Promise<void> {
    const { tokens } = await get<{ tokens: APIToken[] }>(base);
    body.replaceChildren(...tokens.map(row));
    empty.hidden = tokens.length > 0;
  }

  function row(t: APIToken): HTMLTableRowElement {
    const revoke = h('button', { type: 'button', class: 'danger small revoke-token', 'aria-label': `Revoke token ${t.name || t.id}` }, 'Revoke');
    revoke.addEventListener('click', () => void revokeToken(t));
    // A login session's token is not one anybody made: say which it is.
    const kind = t.kind === 'login' ? 'login session' : 'API token';
    return h('tr', { 'data-token-id': t.id, 'data-token-name': t.name },
      h('th', { scope: 'row', class: 't-name' }, t.name || '—'),
      h('td', { class: 't-kind', 'data-label': 'Kind' }, kind),
      h('td', { class: 't-created', 'data-label': 'Created' }, when(t.created_at)),
      h('td', { class: 't-expires', 'data-label': 'Expires' }, t.expires_at ? when(t.expires_at) : 'never'),
      h('td', { class: 't-actions' }, revoke));
  }

  async function revokeToken(t: APIToken): Promise<void> {
    const what = t.kind === 'login' ? `the login session "${t.name}"` : `the token "${t.name || t.id}"`;
    if (!(await confirmDialog(`Revoke ${what} of ${whose}? Whatever uses it stops working at once.`, 'Revoke', 'revoke-dialog'))) return;
    try {
      await del(`${base}/${encodeURIComponent(t.id)}`);
      toast(`Token "${t.name || t.id}" revoked.`, 'info');
      await load();
    } catch (e) {
      toast(`Revoke failed: ${(e as Error).message}`);
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    create.disabled = true;
    try {
      const days = Number(expiry.value);
      const t = await post<APIToken>(base, {
        name: name.value.trim(),
        expires_at: days ? new Date(Date.now() + days * 86_400_000).toISOString() : undefined,
      });
      const secret = h('code', { id: `${idp}-secret`, class: 'secret' }, t.token ?? '');
      const copy = h('button', { type: 'button', class: 'secondary small', id: `${idp}-copy` }, 'Copy');
      copy.addEventListener('click', () => {
        void navigator.clipboard?.writeText(t.token ?? '').then(() => toast('Token copied.', 'info'), () => toast('Copy failed: select the token and copy it.'));
      });
      created.hidden = false;
      fill(created,
        h('p', null, h('strong', null, `Token "${t.name}" created. `), 'Copy it now: it is shown only once.'),
        h('div', { class: 'secret-line' }, secret, copy),
        h('p', { class: 'muted small' }, 'Use it as: ', h('code', null, 'Authorization: Bearer …'), ' or ', h('code', null, 'GRAPPE_TOKEN=…')));
      name.value = '';
      await load();
    } catch (err) {
      toast(`Creating the token failed: ${(err as Error).message}`);
    } finally {
      create.disabled = false;
    }
  });

  const el = h('div', { class: 'tokens', id: idp },
    h('div', { class: 'table-wrap' }, h('table', { class: 'list cards', id: `${idp}-table` },
      h('thead', null, h('tr', null, ['Name', 'Kind', 'Created', 'Expires', ''].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    empty, created, form);
  return { el, load };
}
