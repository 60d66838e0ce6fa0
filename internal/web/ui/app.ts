// State and services shared by the pages: who is logged in, navigation,
// messages and confirmations. main.ts wires them to the document.
import type { Session } from './api';
import { h } from './dom';

/** A page of the UI: its element, and what to stop when it is left. */
export interface Page {
  title: string;
  el: HTMLElement;
  /** Called when the page is left (timers, event streams). */
  dispose?(): void;
  /** Called when a kept page is shown again. */
  resume?(): void;
}

/** session: who is logged in; offline: the master cannot be reached now (banner.ts). */
export const state: { session: Session | null; offline: boolean } = { session: null, offline: false };

export const isAdmin = () => state.session?.role === 'admin';

let go: (path: string, replace: boolean) => void = () => {};

export function setNavigator(f: (path: string, replace: boolean) => void): void { go = f; }

/** Client-side navigation: no page load, history kept. */
export function navigate(path: string, replace = false): void { go(path, replace); }

/** Shows a short message at the bottom of the screen. */
export function toast(message: string, kind: 'error' | 'info' = 'error'): void {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** Asks a yes/no question in a modal dialog; resolves true on confirmation. */
export function confirmDialog(message: string, ok: string, id = 'confirm-dialog'): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h('dialog', { id, class: 'dialog', 'aria-labelledby': id + '-text' });
    const done = (v: boolean) => { dlg.close(); dlg.remove(); resolve(v); };
    dlg.append(
      h('p', { id: id + '-text' }, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: id + '-cancel', class: 'secondary', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', id: id + '-ok', class: 'danger', onclick: () => done(true) }, ok)));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); }); // Escape
    document.body.append(dlg);
    dlg.showModal();
    (dlg.querySelector(`#${id}-cancel`) as HTMLButtonElement).focus();
  });
}

/** Runs f now and every ms milliseconds while the tab is visible; returns a stop function. */
export function every(ms: number, f: () => unknown): () => void {
  let timer = 0;
  let stopped = false;
  let busy = false; // one f at a time: a slow answer must not pile up calls
  const tick = async () => {
    if (stopped || busy) return;
    clearTimeout(timer);
    busy = true;
    // While the master cannot be reached nothing is polled: the
    // connection banner retries, and its reconnection restarts the ticks.
    if (document.visibilityState === 'visible' && !state.offline) {
      try { await f(); } catch { /* the next tick retries */ }
    }
    busy = false;
    if (!stopped) timer = window.setTimeout(tick, ms);
  };
  // Back from a hidden tab or a reconnection: refresh at once.
  const now = () => { if (document.visibilityState === 'visible') void tick(); };
  document.addEventListener('visibilitychange', now);
  window.addEventListener('grappe:reconnected', now);
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', now);
    window.removeEventListener('grappe:reconnected', now);
  };
}
