// The result of a job, as the editor page and the job page show it:
// status or verdict, the figures of the run, the compiler's output and one
// line per test case.
import { byteLength, isTerminal, text, type Job } from './api';
import { h, type Child } from './dom';
import { kb, ms, verdictName } from './format';

/** A badge for a job: its verdict when done, else its status. */
export function badge(j: Pick<Job, 'status' | 'verdict'>): HTMLElement {
  const done = j.status === 'done' && j.verdict;
  const kind = done ? (j.verdict === 'ok' ? 'good' : 'bad') : j.status === 'failed' ? 'bad' : j.status === 'cancelled' ? 'muted' : 'busy';
  return h('span', { class: `badge ${kind}`, 'data-status': j.status, 'data-verdict': j.verdict ?? '' },
    done ? verdictName(j.verdict) : j.status);
}

/** One line saying where the job is: queued (position), running on w, done. */
export function progress(j: Job): string {
  switch (j.status) {
    case 'queued':
      return j.queue_position ? `queued (position ${j.queue_position})` : 'queued';
    case 'running':
      return `running on ${j.worker ?? '?'}` + (j.attempts > 1 ? ` (attempt ${j.attempts})` : '');
    case 'failed':
      return 'failed' + (j.error ? `: ${j.error}` : '');
    case 'cancelled':
      return 'cancelled';
    default:
      return 'finished' + (j.worker ? ` on ${j.worker}` : '');
  }
}

function fact(label: string, id: string, value: Child): HTMLElement {
  return h('div', { class: 'fact' }, h('dt', null, label), h('dd', { id }, value));
}

/** Verdict, figures, compile output and tests of a job (no stdout/stderr). */
export function renderResult(j: Job): HTMLElement {
  const run = j.run;
  const box = h('div', { class: 'result', id: 'result', 'data-status': j.status });
  box.append(h('div', { class: 'verdict-line' },
    h('span', { id: 'verdict' }, badge(j)),
    h('span', { id: 'progress', class: 'muted' }, progress(j))));
  if (j.status === 'failed' && j.error) {
    box.append(h('p', { class: 'error', id: 'job-error' }, j.error));
  }
  if (isTerminal(j)) {
    box.append(h('dl', { class: 'facts', id: 'facts' },
      fact('Exit code', 'exit-code', run ? String(run.exit_code) + (run.signal ? ` (${run.signal})` : '') : '—'),
      fact('CPU', 'cpu-time', run ? ms(run.cpu_ms) : '—'),
      fact('Wall', 'wall-time', run ? ms(run.wall_ms) : '—'),
      fact('Memory', 'memory', run ? (run.memory_kb > 0 ? kb(run.memory_kb) : 'not measured') : '—'),
      fact('Worker', 'worker', j.worker ?? '—'),
      fact('Attempts', 'attempts', String(j.attempts)),
      j.compile ? fact('Compile', 'compile-time', ms(j.compile.wall_ms) + (j.compile.cached ? ' (cached)' : '')) : null,
      j.version ? fact('Version', 'version-used', `${j.language} ${j.version}`) : null,
    ));
    if (run?.output_truncated) box.append(h('p', { class: 'warn' }, 'Output was cut at the output limit.'));
  }
  const c = j.compile;
  const compileText = c ? (text(c.stdout, c.stdout_encoding) + text(c.stderr, c.stderr_encoding)).trimEnd() : '';
  if (compileText) {
    box.append(h('section', { class: 'compile' },
      h('h3', null, `Compiler output (exit code ${c!.exit_code})`),
      h('pre', { id: 'compile-output', class: c!.exit_code ? 'out err' : 'out' }, compileText)));
  }
  if (j.tests?.length) box.append(renderTests(j));
  return box;
}

function renderTests(j: Job): HTMLElement {
  const expected = j.request?.tests ?? [];
  return h('section', { class: 'tests' },
    h('h3', null, `Tests: ${j.tests!.filter((t) => t.verdict === 'ok').length} of ${j.tests!.length} passed`),
    h('div', { class: 'table-wrap' },
      h('table', { id: 'tests-result' },
        h('thead', null, h('tr', null,
          h('th', null, '#'), h('th', null, 'Verdict'), h('th', null, 'Exit'), h('th', null, 'CPU'),
          h('th', null, 'Wall'), h('th', null, 'Memory'), h('th', null, 'Output'), expected.length ? h('th', null, 'Expected') : null)),
        h('tbody', null, j.tests!.map((t, i) => h('tr', { 'data-test': i + 1, 'data-verdict': t.verdict },
          h('td', null, String(i + 1)),
          h('td', null, badge({ status: 'done', verdict: t.verdict })),
          h('td', null, String(t.exit_code) + (t.signal ? ` (${t.signal})` : '')),
          h('td', null, ms(t.cpu_ms)),
          h('td', null, ms(t.wall_ms)),
          h('td', null, kb(t.memory_kb)),
          h('td', null, h('pre', { class: 'cell-out' }, clip(text(t.stdout, t.stdout_encoding) + text(t.stderr, t.stderr_encoding)))),
          expected.length ? h('td', null, h('pre', { class: 'cell-out' }, clip(expected[i]?.expected_output ?? '—'))) : null,
        ))))));
}

function clip(s: string): string {
  return s.length > 2000 ? s.slice(0, 2000) + '…' : s;
}

/** The program's stdout and stderr, stderr marked, with a note for binary output. */
export function outputNodes(j: Job): Node[] {
  const r = j.run;
  if (!r) return [];
  const nodes: Node[] = [];
  const add = (s: string, enc: string | undefined, cls: string) => {
    if (!s) return;
    if (enc === 'base64') nodes.push(h('span', { class: 'note' }, `[binary ${cls}, ${byteLength(s, enc)} bytes, shown as UTF-8]\n`));
    nodes.push(h('span', { class: cls }, text(s, enc)));
  };
  add(r.stdout, r.stdout_encoding, 'stdout');
  add(r.stderr, r.stderr_encoding, 'stderr');
  return nodes;
}
