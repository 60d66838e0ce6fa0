// Users (admin): who may use the cluster, with their role; create a user,
// reset a password, manage a user's API tokens, remove a user.
import { ApiError, del, get, post, put, type User } from '../api';
import { confirmDialog, isAdmin, state, toast, type Page } from '../app';
import { field, fill, h } from '../dom';
import { when } from '../format';
import { tokenPanel } from '../tokens';

export function usersPage(): Page {
  if (!isAdmin()) {
    return {
      title: 'Users',
      el: h('section', { class: 'page narrow' }, h('h1', null, 'Users'), h('p', { id: 'not-admin' }, 'Managing users is for administrators.')),
    };
  }
  const body = h('tbody');
  const tokensBox = h('section', { id: 'user-tokens', class: 'panel', hidden: true });

  // --- create --------------------------------------------------------------------
  const name = h('input', { id: 'new-user-name', required: true, maxlength: 64, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { id: 'new-user-password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const role = h('select', { id: 'new-user-role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const add = h('button', { type: 'submit', id: 'new-user-submit' }, 'Create user');
  const addError = h('p', { id: 'new-user-error', class: 'error', role: 'alert' });
  const form = h('form', { id: 'new-user-form', class: 'panel inline-form' },
    field('User name', name), field('Password', pass, 'At least 8 characters; tell it to the user.'), field('Role', role), add, addError);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    addError.textContent = '';
    add.disabled = true;
    try {
      await post<User>('/api/v1/users', { username: name.value.trim(), password: pass.value, role: role.value });
      toast(`User ${name.value.trim()} created.`, 'info');
      form.reset();
      await load();
    } catch (err) {
      const e = err as ApiError;
      addError.textContent = e.status === 409 ? 'A user of that name exists already.' : e.message;
    } finally {
      add.disabled = false;
    }
  });

  function row(u: User): HTMLTableRowElement {
    const self = u.username === state.session?.username;
    const reset = h('button', { type: 'button', class: 'secondary small reset-password', 'aria-label': `Reset the password of ${u.username}` }, 'Reset password');
    reset.addEventListener('click', () => void resetPassword(u.username));
    const tokens = h('button', { type: 'button', class: 'secondary small user-tokens', 'aria-label': `API tokens of ${u.username}` }, 'Tokens');
    tokens.addEventListener('click', () => void showTokens(u.username));
    const remove = h('button', { type: 'button', class: 'danger small remove-user', 'aria-label': `Remove ${u.username}`, disabled: self,
      title: self ? 'You cannot remove yourself' : null }, 'Remove');
    remove.addEventListener('click', () => void removeUser(u.username));
    return h('tr', { 'data-user': u.username },
      h('th', { scope: 'row', class: 'u-name' }, u.username),
      h('td', { class: 'u-role', 'data-label': 'Role' }, h('span', { class: `badge ${u.role === 'admin' ? 'busy' : 'muted'}` }, u.role)),
      h('td', { class: 'u-created', 'data-label': 'Created' }, when(u.created_at)),
      h('td', { class: 'u-actions' }, h('div', { class: 'group' }, reset, tokens, remove)));
  }

  async function load(): Promise<void> {
    const { users } = await get<{ users: User[] }>('/api/v1/users');
    body.replaceChildren(...users.map(row));
  }

  async function resetPassword(user: string): Promise<void> {
    const pw = await passwordDialog(user);
    if (pw === null) return;
    try {
      await put(`/api/v1/users/${encodeURIComponent(user)}/password`, { password: pw });
      toast(`Password of ${user} reset; their login sessions were ended.`, 'info');
    } catch (e) {
      toast(`Reset failed: ${(e as Error).message}`);
    }
  }

  async function removeUser(user: string): Promise<void> {
    if (!(await confirmDialog(`Remove ${user}? Their tokens stop working; their jobs stay.`, 'Remove', 'remove-user-dialog'))) return;
    try {
      await del(`/api/v1/users/${encodeURIComponent(user)}`);
      toast(`User ${user} removed.`, 'info');
      if (tokensBox.dataset.user === user) tokensBox.hidden = true;
      await load();
    } catch (e) {
      toast(`Remove failed: ${(e as Error).message}`);
    }
  }

  async function showTokens(user: string): Promise<void> {
    const panel = tokenPanel(`/api/v1/users/${encodeURIComponent(user)}/tokens`, 'user-tokens-panel', user);
    tokensBox.dataset.user = user;
    fill(tokensBox, h('h2', { id: 'user-tokens-title' }, `API tokens of ${user}`), panel.el);
    tokensBox.hidden = false;
    try {
      await panel.load();
      tokensBox.scrollIntoView({ block: 'nearest' });
    } catch (e) {
      toast(`The tokens of ${user} could not be read: ${(e as Error).message}`);
    }
  }

  const el = h('section', { class: 'page users' },
    h('h1', null, 'Users'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'users-table', class: 'list cards' },
      h('thead', null, h('tr', null, ['User', 'Role', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    tokensBox,
    h('h2', null, 'New user'), form);
  return { title: 'Users', el, resume: () => void load().catch((e) => toast(`Users could not be read: ${(e as Error).message}`)) };
}

/** Asks for a new password for user; null when cancelled. */
function passwordDialog(user: string): Promise<string | null> {
  return new Promise((resolve) => {
    const input = h('input', { id: 'reset-password-input', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
    const dlg = h('dialog', { id: 'reset-dialog', class: 'dialog', 'aria-labelledby': 'reset-dialog-text' });
    const done = (v: string | null) => { dlg.close(); dlg.remove(); resolve(v); };
    const form = h('form', { method: 'dialog' },
      h('p', { id: 'reset-dialog-text' }, `New password for ${user}`),
      field('Password', input, 'At least 8 characters. Their login sessions end; their API tokens keep working.'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'reset-dialog-cancel', class: 'secondary', onclick: () => done(null) }, 'Cancel'),
        h('button', { type: 'submit', id: 'reset-dialog-ok' }, 'Set password')));
    form.addEventListener('submit', (e) => { e.preventDefault(); if (input.reportValidity()) done(input.value); });
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(null); });
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}
