// The editor's file tabs: the program's main file (the catalogue names it:
// main.c, Main.java…) and the extra files sent beside it (headers,
// modules), each in its own tab over the one CodeMirror view.
import type { Code, Mark } from './code';
import { tabOf, type Diagnostic } from './diagnostics';
import { h } from './dom';

export interface ExtraFile { name: string; content: string }

export const MAIN = ''; // the main file's key: it has no name of its own in the request

export interface FileTabs {
  el: HTMLElement;
  /** The extra files, with the current tab's edits. */
  extra(): ExtraFile[];
  main(): string;
  /** Replaces every tab: the main file's text and the extra files. */
  load(main: string, extra: ExtraFile[]): void;
  /** The editor's text changed: it belongs to the current tab. */
  edited(text: string): void;
  select(name: string): void;
  current(): string;
  /** Marks diagnostics in their tabs; jump goes to one, switching tab. */
  mark(ds: Diagnostic[]): void;
  jump(d: Diagnostic): void;
}

const validName = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

export function createFileTabs(code: Code, mainLabel: () => string, changed: () => void): FileTabs {
  let main = '';
  let files: ExtraFile[] = [];
  let cur = MAIN;
  let marks = new Map<string, Mark[]>();
  const strip = h('div', { class: 'tabs file-tabs', role: 'tablist', 'aria-label': 'Files' });
  const nameInput = h('input', { id: 'new-file-name', class: 'small-input', placeholder: 'util.h', spellcheck: 'false', 'aria-label': 'New file name' });
  const error = h('small', { id: 'new-file-error', class: 'field-error', role: 'alert', hidden: true });
  const add = h('button', { type: 'button', id: 'add-file', class: 'secondary small' }, 'Add file');

  const textOf = (name: string) => (name === MAIN ? main : files.find((f) => f.name === name)?.content ?? '');
  function store(): void {
    const t = code.text();
    if (cur === MAIN) main = t;
    else {
      const f = files.find((x) => x.name === cur);
      if (f) f.content = t;
    }
  }
  function render(): void {
    strip.replaceChildren(...[MAIN, ...files.map((f) => f.name)].map((name) => {
      const label = name === MAIN ? mainLabel() : name;
      const n = marks.get(name)?.length ?? 0;
      const tab = h('button', {
        type: 'button', role: 'tab', class: 'tab file-tab' + (n ? ' has-problems' : ''), 'data-file': name || 'main',
        'aria-selected': name === cur ? 'true' : 'false', onclick: () => tabs.select(name),
      }, label, n ? h('span', { class: 'count', title: `${n} problem(s)` }, String(n)) : null);
      if (name === MAIN) return tab;
      return h('span', { class: 'tab-pair' }, tab, h('button', {
        type: 'button', class: 'tab-close', 'aria-label': `Remove ${name}`, title: `Remove ${name}`,
        onclick: () => {
          store();
          files = files.filter((f) => f.name !== name);
          if (cur === name) show(MAIN);
          render();
          changed();
        },
      }, '×'));
    }));
  }
  function show(name: string): void {
    cur = name;
    code.setText(textOf(name));
    code.mark(marks.get(name) ?? []);
  }
  add.addEventListener('click', () => {
    const name = nameInput.value.trim();
    error.hidden = true;
    const why = !validName.test(name) ? 'A file name is letters, digits, dots, dashes and underscores, without a folder.'
      : files.some((f) => f.name === name) || name === mainLabel() ? `There is already a file named ${name}.` : '';
    if (why) {
      error.textContent = why;
      error.hidden = false;
      return;
    }
    store();
    files.push({ name, content: '' });
    nameInput.value = '';
    tabs.select(name);
    changed();
  });
  nameInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add.click(); } });

  const tabs: FileTabs = {
    el: h('div', { class: 'file-bar' }, strip, h('span', { class: 'add-file' }, nameInput, add), error),
    extra() { store(); return files.map((f) => ({ ...f })); },
    main() { store(); return main; },
    load(m, extra) {
      main = m;
      files = extra.map((f) => ({ ...f }));
      marks = new Map();
      show(MAIN);
      render();
    },
    edited(t) {
      if (cur === MAIN) main = t;
      else {
        const f = files.find((x) => x.name === cur);
        if (f) f.content = t;
      }
    },
    select(name) {
      if (name !== cur) {
        store();
        show(name);
      }
      render();
    },
    current: () => cur,
    mark(ds) {
      marks = new Map();
      const names = files.map((f) => f.name);
      for (const d of ds) {
        const tab = tabOf(d, names, MAIN);
        marks.set(tab, [...(marks.get(tab) ?? []), d]);
      }
      code.mark(marks.get(cur) ?? []);
      render();
    },
    jump(d) {
      tabs.select(tabOf(d, files.map((f) => f.name), MAIN));
      code.jump(d.line, d.column);
    },
  };
  render();
  return tabs;
}
