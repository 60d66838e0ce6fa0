// The result of a job, as the editor page and the job page show it:
// status or verdict, the figures of the run, the compiler's output and one
// line per test case.
import { isTerminal, text, type Job } from './api';
import { parseDiagnostics, type Diagnostic } from './diagnostics';
import { h, type Child } from './dom';
import { kb, ms, verdictName } from './format';
import { limitHit } from './limits';
import { renderTests } from './testcases';

/** What a result's links do: show a test case in the output box, jump to a line. */
export interface ResultActions {
  showCase?: (i: number) => void;
  jump?: (d: Diagnostic) => void;
  /** The test cases are shown elsewhere (full width, under the page's columns). */
  testsApart?: boolean;
}

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

/** The diagnostics of a job: the compiler's, else a runtime traceback's. */
export function diagnosticsOf(j: Job): Diagnostic[] {
  const c = j.compile;
  if (c && (c.exit_code !== 0 || j.verdict === 'compile_error')) {
    return parseDiagnostics(text(c.stderr, c.stderr_encoding) + '\n' + text(c.stdout, c.stdout_encoding));
  }
  const found = c ? parseDiagnostics(text(c.stderr, c.stderr_encoding)).filter((d) => d.severity === 'warning') : [];
  const runs = [j.run, ...(j.tests ?? [])];
  const failed = runs.find((r) => r && r.exit_code !== 0 && r.stderr);
  if (failed) found.push(...parseDiagnostics(text(failed.stderr, failed.stderr_encoding)));
  return found;
}

function renderDiagnostics(ds: Diagnostic[], jump?: (d: Diagnostic) => void): HTMLElement | null {
  if (!ds.length) return null;
  return h('ul', { id: 'diagnostics', class: 'diagnostics', 'aria-label': 'Problems in the code' },
    ds.map((d) => {
      const where = `${d.file}:${d.line}${d.column ? ':' + d.column : ''}`;
      const label = [h('span', { class: `sev ${d.severity}` }, d.severity), ' ', h('code', null, where), ' ', d.message];
      return h('li', { 'data-line': d.line, 'data-file': d.file },
        jump ? h('button', { type: 'button', class: 'link diag', title: `Go to ${where}`, onclick: () => jump(d) }, label) : label);
    }));
}

/** Verdict, figures, compile output and tests of a job (no stdout/stderr). */
export function renderResult(j: Job, actions: ResultActions = {}): HTMLElement {
  const run = j.run;
  const box = h('div', { class: 'result', id: 'result', 'data-status': j.status });
  box.append(h('div', { class: 'verdict-line' },
    h('span', { id: 'verdict' }, badge(j)),
    h('span', { id: 'progress', class: 'muted' }, progress(j))));
  const hit = j.status === 'done' ? limitHit(j) : null;
  if (hit) box.append(h('p', { class: 'limit-hit', id: 'limit-hit' }, hit));
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
  const diag = isTerminal(j) ? renderDiagnostics(diagnosticsOf(j), actions.jump) : null;
  if (diag) box.append(diag);
  if (j.tests?.length && !actions.testsApart) box.append(renderTests(j, actions.showCase));
  return box;
}
