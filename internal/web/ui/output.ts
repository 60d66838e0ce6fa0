// The output pane of the editor and the job page: stdout and stderr
// together or one at a time, ANSI colours rendered (as classes on text
// nodes: output never becomes markup), copy and download, binary output
// offered as a file, and very long output cut in the view with the whole
// of it a download away.
import { byteLength, text, type Job, type Run } from './api';
import { toast } from './app';
import { h } from './dom';
import { newAnsiState, parseAnsi } from './ansi';

export type Stream = 'stdout' | 'stderr';
type View = 'all' | Stream;

/** Characters shown at most; past this the view says how to get the rest. */
export const MAX_VIEW_CHARS = 1_000_000;

export interface OutputPane {
  el: HTMLElement;
  /** The <pre> the output is written into. */
  pre: HTMLPreElement;
  reset(placeholder?: string): void;
  /** Appends a chunk of a stream as it arrives. */
  append(stream: Stream, s: string): void;
  /** Shows a finished run's output whole (or a test case's: note says which). */
  showRun(run: Run | undefined, note?: string): void;
  /** What the view holds, for a check against the final result. */
  shownChars(): { stdout: number; stderr: number };
  empty(message: string): void;
}

/** Saves data as a file through a temporary blob: link. */
export function download(name: string, data: BlobPart, type = 'text/plain;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h('a', { href: url, download: name, class: 'visually-hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function bytesOf(s: string, encoding: string | undefined): Uint8Array | string {
  if (encoding !== 'base64') return s;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return s;
  }
}

export function createOutput(id: string, label: string, fileBase: () => string): OutputPane {
  const pre = h('pre', { id, class: 'out empty', tabindex: '0', 'aria-label': label });
  const note = h('p', { id: id + '-case', class: 'out-note muted small', hidden: true });
  const files = h('div', { id: id + '-files', class: 'out-files' });
  let view: View = 'all';
  let shown = { stdout: 0, stderr: 0 };
  let ansi = { stdout: newAnsiState(), stderr: newAnsiState() };
  let last: HTMLElement | null = null;
  let run: Run | undefined; // the finished run shown, for copy and download
  let cut = false;

  const tabs = (['all', 'stdout', 'stderr'] as View[]).map((v) => h('button', {
    type: 'button', role: 'tab', id: `${id}-tab-${v}`, class: 'tab', 'aria-selected': v === view ? 'true' : 'false',
    'aria-controls': id, onclick: () => select(v),
  }, v === 'all' ? 'All' : v === 'stdout' ? 'stdout' : 'stderr'));
  function select(v: View): void {
    view = v;
    tabs.forEach((t) => t.setAttribute('aria-selected', t.id === `${id}-tab-${v}` ? 'true' : 'false'));
    pre.dataset.view = v;
  }
  pre.dataset.view = view;

  /** The text of the streams the view shows, from the run when finished. */
  function current(): string {
    const part = (s: Stream) => (run ? text(run[s], run[`${s}_encoding`]) : Array.from(pre.querySelectorAll(`.${s}`)).map((e) => e.textContent).join(''));
    return view === 'all' ? (run ? part('stdout') + part('stderr') : pre.textContent ?? '') : part(view);
  }

  const copy = h('button', {
    type: 'button', id: id + '-copy', class: 'secondary small', onclick: async () => {
      try {
        await navigator.clipboard.writeText(current());
        toast('Output copied.', 'info');
      } catch {
        toast('The browser did not allow copying; select the text instead.');
      }
    },
  }, 'Copy');
  const save = h('button', {
    type: 'button', id: id + '-download', class: 'secondary small',
    onclick: () => download(`${fileBase()}-${view === 'all' ? 'output' : view}.txt`, current()),
  }, 'Download');

  const el = h('div', { class: 'output-box' },
    h('div', { class: 'out-bar' },
      h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Streams' }, tabs),
      h('div', { class: 'group' }, copy, save)),
    note, files, pre);

  function write(stream: Stream, s: string): void {
    if (!s) return;
    shown[stream] += s.length;
    if (shown.stdout + shown.stderr > MAX_VIEW_CHARS) {
      if (!cut) {
        cut = true;
        pre.append(h('span', { class: 'note cut' }, '\n[the view stops here: Download has the whole output]'));
      }
      return;
    }
    for (const r of parseAnsi(s, ansi[stream])) {
      const cls = [stream, ...r.classes].join(' ');
      // Consecutive chunks of one stream and style share a span.
      if (!last || last.className !== cls) {
        last = h('span', { class: cls });
        pre.append(last);
      }
      const t = last.lastChild;
      if (t instanceof Text) t.appendData(r.text);
      else last.append(r.text);
    }
    // Follow the output while the reader is at the bottom.
    if (pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40) pre.scrollTop = pre.scrollHeight;
  }

  const pane: OutputPane = {
    el, pre,
    reset(placeholder) {
      pre.replaceChildren();
      files.replaceChildren();
      pre.classList.toggle('empty', !!placeholder);
      if (placeholder) pre.textContent = placeholder;
      note.hidden = true;
      shown = { stdout: 0, stderr: 0 };
      ansi = { stdout: newAnsiState(), stderr: newAnsiState() };
      last = null;
      run = undefined;
      cut = false;
    },
    append(stream, s) {
      if (pre.classList.contains('empty')) { pre.replaceChildren(); pre.classList.remove('empty'); }
      write(stream, s);
    },
    showRun(r, caseNote) {
      pane.reset();
      run = r;
      note.hidden = !caseNote;
      note.textContent = caseNote ?? '';
      if (!r) return;
      for (const s of ['stdout', 'stderr'] as Stream[]) {
        const enc = r[`${s}_encoding`];
        if (enc === 'base64') {
          // Binary output is offered as a file, not shown as mojibake.
          const n = byteLength(r[s], enc);
          files.append(h('p', { class: 'binary' }, `The program wrote ${n} bytes of binary data to ${s}. `,
            h('button', { type: 'button', id: `${id}-binary-${s}`, class: 'secondary small',
              onclick: () => download(`${fileBase()}-${s}.bin`, bytesOf(r[s], enc) as BlobPart, 'application/octet-stream') },
            `Download ${s}`)));
          continue;
        }
        write(s, r[s]);
      }
      if (!pre.childNodes.length) pane.empty('(no output)');
    },
    shownChars: () => ({ ...shown }),
    empty(message) {
      pre.replaceChildren();
      pre.classList.add('empty');
      pre.textContent = message;
    },
  };
  return pane;
}

/** The run of a job the main output box shows, and what to say about it. */
export function runToShow(j: Job, pick?: number): { run: Run | undefined; note?: string } {
  if (!j.tests?.length) return { run: j.run };
  const i = pick ?? Math.max(0, j.tests.findIndex((t) => t.verdict !== 'ok'));
  const t = j.tests[i];
  const why = pick === undefined && t.verdict !== 'ok' ? ', the first that failed' : '';
  return { run: t, note: `Showing test case ${i + 1} of ${j.tests.length}${why}.` };
}
