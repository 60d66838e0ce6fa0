// One job: what was submitted (source, stdin, arguments, limits, tests)
// and everything about its result; live while it runs; run it again, load
// it into the editor, or share it by a read-only link. The same view,
// without any of the actions, is the public page of a shared link
// (/shared/TOKEN), which needs no session.
import { get, isTerminal, post, text, ApiError, type Job } from '../api';
import { navigate, state, toast, type Page } from '../app';
import { createCode, type Code } from '../code';
import { tabOf, type Diagnostic } from '../diagnostics';
import { fill, h, type Child } from '../dom';
import { between, joinArgs, ms, shortId, when } from '../format';
import { labelOf } from '../languages';
import { createOutput, runToShow } from '../output';
import { badge, diagnosticsOf, renderResult } from '../result';
import { shareControls } from '../share';
import { renderTests } from '../testcases';
import { openInEditor } from './editor';

const SHARED_POLL = 2000; // ms between two reads of a shared job still running

export function jobPage(id: string): Page {
  return jobView({ id, url: `/api/v1/jobs/${encodeURIComponent(id)}` });
}

/** The public, read-only page of a shared link. */
export function sharedJobPage(token: string): Page {
  return jobView({ id: '', url: `/api/v1/shared/${encodeURIComponent(token)}`, shared: true });
}

function jobView(opts: { id: string; url: string; shared?: boolean }): Page {
  const el = h('section', { class: 'page job-page' }, h('p', { class: 'muted' }, 'Loading…'));
  let stream: EventSource | null = null;
  let timer = 0;
  let alive = true;
  let job: Job | null = null;
  let sources: { name: string; code: Code }[] = [];
  // Parts rebuilt as the job progresses; the source view is built once.
  const head = h('div', { class: 'page-head' });
  const meta = h('dl', { class: 'facts wide', id: 'job-meta' });
  const resultBox = h('div', { id: 'result-box' });
  const testsBox = h('div', { id: 'tests-box', class: 'tests-box' });
  const output = createOutput('job-output', 'Program output', () => `job-${(job?.id ?? 'shared').slice(-8)}`);

  function renderHead(j: Job): void {
    fill(head,
      h('h1', null, opts.shared ? 'Shared job ' : 'Job ', h('code', { class: 'job-id' }, j.id), ' ', h('span', { id: 'job-status' }, badge(j))),
      opts.shared ? h('p', { class: 'muted', id: 'shared-note' }, 'A read-only view of a job its owner chose to share.') : h('div', { class: 'group' },
        isTerminal(j) ? null : h('button', { id: 'cancel-job', type: 'button', class: 'danger', onclick: cancel }, 'Cancel'),
        j.request ? h('button', { id: 'open-in-editor', type: 'button', class: 'secondary', onclick: edit }, 'Open in editor') : null,
        j.request ? h('button', { id: 'rerun', type: 'button', onclick: rerun }, 'Run again') : null));
    const row = (k: string, v: Child) => [h('dt', null, k), h('dd', null, v)];
    fill(meta,
      state.session?.role === 'admin' && !opts.shared ? row('Owner', j.owner) : null,
      row('Language', `${labelOf(j.language)}${j.version ? ' ' + j.version : ''}`),
      row('Submitted', when(j.created_at)),
      row('Started', when(j.started_at)),
      row('Finished', when(j.finished_at)),
      row('Queue wait', j.started_at ? ms(between(j.created_at, j.started_at)) : '—'),
      row('Total', j.finished_at ? ms(between(j.created_at, j.finished_at)) : '—'),
      row('Priority', String(j.priority)));
  }

  function show(j: Job): void {
    job = j;
    renderHead(j);
    const pick = (i?: number) => {
      const { run, note } = runToShow(j, i);
      output.showRun(run, note);
    };
    // A diagnostic goes to the file of its name, else to the main source
    // (whose name in the sandbox, main.c or Main.java, the request lacks).
    const ds = isTerminal(j) ? diagnosticsOf(j) : [];
    const names = sources.map((s) => s.name);
    const home = (d: Diagnostic) => sources.find((s) => s.name === tabOf(d, names, names[0]));
    for (const s of sources) s.code.mark(ds.filter((d) => home(d) === s));
    fill(resultBox, renderResult(j, {
      showCase: pick,
      jump: (d) => home(d)?.code.jump(d.line, d.column),
      testsApart: true,
    }));
    fill(testsBox, j.tests?.length ? renderTests(j, pick) : null);
    if (isTerminal(j)) pick();
  }

  function build(j: Job): void {
    const req = j.request;
    const files = req?.source !== undefined && req.source !== '' ? [{ name: 'source', content: req.source, encoding: '' }]
      : [];
    files.push(...(req?.files ?? []).map((f) => ({ name: f.name, content: f.content, encoding: f.encoding ?? '' })));
    sources = [];
    const views = files.map((f) => {
      const box = h('div', { class: 'code-box readonly' });
      sources.push({
        name: f.name,
        code: createCode(box, {
          doc: f.encoding === 'base64' ? `[binary file, base64]\n${f.content}` : f.content,
          lang: j.language, label: `Source ${f.name}`, readOnly: true,
        }),
      });
      return h('section', { class: 'source' }, files.length > 1 ? h('h3', null, h('code', null, f.name)) : null, box);
    });
    fill(el,
      head,
      meta,
      h('div', { class: 'job-grid' },
        h('div', null,
          h('h2', null, 'Source'),
          h('div', { id: 'job-source' }, views.length ? views : h('p', { class: 'muted' }, 'The submission is not available.'))),
        h('div', null,
          h('h2', null, 'Result'),
          resultBox,
          h('h2', null, 'Output'),
          output.el,
          req ? inputs(j) : null,
          !opts.shared && j.owner === state.session?.username ? shareControls(j.id) : null)),
      testsBox);
    show(j);
  }

  function inputs(j: Job): HTMLElement {
    const req = j.request!;
    const l = req.limits ?? {};
    const limits = [
      l.cpu_ms ? `CPU ${ms(l.cpu_ms)}` : '', l.wall_ms ? `wall ${ms(l.wall_ms)}` : '',
      l.memory_mb ? `memory ${l.memory_mb} MB` : '', l.processes ? `${l.processes} processes` : '',
      l.output_kb ? `output ${l.output_kb} KB` : '',
    ].filter(Boolean).join(', ') || 'cluster defaults';
    return h('section', { class: 'inputs' },
      h('h2', null, 'Input'),
      h('dl', { class: 'facts wide' },
        h('dt', null, 'Arguments'), h('dd', { id: 'job-args' }, req.args?.length ? h('code', null, joinArgs(req.args)) : '—'),
        req.compile_args?.length ? [h('dt', null, 'Compile flags'), h('dd', { id: 'job-compile-args' }, h('code', null, joinArgs(req.compile_args)))] : null,
        h('dt', null, 'Limits'), h('dd', { id: 'job-limits' }, limits)),
      req.tests?.length ? null : h('h3', null, 'Standard input'),
      req.tests?.length ? null : h('pre', { id: 'job-stdin', class: 'out' + (req.stdin ? '' : ' empty'), 'aria-label': 'Standard input' },
        req.stdin ? text(req.stdin, req.stdin_encoding) : '(no standard input)'));
  }

  function watch(id: string): void {
    const es = new EventSource(`/api/v1/jobs/${encodeURIComponent(id)}/events`);
    stream = es;
    es.addEventListener('state', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job) show(d.job);
    });
    es.addEventListener('output', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      output.append(d.stream === 'stderr' ? 'stderr' : 'stdout', text(d.data, d.encoding));
    });
    es.addEventListener('end', (e) => {
      es.close();
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job) show(d.job);
    });
  }

  /** A shared job has no event stream (that needs a session): it is read again until done. */
  async function poll(): Promise<void> {
    try {
      const j = await get<Job>(opts.url);
      if (!alive) return;
      show(j);
      if (isTerminal(j)) return;
    } catch { /* tried again */ }
    if (alive) timer = window.setTimeout(poll, SHARED_POLL);
  }

  async function load(): Promise<void> {
    try {
      const j = await get<Job>(opts.url);
      if (!alive) return;
      build(j);
      if (!isTerminal(j)) {
        output.reset('Waiting for output…');
        if (opts.shared) timer = window.setTimeout(poll, SHARED_POLL);
        else watch(j.id);
      }
    } catch (e) {
      const err = e as ApiError;
      const missing = opts.shared ? 'This link does not open any job: it may have been withdrawn by its owner.'
        : 'There is no such job (or it is not yours).';
      fill(el, h('h1', null, opts.shared ? 'Shared job' : h('span', null, 'Job ', h('code', null, shortId(opts.id)))),
        h('p', { class: 'error', id: 'job-error' }, err.status === 404 ? missing : err.message),
        opts.shared ? null : h('p', null, h('a', { href: '/jobs' }, 'Back to my jobs')));
    }
  }

  async function rerun(): Promise<void> {
    if (!job?.request) return;
    try {
      const j = await post<Job>('/api/v1/jobs', job.request);
      navigate(`/jobs/${encodeURIComponent(j.id)}`);
    } catch (e) {
      toast(`Run again failed: ${(e as Error).message}`);
    }
  }

  function edit(): void {
    if (!job?.request) return;
    openInEditor(job.request);
    navigate('/');
  }

  async function cancel(): Promise<void> {
    try {
      show(await post<Job>(`/api/v1/jobs/${encodeURIComponent(opts.id)}/cancel`));
    } catch (e) {
      toast(`Cancel failed: ${(e as Error).message}`);
    }
  }

  void load();
  return {
    title: opts.shared ? 'Shared job' : `Job ${shortId(opts.id)}`,
    el,
    dispose() {
      alive = false;
      clearTimeout(timer);
      stream?.close();
    },
  };
}
