// The connection to the master: the indicator in the header and, while
// the master cannot be reached, one banner that says so, when it was last
// reached and when the next try is. Checks back off exponentially (1 s,
// 2 s, 4 s … up to MAX_BACKOFF) rather than hammer a master that is down,
// and while it is down the pages' polling pauses (app.every reads
// state.offline): the banner's checks are the only requests sent. On the
// way back, pages are told (grappe:reconnected) and refresh at once.
import { state } from './app';
import { h, setText } from './dom';

const UP_EVERY = 3000; // ms between two checks while the master answers
const CHECK_TIMEOUT = 2500; // a check slower than this counts as a failure
const FIRST_BACKOFF = 1000;
const MAX_BACKOFF = 10_000;

export interface Connection {
  indicator: HTMLElement;
  banner: HTMLElement;
  /** Checks at once (an API call just failed to reach the master). */
  suspect(): void;
}

export function watchConnection(): Connection {
  const indicator = h('span', { id: 'conn', class: 'conn', role: 'status', 'aria-live': 'polite', 'data-state': 'unknown' },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'conn-text' }, 'connecting…'));
  const since = h('span', { id: 'offline-since' });
  const retry = h('span', { id: 'offline-retry' });
  const retryNow = h('button', { type: 'button', id: 'offline-retry-now', class: 'secondary small' }, 'Retry now');
  const banner = h('div', { id: 'offline-banner', class: 'offline-banner', role: 'alert', hidden: true },
    h('strong', null, 'The master cannot be reached.'), ' ', since,
    ' What this page shows may be out of date: jobs that seem to run may have ended. ', retry, ' ', retryNow);

  let up: boolean | null = null;
  let lastUp = 0;
  let backoff = FIRST_BACKOFF;
  let timer = 0;
  let countdown = 0;
  let nextAt = 0;
  let checking = false;

  const set = (ok: boolean) => {
    if (ok) lastUp = Date.now();
    if (ok === up) return;
    const wasDown = up === false;
    up = ok;
    state.offline = !ok;
    indicator.dataset.state = ok ? 'up' : 'down';
    document.body.classList.toggle('offline', !ok);
    setText(indicator.querySelector('.conn-text')!, ok ? 'connected' : 'master unreachable');
    indicator.title = ok ? 'The master answers' : 'The master does not answer';
    banner.hidden = ok;
    if (!ok) {
      setText(since, lastUp ? `Last reached at ${new Date(lastUp).toLocaleTimeString()}.` : '');
      window.dispatchEvent(new Event('grappe:offline'));
    }
    if (ok && wasDown) window.dispatchEvent(new Event('grappe:reconnected'));
  };

  const tickCountdown = () => {
    const s = Math.max(0, Math.ceil((nextAt - Date.now()) / 1000));
    setText(retry, checking ? 'Trying again now…' : `Next try in ${s} s.`);
  };

  const schedule = (ms: number) => {
    clearTimeout(timer);
    nextAt = Date.now() + ms;
    timer = window.setTimeout(check, ms);
  };

  async function check(): Promise<void> {
    if (checking) return;
    checking = true;
    clearTimeout(timer);
    if (up === false) tickCountdown();
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), CHECK_TIMEOUT);
    let ok = false;
    try {
      ok = (await fetch('/healthz', { cache: 'no-store', signal: ctl.signal })).ok;
    } catch { /* unreachable */ }
    clearTimeout(t);
    checking = false;
    set(ok);
    if (ok) {
      backoff = FIRST_BACKOFF;
      schedule(UP_EVERY);
    } else {
      schedule(backoff);
      backoff = Math.min(MAX_BACKOFF, backoff * 2);
      tickCountdown();
    }
  }

  retryNow.addEventListener('click', () => void check());
  // The countdown is text only: it sends nothing.
  countdown = window.setInterval(() => { if (up === false) tickCountdown(); }, 1000);
  void countdown;
  void check();
  return {
    indicator,
    banner,
    suspect() { if (up !== false && !checking) void check(); },
  };
}
