// Entry point: the page frame (header, navigation, connection indicator,
// logout), the session check and the client-side router.
import './style.css';
import { api, ApiError, handleUnauthorized, handleUnreachable, setCSRF, type Session } from './api';
import { watchConnection } from './banner';
import { confirmDialog, isAdmin, setNavigator, state, toast, type Page } from './app';
import { fill, h } from './dom';
import { loginPage, signInWithLink } from './pages/login';
import { editorPage, forgetEditor } from './pages/editor';
import { jobsPage } from './pages/jobs';
import { jobPage, sharedJobPage } from './pages/job';
import { dashboardPage } from './pages/dashboard';
import { applyPrefs, loadPrefs } from './prefs';
import { settingsPage } from './pages/settings';
import { usersPage } from './pages/users';
import { auditPage } from './pages/audit';

const main = h('main', { id: 'main', tabindex: '-1' });
const nav = h('nav', { id: 'nav', 'aria-label': 'Main' });
const who = h('div', { class: 'who' });
const conn = watchConnection();

let current: { path: string; page: Page } | null = null;

function frame(): void {
  document.body.append(
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '/' }, h('img', { src: '/favicon.svg', alt: '', width: 22, height: 22 }), 'grappe'),
      nav, conn.indicator, who),
    conn.banner,
    main,
    h('div', { id: 'toasts', class: 'toasts', role: 'alert', 'aria-live': 'assertive' }));
}

function renderHeader(path: string): void {
  const s = state.session;
  const link = (href: string, label: string, id: string) => {
    const active = href === '/' ? path === '/' : path === href || path.startsWith(href + '/');
    return h('a', { href, id, 'aria-current': active ? 'page' : null }, label);
  };
  fill(nav, s ? [
    link('/', 'Editor', 'nav-editor'),
    link('/jobs', 'My jobs', 'nav-jobs'),
    isAdmin() ? link('/dashboard', 'Dashboard', 'nav-dashboard') : null,
    isAdmin() ? link('/users', 'Users', 'nav-users') : null,
    isAdmin() ? link('/audit', 'Audit log', 'nav-audit') : null,
  ] : []);
  fill(who, s ? [
    h('a', { id: 'whoami', class: 'muted', href: '/settings', title: 'Your settings: password, API tokens, quotas' },
      s.username + (s.role === 'admin' ? ' (admin)' : '')),
    h('button', { type: 'button', id: 'logout', class: 'secondary small', onclick: logout }, 'Log out'),
  ] : []);
}

async function logout(): Promise<void> {
  if (!(await confirmDialog('Log out of grappe?', 'Log out', 'logout-dialog'))) return;
  try {
    await api('DELETE', '/api/v1/session', undefined, { quiet401: true });
  } catch (e) {
    // A session that is already gone is as good as logged out.
    if (!(e instanceof ApiError && e.status === 401)) {
      toast(`Logout failed: ${(e as Error).message}`);
      return;
    }
  }
  signedOut();
}

function signedOut(): void {
  state.session = null;
  setCSRF('');
  // The readable CSRF cookie says "a session may exist" to the next page
  // load (see boot): a session that ended takes it along.
  document.cookie = 'grappe_csrf=; Max-Age=0; Path=/; Secure; SameSite=Strict';
  forgetEditor();
  go('/login', true);
}

/** Called by the login page. */
export function signedIn(s: Session, next: string): void {
  state.session = s;
  setCSRF(s.csrf_token);
  go(next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
}

/** A shared job's read-only page: public, with or without a session. */
const sharedPath = /^\/shared\/([A-Za-z0-9_-]+)$/;

function route(path: string, search: URLSearchParams): Page {
  const shared = path.match(sharedPath);
  if (shared) return sharedJobPage(shared[1]);
  if (path === '/login') return loginPage(search.get('next') ?? '/', signedIn);
  if (path === '/') return editorPage();
  if (path === '/jobs') return jobsPage();
  const m = path.match(/^\/jobs\/([^/]+)$/);
  if (m) return jobPage(decodeURIComponent(m[1]));
  if (path === '/dashboard') return dashboardPage();
  if (path === '/settings') return settingsPage();
  if (path === '/users') return usersPage();
  if (path === '/audit') return auditPage();
  return {
    title: 'Not found',
    el: h('section', { class: 'page narrow' }, h('h1', null, 'Not found'),
      h('p', null, 'There is no page at ', h('code', null, path), '. ', h('a', { href: '/' }, 'Back to the editor'), '.')),
  };
}

function render(): void {
  const path = location.pathname;
  if (!state.session && path !== '/login' && !sharedPath.test(path)) {
    const next = path + location.search;
    history.replaceState(null, '', '/login' + (next !== '/' ? '?next=' + encodeURIComponent(next) : ''));
    return render();
  }
  if (state.session && path === '/login') {
    history.replaceState(null, '', '/');
    return render();
  }
  current?.page.dispose?.();
  const page = route(path, new URLSearchParams(location.search));
  current = { path, page };
  renderHeader(path);
  document.title = page.title ? `${page.title} · grappe` : 'grappe';
  fill(main, page.el);
  page.resume?.();
}

function go(path: string, replace: boolean): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
  window.scrollTo(0, 0);
}

// Links inside the app navigate without reloading.
document.addEventListener('click', (e) => {
  const a = (e.target as Element | null)?.closest?.('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  if (a.origin !== location.origin || a.target || a.hasAttribute('download') || a.getAttribute('href')?.startsWith('#')) return;
  e.preventDefault();
  go(a.pathname + a.search, false);
});
window.addEventListener('popstate', render);

async function boot(): Promise<void> {
  applyPrefs(loadPrefs());
  frame();
  setNavigator(go);
  handleUnreachable(() => conn.suspect());
  handleUnauthorized(() => {
    if (state.session) toast('Your session has ended; please log in again.', 'info');
    signedOut();
  });
  // A one-time sign-in link (#/signin/SECRET): the secret is read and
  // wiped from the address bar before anything else, then exchanged for a
  // session. The fragment never went to the server.
  const link = location.hash.match(/^#\/signin\/([A-Za-z0-9_-]+)$/);
  if (link) {
    history.replaceState(null, '', location.pathname + location.search);
    const s = await signInWithLink(link[1]);
    if (s) {
      state.session = s;
      setCSRF(s.csrf_token);
      render();
      toast(`Signed in as ${s.username}. Set up users and tokens under Users, your own under ${s.username} (top right).`, 'info');
      return;
    }
  }
  // Who is logged in? A master that cannot be reached yet is retried
  // (backing off like the banner): the page comes up as soon as it answers.
  // Without the CSRF cookie, which comes and goes with the session's,
  // there is no session to ask about: no 401 on every fresh page load.
  const maybe = /(?:^|;\s*)grappe_csrf=[^;]/.test(document.cookie);
  for (let wait = 1000; maybe; wait = Math.min(10_000, wait * 2)) {
    try {
      const s = await api<Session>('GET', '/api/v1/session', undefined, { quiet401: true });
      state.session = s;
      setCSRF(s.csrf_token);
      break;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 0 && e.status < 500) break; // not logged in
      fill(main, h('section', { class: 'page narrow' }, h('h1', null, 'Connecting…'),
        h('p', null, 'The master cannot be reached. Retrying…')));
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  render();
}

void boot();
