// The editor page: pick a language, write or open a program, give it
// stdin, arguments, limits and test cases, run it (button or Ctrl-Enter)
// and watch its output arrive live over Server-Sent Events, then its
// verdict and figures.
//
// The page is built once per login and kept while the user visits other
// pages, so the program, the output and a job still running survive the
// trip; the draft is also saved in localStorage for the next visit.
import { get, isTerminal, post, text, ApiError, type Job, type JobRequest, type Language, type Limits } from '../api';
import { every, state, toast, type Page } from '../app';
import { createCode, type Code } from '../code';
import { field, fill, h } from '../dom';
import { joinArgs, shortId, splitArgs } from '../format';
import { labelOf, languageOfFile, sampleOf } from '../languages';
import { badge, outputNodes, progress, renderResult } from '../result';
import { createInteractivePane } from '../terminal';

interface Draft {
  lang: string;
  version: string;
  sources: Record<string, string>;
  stdin: string;
  args: string;
  limits: Limits;
  tests: { stdin: string; expected: string }[];
}

const MAX_VIEW_CHARS = 2_000_000; // beyond this the live view stops growing (the job keeps all)

let kept: (Page & { destroy(): void }) | null = null;
let pending: JobRequest | null = null;

/** Drops the kept page (at logout: the next user starts afresh). */
export function forgetEditor(): void {
  kept?.destroy();
  kept = null;
}

/** Loads a submission into the editor (the job page's "Open in editor"). */
export function openInEditor(req: JobRequest): void {
  pending = req;
}

export function editorPage(): Page {
  if (!kept) kept = build();
  return kept;
}

function draftKey(): string {
  return 'grappe.draft.' + (state.session?.username ?? '');
}

function loadDraft(): Draft {
  const d: Draft = { lang: 'python', version: '', sources: {}, stdin: '', args: '', limits: {}, tests: [] };
  try {
    Object.assign(d, JSON.parse(localStorage.getItem(draftKey()) ?? '{}'));
  } catch { /* a corrupt draft is dropped */ }
  return d;
}

function build(): Page & { destroy(): void } {
  const draft = loadDraft();
  let languages: Language[] = [];
  let job: Job | null = null; // the job of the last Run
  let stream: EventSource | null = null;
  let submitting = false;

  // --- controls -----------------------------------------------------------
  const langSel = h('select', { id: 'language', 'aria-label': 'Language' });
  const versionSel = h('select', { id: 'version', 'aria-label': 'Version' });
  const fileInput = h('input', { id: 'open-file', type: 'file', class: 'visually-hidden' });
  const fileName = h('span', { id: 'file-name', class: 'muted small' });
  const runBtn = h('button', { id: 'run', type: 'button', title: 'Run (Ctrl-Enter)' }, 'Run');
  const cancelBtn = h('button', { id: 'cancel', type: 'button', class: 'secondary', hidden: true }, 'Cancel');
  const stdin = h('textarea', { id: 'stdin', rows: 4, spellcheck: 'false', placeholder: 'Input given to the program' });
  const args = h('input', { id: 'args', spellcheck: 'false', placeholder: 'arg1 "arg 2"' });
  const limit = (id: string, placeholder: string) =>
    h('input', { id, type: 'number', min: 1, step: 1, inputmode: 'numeric', placeholder });
  const cpu = limit('limit-cpu', '5000');
  const wall = limit('limit-wall', '10000');
  const mem = limit('limit-memory', '256');
  const out = limit('limit-output', '1024');
  const testsList = h('div', { id: 'tests-list', class: 'tests-list' });
  const testsSummary = h('summary', null, 'Test cases');
  const testsPanel = h('details', { id: 'tests-panel', class: 'panel' }, testsSummary,
    h('p', { class: 'hint' }, 'With test cases the program is compiled once and run once per case (the stdin above is then not used). An empty expected output is not checked.'),
    testsList,
    h('button', { id: 'add-test', type: 'button', class: 'secondary small', onclick: () => { addTest('', ''); save(); } }, 'Add test case'));
  const langWarning = h('p', { id: 'no-languages', class: 'warn', hidden: true });

  // --- output -------------------------------------------------------------
  const status = h('div', { id: 'run-status', class: 'run-status', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Not run yet. Ctrl-Enter runs the program.'));
  const output = h('pre', { id: 'output', class: 'out empty', tabindex: '0', 'aria-label': 'Program output' }, 'The output appears here as the program writes it.');
  const resultBox = h('div', { id: 'result-box' });
  // Interactive runs show a terminal instead of the output view.
  const term = createInteractivePane((on) => { output.hidden = on; stdin.disabled = on; });
  let shown = { stdout: 0, stderr: 0 }; // characters streamed into the view
  let lastSpan: HTMLElement | null = null;

  const editorBox = h('div', { id: 'editor', class: 'code-box' });
  const code: Code = createCode(editorBox, {
    doc: draft.sources[draft.lang] ?? sampleOf(draft.lang),
    lang: draft.lang,
    label: 'Program source',
    onRun: () => void run(),
    onChange: (s) => { draft.sources[langSel.value || draft.lang] = s; save(); },
  });

  stdin.value = draft.stdin;
  args.value = draft.args;
  cpu.value = draft.limits.cpu_ms ? String(draft.limits.cpu_ms) : '';
  wall.value = draft.limits.wall_ms ? String(draft.limits.wall_ms) : '';
  mem.value = draft.limits.memory_mb ? String(draft.limits.memory_mb) : '';
  out.value = draft.limits.output_kb ? String(draft.limits.output_kb) : '';
  for (const t of draft.tests) addTest(t.stdin, t.expected);

  // --- draft --------------------------------------------------------------
  let saveTimer = 0;
  function save(): void {
    clearTimeout(saveTimer);
    saveTimer = window.setTimeout(() => {
      draft.stdin = stdin.value;
      draft.args = args.value;
      draft.limits = readLimits();
      draft.tests = readTests();
      try { localStorage.setItem(draftKey(), JSON.stringify(draft)); } catch { /* full or disabled */ }
    }, 300);
  }
  for (const el of [stdin, args, cpu, wall, mem, out]) el.addEventListener('input', save);

  function readLimits(): Limits {
    const n = (el: HTMLInputElement) => (el.value && Number(el.value) > 0 ? Math.floor(Number(el.value)) : undefined);
    return { cpu_ms: n(cpu), wall_ms: n(wall), memory_mb: n(mem), output_kb: n(out) };
  }

  function addTest(stdinText: string, expected: string): void {
    const i = testsList.children.length + 1;
    const row = h('fieldset', { class: 'test-case' },
      h('legend', null, `Case ${i}`),
      field('Input', h('textarea', { id: `test-stdin-${i}`, class: 'test-stdin', rows: 2, spellcheck: 'false', value: stdinText, oninput: save })),
      field('Expected output', h('textarea', { id: `test-expected-${i}`, class: 'test-expected', rows: 2, spellcheck: 'false', value: expected, oninput: save })),
      h('button', { type: 'button', class: 'secondary small remove-test', onclick: () => { row.remove(); renumber(); save(); } }, 'Remove'));
    testsList.append(row);
    renumber();
  }
  function renumber(): void {
    Array.from(testsList.children).forEach((row, k) => {
      row.querySelector('legend')!.textContent = `Case ${k + 1}`;
      row.querySelector('.test-stdin')!.id = `test-stdin-${k + 1}`;
      row.querySelector('.test-expected')!.id = `test-expected-${k + 1}`;
      row.querySelectorAll('label').forEach((l, j) => l.setAttribute('for', `test-${j ? 'expected' : 'stdin'}-${k + 1}`));
    });
    const n = testsList.children.length;
    testsSummary.textContent = n ? `Test cases (${n})` : 'Test cases';
    if (n) testsPanel.open = true;
  }
  function readTests(): { stdin: string; expected: string }[] {
    return Array.from(testsList.children).map((row) => ({
      stdin: (row.querySelector('.test-stdin') as HTMLTextAreaElement).value,
      expected: (row.querySelector('.test-expected') as HTMLTextAreaElement).value,
    }));
  }

  // --- languages ----------------------------------------------------------
  function fillLanguages(): void {
    const want = langSel.value || draft.lang;
    const names = languages.map((l) => l.name);
    // Keep the user's language in the list even if no worker runs it
    // right now: it stays selected, and the warning says why it waits.
    if (want && !names.includes(want)) names.push(want);
    fill(langSel, names.map((n) => {
      const l = languages.find((x) => x.name === n);
      return h('option', { value: n }, l ? `${labelOf(n)} (${l.version})` : `${labelOf(n)} (no worker)`);
    }));
    langSel.value = want;
    fillVersions();
    langWarning.hidden = languages.some((l) => l.name === want);
    langWarning.textContent = languages.length
      ? `No connected worker runs ${labelOf(want)} now: a job would wait in the queue.`
      : 'No worker is connected: jobs will wait in the queue until one joins.';
  }
  function fillVersions(): void {
    const l = languages.find((x) => x.name === langSel.value);
    const versions = l?.versions?.length ? l.versions : l ? [l.version] : [];
    const want = versionSel.value || draft.version;
    fill(versionSel,
      h('option', { value: '' }, l ? `any (${l.version})` : 'any'),
      versions.map((v) => h('option', { value: v }, v)));
    versionSel.value = versions.includes(want) ? want : '';
  }
  let languagesSeen = '';
  async function refreshLanguages(): Promise<void> {
    const list = (await get<{ languages: Language[] }>('/api/v1/languages')).languages;
    // Rebuilding the menus would close one the user has open: only on change.
    const seen = JSON.stringify(list);
    if (seen === languagesSeen) return;
    languagesSeen = seen;
    languages = list;
    fillLanguages();
  }

  function switchLanguage(lang: string, source?: string): void {
    draft.sources[draft.lang] = code.text();
    draft.lang = lang;
    langSel.value = lang;
    void code.setLanguage(lang);
    code.setText(source ?? draft.sources[lang] ?? sampleOf(lang));
    fillLanguages();
    save();
  }
  langSel.addEventListener('change', () => { fileName.textContent = ''; switchLanguage(langSel.value); });
  versionSel.addEventListener('change', () => { draft.version = versionSel.value; save(); });

  fileInput.addEventListener('change', async () => {
    const f = fileInput.files?.[0];
    if (!f) return;
    if (f.size > 4 << 20) {
      toast(`${f.name} is over 4 MB; that is not a source file.`);
      return;
    }
    const guess = languageOfFile(f.name);
    const content = await f.text();
    switchLanguage(guess || langSel.value, content);
    fileName.textContent = f.name + (guess ? '' : ' (language not recognised: pick it)');
    fileInput.value = '';
  });

  // --- running ------------------------------------------------------------
  function request(): JobRequest {
    const req: JobRequest = { language: langSel.value, source: code.text(), limits: readLimits() };
    if (versionSel.value) req.version = versionSel.value;
    const a = splitArgs(args.value);
    if (a.length) req.args = a;
    const tests = readTests();
    if (term.enabled()) {
      req.interactive = true; // stdin is typed in the terminal; no test cases
    } else if (tests.length) {
      req.tests = tests.map((t) => ({ stdin: t.stdin, expected_output: t.expected === '' ? null : t.expected }));
    } else if (stdin.value) {
      req.stdin = stdin.value;
    }
    return req;
  }

  async function run(): Promise<void> {
    if (submitting || (job && !isTerminal(job))) return;
    if (!langSel.value) {
      toast('Pick a language first.');
      return;
    }
    submitting = true;
    runBtn.disabled = true;
    resetOutput();
    fill(status, h('span', { class: 'muted' }, 'Submitting…'));
    try {
      job = await post<Job>('/api/v1/jobs', request());
    } catch (e) {
      const err = e as ApiError;
      fill(status, h('span', { class: 'error', id: 'submit-error' }, err.status === 0 ? 'The master cannot be reached.' : err.message));
      runBtn.disabled = false;
      return;
    } finally {
      submitting = false;
    }
    show(job);
    watch(job.id);
    if (job.interactive) void term.attach(job.id);
  }

  function resetOutput(): void {
    stream?.close();
    stream = null;
    output.replaceChildren();
    output.classList.remove('empty');
    resultBox.replaceChildren();
    term.reset();
    shown = { stdout: 0, stderr: 0 };
    lastSpan = null;
  }

  function append(kind: 'stdout' | 'stderr', s: string): void {
    if (!s) return;
    shown[kind] += s.length;
    if (shown.stdout + shown.stderr > MAX_VIEW_CHARS) {
      if (!output.querySelector('.note.cut')) output.append(h('span', { class: 'note cut' }, '\n[the view stops here; the job page has the whole output]'));
      return;
    }
    // Consecutive chunks of one stream share a span.
    if (!lastSpan || !lastSpan.classList.contains(kind)) {
      lastSpan = h('span', { class: kind });
      output.append(lastSpan);
    }
    const last = lastSpan.lastChild;
    if (last instanceof Text) last.appendData(s);
    else lastSpan.append(s);
    // Follow the output while the reader is at the bottom.
    if (output.scrollHeight - output.scrollTop - output.clientHeight < 40) output.scrollTop = output.scrollHeight;
  }

  /** Shows a job's state: progress while it runs, everything at the end. */
  function show(j: Job): void {
    job = j;
    const done = isTerminal(j);
    runBtn.disabled = !done;
    cancelBtn.hidden = done;
    const link = h('a', { href: `/jobs/${encodeURIComponent(j.id)}`, id: 'job-link' }, `job ${shortId(j.id)}`);
    // While it runs the status line says where the job is; at the end the
    // result below says it, and the line keeps the link to the job's page.
    if (!done) {
      fill(status, badge(j), ' ', h('span', { id: 'run-progress' }, progress(j)), ' · ', link);
      return;
    }
    fill(status, link);
    // The stream may have missed chunks (a reconnection) or shown them
    // interleaved; when it disagrees with the final result, show that.
    const r = j.run;
    if (r && (text(r.stdout, r.stdout_encoding).length !== shown.stdout || text(r.stderr, r.stderr_encoding).length !== shown.stderr)) {
      output.replaceChildren(...outputNodes(j));
    }
    if (!output.textContent) {
      output.classList.add('empty');
      output.textContent = j.tests?.length ? '(see the test results below)' : j.status === 'done' ? '(no output)' : '';
    }
    fill(resultBox, renderResult(j));
  }

  function watch(id: string): void {
    stream?.close();
    const es = new EventSource(`/api/v1/jobs/${encodeURIComponent(id)}/events`);
    stream = es;
    es.addEventListener('state', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job && job?.id === id && !isTerminal(job)) show(d.job);
    });
    es.addEventListener('output', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      if (job?.id === id) append(d.stream === 'stderr' ? 'stderr' : 'stdout', text(d.data, d.encoding));
    });
    es.addEventListener('end', (e) => {
      es.close();
      if (stream === es) stream = null;
      const d = JSON.parse((e as MessageEvent).data);
      if (d.job && job?.id === id) show(d.job);
    });
    es.onerror = () => {
      // While the master is away the browser retries by itself; a stream
      // it gave up on (an error status) is replaced by polling.
      if (es.readyState === EventSource.CLOSED && stream === es) {
        stream = null;
        void poll(id);
      }
    };
  }

  async function poll(id: string): Promise<void> {
    while (job?.id === id && !isTerminal(job) && kept) {
      try {
        show(await get<Job>(`/api/v1/jobs/${encodeURIComponent(id)}?wait=true&timeout=20s`));
      } catch {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  runBtn.addEventListener('click', () => void run());
  cancelBtn.addEventListener('click', async () => {
    if (!job) return;
    try {
      show(await post<Job>(`/api/v1/jobs/${encodeURIComponent(job.id)}/cancel`));
    } catch (e) {
      toast(`Cancel failed: ${(e as Error).message}`);
    }
  });

  // Ctrl-Enter (Cmd-Enter) runs from anywhere on the page, not only the editor.
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
      e.preventDefault();
      void run();
    }
  };

  const el = h('section', { class: 'page editor-page' },
    h('h1', { class: 'visually-hidden' }, 'Editor'),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Program' },
      h('div', { class: 'group' },
        h('span', { class: 'pair' }, h('label', { for: 'language', class: 'inline' }, 'Language'), langSel),
        h('span', { class: 'pair' }, h('label', { for: 'version', class: 'inline' }, 'Version'), versionSel)),
      h('div', { class: 'group' },
        h('button', { id: 'sample', type: 'button', class: 'secondary', onclick: () => code.setText(sampleOf(langSel.value)) }, 'Sample'),
        h('label', { for: 'open-file', class: 'button secondary', id: 'open-file-label' }, 'Open file…'), fileInput, fileName),
      h('div', { class: 'group end' }, term.toggle, cancelBtn, runBtn)),
    langWarning,
    h('div', { class: 'workspace' },
      editorBox,
      h('div', { class: 'side' },
        h('section', { class: 'panel' },
          field('Standard input', stdin),
          field('Arguments', args, 'Split like a shell: quotes group words.')),
        h('details', { class: 'panel', id: 'limits-panel' },
          h('summary', null, 'Limits'),
          h('div', { class: 'limits' },
            field('CPU (ms)', cpu), field('Wall (ms)', wall), field('Memory (MB)', mem), field('Output (KB)', out)),
          h('p', { class: 'hint' }, 'Empty means the cluster\'s default.')),
        testsPanel,
        h('section', { class: 'panel output-panel', 'aria-label': 'Result' },
          h('h2', null, 'Output'),
          status,
          term.el,
          output,
          resultBox))));

  const stopLanguages = { stop: () => {} };
  return {
    title: 'Editor',
    el,
    resume() {
      document.addEventListener('keydown', onKey);
      // Refresh the language list while the page is shown: workers come and go.
      stopLanguages.stop = every(10_000, refreshLanguages);
      if (pending) {
        const req = pending;
        pending = null;
        resetOutput();
        fill(status, h('span', { class: 'muted' }, 'Loaded from a job. Ctrl-Enter runs it.'));
        switchLanguage(req.language, req.source ?? req.files?.[0]?.content ?? '');
        versionSel.value = req.version ?? '';
        stdin.value = req.stdin ?? '';
        args.value = joinArgs(req.args);
        cpu.value = req.limits?.cpu_ms ? String(req.limits.cpu_ms) : '';
        wall.value = req.limits?.wall_ms ? String(req.limits.wall_ms) : '';
        mem.value = req.limits?.memory_mb ? String(req.limits.memory_mb) : '';
        out.value = req.limits?.output_kb ? String(req.limits.output_kb) : '';
        testsList.replaceChildren();
        for (const t of req.tests ?? []) addTest(t.stdin, t.expected_output ?? '');
        renumber();
        save();
      }
      // Reattached to the document: let CodeMirror measure itself again.
      code.view.requestMeasure();
      code.view.focus();
    },
    dispose() {
      document.removeEventListener('keydown', onKey);
      stopLanguages.stop();
    },
    destroy() {
      this.dispose!();
      stream?.close();
      stream = null;
      term.close();
      job = null; // ends a polling loop
    },
  };
}
