// The editor's test case inputs: a list of cases, each an input and the
// output it expects, added and removed by the user.
import { field, h } from './dom';

export interface CaseInput { stdin: string; expected: string }

export interface TestInputs {
  el: HTMLElement;
  read(): CaseInput[];
  load(cases: CaseInput[]): void;
}

export function createTestInputs(changed: () => void): TestInputs {
  const list = h('div', { id: 'tests-list', class: 'tests-list' });
  const summary = h('summary', null, 'Test cases');
  const panel = h('details', { id: 'tests-panel', class: 'panel' }, summary,
    h('p', { class: 'hint' }, 'With test cases the program is compiled once and run once per case (the stdin above is then not used). An empty expected output is not checked.'),
    list,
    h('button', { id: 'add-test', type: 'button', class: 'secondary small', onclick: () => { add('', ''); changed(); } }, 'Add test case'));

  function add(stdinText: string, expected: string): void {
    const i = list.children.length + 1;
    const row = h('fieldset', { class: 'test-case' },
      h('legend', null, `Case ${i}`),
      field('Input', h('textarea', { id: `test-stdin-${i}`, class: 'test-stdin', rows: 2, spellcheck: 'false', value: stdinText, oninput: changed })),
      field('Expected output', h('textarea', { id: `test-expected-${i}`, class: 'test-expected', rows: 2, spellcheck: 'false', value: expected, oninput: changed })),
      h('button', { type: 'button', class: 'secondary small remove-test', onclick: () => { row.remove(); renumber(); changed(); } }, 'Remove'));
    list.append(row);
    renumber();
  }
  function renumber(): void {
    Array.from(list.children).forEach((row, k) => {
      row.querySelector('legend')!.textContent = `Case ${k + 1}`;
      row.querySelector('.test-stdin')!.id = `test-stdin-${k + 1}`;
      row.querySelector('.test-expected')!.id = `test-expected-${k + 1}`;
      row.querySelectorAll('label').forEach((l, j) => l.setAttribute('for', `test-${j ? 'expected' : 'stdin'}-${k + 1}`));
    });
    const n = list.children.length;
    summary.textContent = n ? `Test cases (${n})` : 'Test cases';
    if (n) panel.open = true;
  }
  return {
    el: panel,
    read: () => Array.from(list.children).map((row) => ({
      stdin: (row.querySelector('.test-stdin') as HTMLTextAreaElement).value,
      expected: (row.querySelector('.test-expected') as HTMLTextAreaElement).value,
    })),
    load(cases) {
      list.replaceChildren();
      for (const c of cases) add(c.stdin, c.expected);
      renumber();
    },
  };
}
