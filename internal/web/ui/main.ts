// Entry point: the page frame (header, navigation, connection indicator,
// logout), the session check and the client-side router.
import './style.css';
import { api, ApiError, handleUnauthorized, setCSRF, type Session } from './api';
import { confirmDialog, isAdmin, setNavigator, state, toast, type Page } from './app';
import { fill, h } from './dom';
import { loginPage } from './pages/login';
import { editorPage, forgetEditor } from './pages/editor';
import { jobsPage } from './pages/jobs';
import { jobPage, sharedJobPage } from './pages/job';
import { dashboardPage } from './pages/dashboard';
import { applyPrefs, loadPrefs } from './prefs';

const HEALTH_EVERY = 2000; // ms between two /healthz checks
const HEALTH_TIMEOUT = 1500; // a check slower than this counts as a failure

const main = h('main', { id: 'main', tabindex: '-1' });
const nav = h('nav', { id: 'nav', 'aria-label': 'Main' });
const who = h('div', { class: 'who' });
const conn = h('span', { id: 'conn', class: 'conn', role: 'status', 'aria-live': 'polite', 'data-state': 'unknown' },
  h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'conn-text' }, 'connecting…'));

let current: { path: string; page: Page } | null = null;

function frame(): void {
  document.body.append(
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '/' }, h('img', { src: '/favicon.svg', alt: '', width: 22, height: 22 }), 'grappe'),
      nav, conn, who),
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
  ] : []);
  fill(who, s ? [
    h('span', { id: 'whoami', class: 'muted' }, s.username + (s.role === 'admin' ? ' (admin)' : '')),
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

/**
 * The connection indicator: green while /healthz answers, red as soon as
 * one check fails or takes longer than HEALTH_TIMEOUT. On the way back to
 * green, pages are told (grappe:reconnected) so they refresh at once.
 */
function watchHealth(): void {
  let up: boolean | null = null;
  const set = (ok: boolean) => {
    if (ok === up) return;
    const wasDown = up === false;
    up = ok;
    conn.dataset.state = ok ? 'up' : 'down';
    // What the page shows is no longer live: say so by dimming it.
    document.body.classList.toggle('offline', !ok);
    conn.querySelector('.conn-text')!.textContent = ok ? 'connected' : 'master unreachable';
    conn.title = ok ? 'The master answers' : 'The master does not answer; retrying every 2 s';
    if (ok && wasDown) window.dispatchEvent(new Event('grappe:reconnected'));
  };
  const check = async () => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), HEALTH_TIMEOUT);
    let ok = false;
    try {
      ok = (await fetch('/healthz', { cache: 'no-store', signal: ctl.signal })).ok;
    } catch { /* unreachable */ }
    clearTimeout(timer);
    set(ok);
    setTimeout(check, HEALTH_EVERY);
  };
  void check();
}

async function boot(): Promise<void> {
  applyPrefs(loadPrefs());
  frame();
  setNavigator(go);
  watchHealth();
  handleUnauthorized(() => {
    if (state.session) toast('Your session has ended; please log in again.', 'info');
    signedOut();
  });
  // Who is logged in? A master that cannot be reached yet is retried:
  // the page comes up as soon as it answers.
  for (;;) {
    try {
      const s = await api<Session>('GET', '/api/v1/session', undefined, { quiet401: true });
      state.session = s;
      setCSRF(s.csrf_token);
      break;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 0 && e.status < 500) break; // not logged in
      fill(main, h('section', { class: 'page narrow' }, h('h1', null, 'Connecting…'),
        h('p', null, 'The master cannot be reached. Retrying…')));
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  render();
}

void boot();
