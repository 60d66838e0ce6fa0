// The login page: user name and password → POST /api/v1/session, which
// sets the session cookie (HttpOnly) and returns the CSRF token.
import { api, ApiError, type Session } from '../api';
import type { Page } from '../app';
import { field, h } from '../dom';

export function loginPage(next: string, signedIn: (s: Session, next: string) => void): Page {
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { id: 'login-submit', type: 'submit' }, 'Log in');
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' });

  const form = h('form', { id: 'login-form', class: 'card login', novalidate: false },
    h('h1', null, 'Log in to grappe'),
    field('User name', user),
    field('Password', pass),
    submit,
    error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    try {
      const s = await api<Session>('POST', '/api/v1/session', { username: user.value.trim(), password: pass.value }, { quiet401: true });
      signedIn(s, next);
    } catch (err) {
      const e = err as ApiError;
      error.textContent =
        e.status === 401 ? 'Wrong user name or password.'
        : e.status === 0 ? 'The master cannot be reached.'
        : e.status === 429 ? 'Too many attempts; wait a moment and try again.'
        : e.message;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  return {
    title: 'Log in',
    el: h('section', { class: 'page login-page' }, form),
    resume: () => user.focus(),
  };
}
