// Test case results, readable: one full-width row per case with its input,
// the expected and the actual output side by side, the lines that differ
// marked, and the first failing case opened.
import { text, type Job, type TestResult } from './api';
import { h } from './dom';
import { kb, ms } from './format';
import { badge } from './result';

const CLIP = 20_000; // characters of a cell shown; the job's output has all

function clip(s: string): string {
  return s.length > CLIP ? s.slice(0, CLIP) + `\n… (${s.length - CLIP} more characters)` : s;
}

/** Lines of a and b compared one by one (a judge compares them so, less trailing blanks). */
export function lineDiff(expected: string, actual: string): { expected: boolean[]; actual: boolean[]; first: number } {
  const e = expected.replace(/\s+$/, '').split('\n');
  const a = actual.replace(/\s+$/, '').split('\n');
  const same = (i: number) => (e[i] ?? '').trimEnd() === (a[i] ?? '').trimEnd() && i < e.length && i < a.length;
  let first = -1;
  for (let i = 0; i < Math.max(e.length, a.length); i++) if (!same(i)) { first = i; break; }
  return { expected: e.map((_, i) => !same(i)), actual: a.map((_, i) => !same(i)), first };
}

function lines(s: string, marks: boolean[] | null, cls: string): HTMLElement {
  const pre = h('pre', { class: 'cell-out' });
  if (!marks) {
    pre.textContent = clip(s);
    return pre;
  }
  const ls = clip(s.replace(/\s+$/, '')).split('\n');
  ls.forEach((l, i) => pre.append(h('span', { class: marks[i] ? `line ${cls}` : 'line' }, l + '\n')));
  return pre;
}

function column(title: string, body: HTMLElement): HTMLElement {
  return h('div', { class: 'case-col' }, h('h4', null, title), body);
}

/** One row per case; onShow(i) shows case i in the main output box. */
export function renderTests(j: Job, onShow?: (i: number) => void): HTMLElement {
  const tests = j.tests ?? [];
  const req = j.request?.tests ?? [];
  const firstBad = tests.findIndex((t) => t.verdict !== 'ok');
  const passed = tests.filter((t) => t.verdict === 'ok').length;
  return h('section', { class: 'tests' },
    h('h3', null, `Tests: ${passed} of ${tests.length} passed`),
    h('div', { id: 'tests-result', class: 'case-list' },
      tests.map((t, i) => row(t, i, req[i]?.stdin !== undefined ? text(req[i].stdin, req[i].stdin_encoding) : undefined,
        req[i]?.expected_output ?? null, i === firstBad, onShow))));
}

function row(t: TestResult, i: number, input: string | undefined, expected: string | null, open: boolean,
  onShow?: (i: number) => void): HTMLElement {
  const actual = text(t.stdout, t.stdout_encoding);
  const stderr = text(t.stderr, t.stderr_encoding);
  const diff = expected !== null && t.verdict === 'wrong_answer' ? lineDiff(expected, actual) : null;
  const details = h('details', { class: 'case', 'data-test': i + 1, 'data-verdict': t.verdict, open: open || null },
    h('summary', null,
      h('span', { class: 'case-no' }, `Case ${i + 1}`), ' ',
      badge({ status: 'done', verdict: t.verdict }), ' ',
      h('span', { class: 'muted small' }, `exit ${t.exit_code}${t.signal ? ` (${t.signal})` : ''} · CPU ${ms(t.cpu_ms)} · wall ${ms(t.wall_ms)} · ${kb(t.memory_kb)}`),
      onShow ? h('button', { type: 'button', class: 'secondary small show-case', onclick: (e: Event) => { e.preventDefault(); onShow(i); } }, 'Show in output') : null),
    diff && diff.first >= 0
      ? h('p', { class: 'diff-note' }, `First difference on line ${diff.first + 1}.`) : null,
    h('div', { class: 'case-grid' },
      column('Input', lines(input ?? '(not available)', null, '')),
      column('Expected output', expected === null ? h('p', { class: 'muted' }, '(not checked)') : lines(expected, diff?.expected ?? null, 'diff-del')),
      column('Actual output', lines(actual || '(no output)', diff?.actual ?? null, 'diff-add'))),
    stderr ? column('stderr', lines(stderr, null, '')) : null);
  return details;
}
