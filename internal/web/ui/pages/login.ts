// The login page: user name and password → POST /api/v1/session, which
// sets the session cookie (HttpOnly) and returns the CSRF token; or an
// API token → POST /api/v1/session/token, the same session. A one-time
// sign-in link (`grappe up` prints it) goes through signInWithLink.
import { api, ApiError, type Session } from '../api';
import type { Page } from '../app';
import { field, h } from '../dom';

/** Why the last sign-in link failed, shown once by the next login page. */
let linkError = '';

/** Exchanges a sign-in link's secret for a session; null if refused. */
export async function signInWithLink(secret: string): Promise<Session | null> {
  try {
    return await api<Session>('POST', '/api/v1/session/token', { token: secret }, { quiet401: true });
  } catch (err) {
    const e = err as ApiError;
    linkError = e.status === 401
      ? 'This sign-in link was used already or has expired. Restarting grappe up prints a new one; or log in below.'
      : `The sign-in link did not work: ${describe(e)}`;
    return null;
  }
}

function describe(e: ApiError): string {
  return e.status === 401 ? 'Wrong user name or password.'
    : e.status === 0 ? 'The master cannot be reached.'
    : e.status === 429 ? 'Too many attempts; wait a moment and try again.'
    : e.message;
}

export function loginPage(next: string, signedIn: (s: Session, next: string) => void): Page {
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { id: 'login-submit', type: 'submit' }, 'Log in');
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' }, linkError);
  linkError = '';

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
      error.textContent = describe(err as ApiError);
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });

  // An API token (the admin-token file, a token made in the settings)
  // opens a session too: the first admin needs no password.
  const token = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const tokenSubmit = h('button', { id: 'login-token-submit', type: 'submit', class: 'secondary' }, 'Log in with the token');
  const tokenError = h('p', { id: 'login-token-error', class: 'error', role: 'alert' });
  const tokenForm = h('form', { id: 'login-token-form' },
    field('API token', token, 'For example the admin-token file of the master\'s data directory.'),
    tokenSubmit, tokenError);
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    tokenError.textContent = '';
    tokenSubmit.disabled = true;
    try {
      const s = await api<Session>('POST', '/api/v1/session/token', { token: token.value.trim() }, { quiet401: true });
      signedIn(s, next);
    } catch (err) {
      const e = err as ApiError;
      tokenError.textContent = e.status === 401 ? 'This token is not valid (revoked or expired).' : describe(e);
      token.select();
    } finally {
      tokenSubmit.disabled = false;
    }
  });
  const withToken = h('details', { class: 'card login login-alt', id: 'login-with-token' },
    h('summary', null, 'Log in with an API token instead'), tokenForm);

  return {
    title: 'Log in',
    el: h('section', { class: 'page login-page' }, h('div', { class: 'login-stack' }, form, withToken)),
    resume: () => user.focus(),
  };
}
