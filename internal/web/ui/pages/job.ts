// One job: what was submitted (source, stdin, arguments, limits, tests)
// and everything about its result; live while it runs; run it again or
// load it into the editor.
import { get, isTerminal, post, text, ApiError, type Job } from '../api';
import { navigate, state, toast, type Page } from '../app';
import { createCode } from '../code';
import { fill, h, type Child } from '../dom';
import { between, joinArgs, ms, shortId, when } from '../format';
import { labelOf } from '../languages';
import { badge, outputNodes, renderResult } from '../result';
import { openInEditor } from './editor';

export function jobPage(id: string): Page {
  const el = h('section', { class: 'page job-page' }, h('p', { class: 'muted' }, 'Loading…'));
  let stream: EventSource | null = null;
  let alive = true;
  let job: Job | null = null;
  // Parts rebuilt as the job progresses; the source view is built once.
  const head = h('div', { class: 'page-head' });
  const meta = h('dl', { class: 'facts wide', id: 'job-meta' });
  const resultBox = h('div', { id: 'result-box' });
  const output = h('pre', { id: 'job-output', class: 'out', tabindex: '0', 'aria-label': 'Program output' });

  function renderHead(j: Job): void {
    fill(head,
      h('h1', null, 'Job ', h('code', { class: 'job-id' }, j.id), ' ', h('span', { id: 'job-status' }, badge(j))),
      h('div', { class: 'group' },
        isTerminal(j) ? null : h('button', { id: 'cancel-job', type: 'button', class: 'danger', onclick: cancel }, 'Cancel'),
        j.request ? h('button', { id: 'open-in-editor', type: 'button', class: 'secondary', onclick: edit }, 'Open in editor') : null,
        j.request ? h('button', { id: 'rerun', type: 'button', onclick: rerun }, 'Run again') : null));
    const row = (k: string, v: Child) => [h('dt', null, k), h('dd', null, v)];
    fill(meta,
      state.session?.role === 'admin' ? row('Owner', j.owner) : null,
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
    fill(resultBox, renderResult(j));
    if (isTerminal(j)) {
      const nodes = outputNodes(j);
      output.classList.toggle('empty', !nodes.length);
      if (nodes.length) output.replaceChildren(...nodes);
      else output.textContent = j.tests?.length ? '(see the test results)' : '(no output)';
    }
  }

  function build(j: Job): void {
    const req = j.request;
    const files = req?.source !== undefined && req.source !== '' ? [{ name: 'source', content: req.source, encoding: '' }]
      : (req?.files ?? []).map((f) => ({ name: f.name, content: f.content, encoding: f.encoding ?? '' }));
    const sources = files.map((f) => {
      const box = h('div', { class: 'code-box readonly' });
      createCode(box, {
        doc: f.encoding === 'base64' ? `[binary file, base64]\n${f.content}` : f.content,
        lang: j.language, label: `Source ${f.name}`, readOnly: true,
      });
      return h('section', { class: 'source' }, files.length > 1 ? h('h3', null, h('code', null, f.name)) : null, box);
    });
    fill(el,
      head,
      meta,
      h('div', { class: 'job-grid' },
        h('div', null,
          h('h2', null, 'Source'),
          h('div', { id: 'job-source' }, sources.length ? sources : h('p', { class: 'muted' }, 'The submission is not available.'))),
        h('div', null,
          h('h2', null, 'Result'),
          resultBox,
          h('h2', null, 'Output'),
          output,
          req ? inputs(j) : null)));
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
        h('dt', null, 'Limits'), h('dd', { id: 'job-limits' }, limits)),
      req.tests?.length ? null : h('h3', null, 'Standard input'),
      req.tests?.length ? null : h('pre', { id: 'job-stdin', class: 'out' + (req.stdin ? '' : ' empty'), 'aria-label': 'Standard input' },
        req.stdin ? text(req.stdin, req.stdin_encoding) : '(no standard input)'),
      req.tests?.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'job-tests' },
        h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Input'), h('th', null, 'Expected output'))),
        h('tbody', null, req.tests.map((t, i) => h('tr', null,
          h('td', null, String(i + 1)),
          h('td', null, h('pre', { class: 'cell-out' }, text(t.stdin, t.stdin_encoding))),
          h('td', null, h('pre', { class: 'cell-out' }, t.expected_output ?? '(not checked)'))))))) : null);
  }

  function watch(): void {
    const es = new EventSource(`/api/v1/jobs/${encodeURIComponent(id)}/events`);
    stream = es;
    let streamed = false;
    es.addEventListener('state', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job) show(d.job);
    });
    es.addEventListener('output', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      if (!streamed) { output.replaceChildren(); output.classList.remove('empty'); streamed = true; }
      output.append(h('span', { class: d.stream === 'stderr' ? 'stderr' : 'stdout' }, text(d.data, d.encoding)));
    });
    es.addEventListener('end', (e) => {
      es.close();
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job) show(d.job);
    });
  }

  async function load(): Promise<void> {
    try {
      const j = await get<Job>(`/api/v1/jobs/${encodeURIComponent(id)}`);
      if (!alive) return;
      build(j);
      if (!isTerminal(j)) {
        output.textContent = 'Waiting for output…';
        output.classList.add('empty');
        watch();
      }
    } catch (e) {
      const err = e as ApiError;
      fill(el, h('h1', null, 'Job ', h('code', null, shortId(id))),
        h('p', { class: 'error', id: 'job-error' }, err.status === 404 ? 'There is no such job (or it is not yours).' : err.message),
        h('p', null, h('a', { href: '/jobs' }, 'Back to my jobs')));
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
      show(await post<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`));
    } catch (e) {
      toast(`Cancel failed: ${(e as Error).message}`);
    }
  }

  void load();
  return {
    title: `Job ${shortId(id)}`,
    el,
    dispose() {
      alive = false;
      stream?.close();
    },
  };
}
