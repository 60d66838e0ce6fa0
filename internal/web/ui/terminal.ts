// The terminal of interactive runs: with "Interactive" checked, the editor
// submits the program as an interactive job and this pane attaches to it
// (GET /api/v1/jobs/{id}/attach, a WebSocket authenticated by the session
// cookie): the program's output appears as it writes it, and what the
// user types is its stdin. There is no terminal device on the other side,
// so the pane is the line discipline: it echoes, edits the line
// (Backspace), sends it on Enter, sends end of input on Ctrl-D and SIGINT
// on Ctrl-C.
//
// xterm.js is loaded on first use (a chunk of its own), so the editor's
// first load does not carry it.
import '@xterm/xterm/css/xterm.css';
import type { Terminal } from '@xterm/xterm';
import type { Job } from './api';
import { h } from './dom';

export interface InteractivePane {
  /** The "Interactive" switch, for the toolbar. */
  toggle: HTMLElement;
  /** The terminal, shown while the switch is on. */
  el: HTMLElement;
  enabled(): boolean;
  /** Attaches to job id; onEnd, if given, gets the finished job (null, with why, when the attach failed). */
  attach(id: string, onEnd?: (job: Job | null, why?: string) => void): Promise<void>;
  /** Clears the terminal and drops the connection of a previous run. */
  reset(): void;
  close(): void;
}

/** A server message of the attach protocol (README: Interactive runs). */
interface AttachMessage {
  type: 'attached' | 'stage' | 'output' | 'exit' | 'error';
  job?: Job; stage?: string; stream?: string; data?: string; encoding?: string;
  error?: string; message?: string;
}

export function createInteractivePane(onToggle: (on: boolean) => void): InteractivePane {
  const box = h('input', { id: 'interactive', type: 'checkbox' });
  const toggle = h('label', { class: 'pair toggle', for: 'interactive', title: 'Type into the program while it runs' }, box, 'Interactive');
  const screen = h('div', { id: 'terminal', class: 'terminal', 'aria-label': 'Interactive terminal' });
  const el = h('div', { class: 'terminal-pane', hidden: true },
    h('p', { class: 'hint' }, 'Type the program\u2019s input here: Enter sends the line, Ctrl-D ends the input, Ctrl-C interrupts.'),
    screen);
  let term: Terminal | null = null;
  let opening: Promise<Terminal> | null = null;
  let ws: WebSocket | null = null;
  let line = ''; // what the user typed since the last Enter
  let closeSheets = () => {};

  box.addEventListener('change', () => {
    el.hidden = !box.checked;
    onToggle(box.checked);
    if (box.checked) void open().then((t) => t.focus());
  });

  function open(): Promise<Terminal> {
    opening ??= import('@xterm/xterm').then(({ Terminal }) => {
      const t = new Terminal({ convertEol: true, rows: 16, cursorBlink: true, scrollback: 5000, fontSize: 13 });
      closeSheets = openWithSheets(() => t.open(screen));
      t.onData(typed);
      term = t;
      return t;
    });
    return opening;
  }

  function send(msg: object): void {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  /** The line discipline: what a key press does. */
  function typed(data: string): void {
    for (const ch of data) {
      switch (ch) {
        case '\r':
          term?.write('\r\n');
          send({ type: 'stdin', data: line + '\n' });
          line = '';
          break;
        case '\x7f': // Backspace
          if (line) {
            line = Array.from(line).slice(0, -1).join('');
            term?.write('\b \b');
          }
          break;
        case '\x03': // Ctrl-C
          term?.write('^C\r\n');
          line = '';
          send({ type: 'signal', signal: 'SIGINT' });
          break;
        case '\x04': // Ctrl-D
          if (line) send({ type: 'stdin', data: line });
          line = '';
          send({ type: 'eof' });
          break;
        default:
          if (ch >= ' ' || ch === '\t') {
            line += ch;
            term?.write(ch);
          }
      }
    }
  }

  async function attach(id: string, onEnd: (job: Job | null, why?: string) => void = () => {}): Promise<void> {
    const t = await open();
    ws?.close();
    const url = new URL(`/api/v1/jobs/${encodeURIComponent(id)}/attach`, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(url);
    ws = sock;
    let ended = false;
    const end = (job: Job | null, why?: string) => {
      if (ended) return;
      ended = true;
      onEnd(job, why);
    };
    sock.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as AttachMessage;
      switch (m.type) {
        case 'output': {
          const text = m.encoding === 'base64' ? Uint8Array.from(atob(m.data ?? ''), (c) => c.charCodeAt(0)) : m.data ?? '';
          t.write(text);
          break;
        }
        case 'exit':
          t.write(`\r\n\x1b[2m[${m.job ? exitLine(m.job) : m.error ?? 'ended'}]\x1b[0m\r\n`);
          end(m.job ?? null, m.error);
          break;
        case 'error':
          t.write(`\r\n\x1b[33m[${m.message}]\x1b[0m\r\n`);
          break;
      }
    };
    sock.onclose = () => {
      if (ws === sock) ws = null;
      end(null, 'the connection to the master closed');
    };
    t.focus();
  }

  return {
    toggle, el,
    enabled: () => box.checked,
    attach,
    reset() {
      ws?.close();
      ws = null;
      line = '';
      term?.reset();
    },
    close() {
      ws?.close();
      ws = null;
      term?.dispose();
      closeSheets();
    },
  };
}

function exitLine(j: Job): string {
  if (j.status !== 'done') return `${j.status}${j.error ? ': ' + j.error : ''}`;
  const r = j.run;
  return `${j.verdict ?? 'done'}${r ? (r.signal ? `, killed by ${r.signal}` : `, exit code ${r.exit_code}`) : ''}`;
}

/**
 * Runs open (xterm's Terminal.open) so that the styles xterm computes
 * (cell sizes, colours), which it writes into <style> elements, apply
 * without an exception to the page's Content-Security-Policy (style-src
 * 'self' refuses inline styles): the <style> elements asked for while it
 * opens are inert stand-ins, whose text is applied as constructed
 * stylesheets (document.adoptedStyleSheets), the page script's own.
 * Returns what removes them.
 */
function openWithSheets(open: () => void): () => void {
  const sheets: CSSStyleSheet[] = [];
  const observers: MutationObserver[] = [];
  const create = document.createElement;
  document.createElement = function (this: Document, tag: string, options?: ElementCreationOptions): HTMLElement {
    if (tag.toLowerCase() !== 'style') return create.call(this, tag, options);
    const stand = create.call(this, 'template', options);
    const sheet = new CSSStyleSheet();
    sheets.push(sheet);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    const mo = new MutationObserver(() => sheet.replaceSync(stand.textContent ?? ''));
    mo.observe(stand, { childList: true, characterData: true, subtree: true });
    observers.push(mo);
    return stand;
  } as typeof document.createElement;
  try {
    open();
  } finally {
    delete (document as { createElement?: unknown }).createElement; // the prototype's again
  }
  return () => {
    for (const mo of observers) mo.disconnect();
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !sheets.includes(s));
  };
}
