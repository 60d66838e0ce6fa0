// The editor page: pick a language, write or open a program (several files
// in tabs), give it stdin (typed or from a file), arguments, compile flags,
// limits and test cases, run it (button or Ctrl-Enter) and watch its output
// arrive live over Server-Sent Events, then its verdict, which limit it hit
// and the problems in the code, marked in the editor.
//
// The page is built once per login and kept while the user visits other
// pages, so the program, the output and a job still running survive the
// trip; the draft is also saved in localStorage for the next visit.
import { get, isTerminal, post, text, ApiError, type Job, type JobRequest, type Language, type LanguageList, type Limits } from '../api';
import { every, state, toast, type Page } from '../app';
import { createCode, type Code } from '../code';
import { field, fill, h } from '../dom';
import { createFileTabs, type ExtraFile } from '../filetabs';
import { joinArgs, ms, shortId, splitArgs } from '../format';
import { labelOf, languageOfFile, languages as known, sampleOf } from '../languages';
import { createLimitsForm } from '../limits';
import { createOutput, runToShow } from '../output';
import { prefsControls } from '../prefs';
import { badge, diagnosticsOf, progress, renderResult } from '../result';
import { createInteractivePane } from '../terminal';
import { renderTests } from '../testcases';
import { createTestInputs } from '../testinputs';

interface Draft {
  lang: string;
  version: string;
  sources: Record<string, string>;
  files: Record<string, ExtraFile[]>; // extra files, per language
  stdin: string;
  args: string;
  compileArgs: string;
  limits: Limits;
  tests: { stdin: string; expected: string }[];
}

const MAX_FILE = 4 << 20; // an opened source or stdin file

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
  const d: Draft = { lang: 'python', version: '', sources: {}, files: {}, stdin: '', args: '', compileArgs: '', limits: {}, tests: [] };
  try {
    Object.assign(d, JSON.parse(localStorage.getItem(draftKey()) ?? '{}'));
  } catch { /* a corrupt draft is dropped */ }
  return d;
}

/** The catalogue's name of a language's main file, as compilers print it. */
function mainFileName(lang: string): string {
  const ext = known[lang]?.extensions[0] ?? '';
  return lang === 'java' ? 'Main.java' : `main${ext}`;
}

function build(): Page & { destroy(): void } {
  const draft = loadDraft();
  let languages: Language[] = [];
  let job: Job | null = null; // the job of the last Run
  let stream: EventSource | null = null;
  let submitting = false;
  let started = 0; // when Run was pressed, for the elapsed-time counter
  let ticker = 0;
  let saveTimer = 0; // the draft is saved a moment after the last change

  // --- controls -----------------------------------------------------------
  const langSel = h('select', { id: 'language', 'aria-label': 'Language' });
  const versionSel = h('select', { id: 'version', 'aria-label': 'Version' });
  const fileInput = h('input', { id: 'open-file', type: 'file', class: 'visually-hidden' });
  const fileName = h('span', { id: 'file-name', class: 'muted small' });
  const runBtn = h('button', { id: 'run', type: 'button', title: 'Run (Ctrl-Enter)' }, 'Run');
  const cancelBtn = h('button', { id: 'cancel', type: 'button', class: 'secondary', hidden: true }, 'Cancel');
  const stdin = h('textarea', { id: 'stdin', rows: 4, spellcheck: 'false', placeholder: 'Input given to the program' });
  const stdinFile = h('input', { id: 'stdin-file', type: 'file', class: 'visually-hidden' });
  const args = h('input', { id: 'args', spellcheck: 'false', placeholder: 'arg1 "arg 2"' });
  const compileArgs = h('input', { id: 'compile-args', spellcheck: 'false', placeholder: '-O2 -Wall' });
  const limits = createLimitsForm();
  const tests = createTestInputs(() => save());
  const langWarning = h('p', { id: 'no-languages', class: 'warn', hidden: true });

  // --- output -------------------------------------------------------------
  const status = h('div', { id: 'run-status', class: 'run-status', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Not run yet. Ctrl-Enter runs the program.'));
  const elapsed = h('span', { id: 'elapsed', class: 'elapsed', hidden: true });
  const resultBox = h('div', { id: 'result-box' });
  // Test case results need room: full width, under the editor and the side.
  const testsBox = h('div', { id: 'tests-box', class: 'tests-box' });
  const output = createOutput('output', 'Program output', () => (job ? `job-${job.id.slice(-8)}` : 'output'));
  output.reset('The output appears here as the program writes it.');
  // Interactive runs show a terminal instead of the output view.
  const term = createInteractivePane((on) => { output.el.hidden = on; stdin.disabled = on; });
  const outputPanel = h('section', { class: 'panel output-panel', id: 'output-panel', 'aria-label': 'Result' },
    h('h2', null, 'Output'), status, resultBox, term.el, output.el);

  const editorBox = h('div', { id: 'editor', class: 'code-box' });
  const code: Code = createCode(editorBox, {
    doc: draft.sources[draft.lang] ?? sampleOf(draft.lang),
    lang: draft.lang,
    label: 'Program source',
    onRun: () => void run(),
    onChange: (s) => { files.edited(s); save(); },
  });
  const files = createFileTabs(code, () => mainFileName(draft.lang), () => save());
  files.load(draft.sources[draft.lang] ?? sampleOf(draft.lang), draft.files[draft.lang] ?? []);

  stdin.value = draft.stdin;
  args.value = draft.args;
  compileArgs.value = draft.compileArgs;
  limits.set(draft.limits);
  tests.load(draft.tests);

  // --- draft --------------------------------------------------------------
  function saveNow(): void {
    clearTimeout(saveTimer);
    saveTimer = 0;
    draft.sources[draft.lang] = files.main();
    draft.files[draft.lang] = files.extra();
    draft.stdin = stdin.value;
    draft.args = args.value;
    draft.compileArgs = compileArgs.value;
    draft.limits = limits.read();
    draft.tests = tests.read();
    try { localStorage.setItem(draftKey(), JSON.stringify(draft)); } catch { /* full or disabled */ }
  }
  function save(): void {
    clearTimeout(saveTimer);
    saveTimer = window.setTimeout(saveNow, 300);
  }
  // A reload or a closed tab must not lose the last keystrokes.
  const flush = () => { if (saveTimer) saveNow(); };
  window.addEventListener('pagehide', flush);
  for (const el of [stdin, args, compileArgs]) el.addEventListener('input', save);
  limits.onInput(save);

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
    const list = await get<LanguageList>('/api/v1/languages');
    // Rebuilding the menus would close one the user has open: only on change.
    const seen = JSON.stringify(list);
    if (seen === languagesSeen) return;
    languagesSeen = seen;
    languages = list.languages;
    limits.setRange(list.limits);
    fillLanguages();
  }

  function switchLanguage(lang: string, source?: string, extra?: ExtraFile[]): void {
    // draft.lang, not the menu: on a change event the menu shows the new one already.
    draft.sources[draft.lang] = files.main();
    draft.files[draft.lang] = files.extra();
    draft.lang = lang;
    langSel.value = lang;
    void code.setLanguage(lang);
    files.load(source ?? draft.sources[lang] ?? sampleOf(lang), extra ?? draft.files[lang] ?? []);
    fillLanguages();
    save();
  }
  langSel.addEventListener('change', () => { fileName.textContent = ''; switchLanguage(langSel.value); });
  versionSel.addEventListener('change', () => { draft.version = versionSel.value; save(); });

  fileInput.addEventListener('change', async () => {
    const f = fileInput.files?.[0];
    if (!f) return;
    fileInput.value = '';
    if (f.size > MAX_FILE) {
      toast(`${f.name} is over 4 MB; that is not a source file.`);
      return;
    }
    const guess = languageOfFile(f.name);
    const content = await f.text();
    switchLanguage(guess || langSel.value, content);
    fileName.textContent = f.name + (guess ? '' : ' (language not recognised: pick it)');
  });
  stdinFile.addEventListener('change', async () => {
    const f = stdinFile.files?.[0];
    if (!f) return;
    stdinFile.value = '';
    if (f.size > MAX_FILE) {
      toast(`${f.name} is over 4 MB: too large for standard input here.`);
      return;
    }
    stdin.value = await f.text();
    save();
    toast(`Standard input read from ${f.name}.`, 'info');
  });

  // --- running ------------------------------------------------------------
  function request(): JobRequest {
    const req: JobRequest = { language: langSel.value, source: files.main(), limits: limits.read() };
    const extra = files.extra();
    if (extra.length) req.files = extra.map((f) => ({ name: f.name, content: f.content }));
    if (versionSel.value) req.version = versionSel.value;
    const a = splitArgs(args.value);
    if (a.length) req.args = a;
    const ca = splitArgs(compileArgs.value);
    if (ca.length) req.compile_args = ca;
    const t = tests.read();
    if (term.enabled()) {
      req.interactive = true; // stdin is typed in the terminal; no test cases
    } else if (t.length) {
      req.tests = t.map((c) => ({ stdin: c.stdin, expected_output: c.expected === '' ? null : c.expected }));
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
    if (!limits.validate()) {
      fill(status, h('span', { class: 'error', id: 'submit-error' }, 'A limit is refused: see Limits.'));
      (document.getElementById('limits-panel') as HTMLDetailsElement).open = true;
      return;
    }
    submitting = true;
    runBtn.disabled = true;
    resetOutput();
    fill(status, h('span', { class: 'muted' }, 'Submitting…'));
    revealResult();
    try {
      job = await post<Job>('/api/v1/jobs', request());
    } catch (e) {
      const err = e as ApiError;
      const placed = err.status === 422 && limits.explain(err.message);
      if (placed) (document.getElementById('limits-panel') as HTMLDetailsElement).open = true;
      fill(status, h('span', { class: 'error', id: 'submit-error' },
        err.status === 0 ? 'The master cannot be reached.' : placed ? 'A limit is refused: see Limits.' : err.message));
      runBtn.disabled = false;
      return;
    } finally {
      submitting = false;
    }
    started = Date.now();
    show(job);
    watch(job.id);
    if (job.interactive) void term.attach(job.id);
  }

  /** On a phone the result is below the editor: bring it into view. */
  function revealResult(): void {
    if (!matchMedia('(max-width: 960px)').matches) return;
    const top = outputPanel.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.3 || top < 0) outputPanel.scrollIntoView({ block: 'start' });
  }

  function resetOutput(): void {
    stream?.close();
    stream = null;
    output.reset();
    resultBox.replaceChildren();
    testsBox.replaceChildren();
    term.reset();
    files.mark([]);
  }

  function tick(): void {
    const done = !job || isTerminal(job);
    elapsed.hidden = done;
    if (done) {
      clearInterval(ticker);
      ticker = 0;
      return;
    }
    elapsed.textContent = `${job!.status === 'queued' ? 'waiting' : 'running'} for ${ms(Math.floor((Date.now() - started) / 100) * 100)}`;
  }

  /** Shows a job's state: progress while it runs, everything at the end. */
  function show(j: Job): void {
    job = j;
    const done = isTerminal(j);
    runBtn.disabled = !done;
    cancelBtn.hidden = done;
    const link = h('a', { href: `/jobs/${encodeURIComponent(j.id)}`, id: 'job-link' }, `job ${shortId(j.id)}`);
    // While it runs the status line says where the job is, and for how
    // long; at the end the result says it, and the line keeps the link.
    if (!done) {
      fill(status, badge(j), ' ', h('span', { id: 'run-progress' }, progress(j)), ' ', elapsed, ' · ', link);
      if (!ticker) ticker = window.setInterval(tick, 100);
      tick();
      return;
    }
    tick();
    fill(status, link, ` · took ${ms(Date.now() - started)}`);
    const pick = (i?: number) => {
      const { run: r, note } = runToShow(j, i);
      output.showRun(r, note);
    };
    // The stream may have missed chunks (a reconnection) or shown them
    // interleaved; when it disagrees with the final result, or when the
    // box is to show one test case, show the final result.
    const r = j.run;
    const seen = output.shownChars();
    if (j.tests?.length || (r && (r.stdout_encoding || r.stderr_encoding ||
      text(r.stdout, r.stdout_encoding).length !== seen.stdout || text(r.stderr, r.stderr_encoding).length !== seen.stderr))) {
      pick();
    } else if (!seen.stdout && !seen.stderr) {
      output.empty(j.status === 'done' ? '(no output)' : '');
    }
    const ds = diagnosticsOf(j);
    files.mark(ds);
    fill(resultBox, renderResult(j, { showCase: pick, jump: (d) => files.jump(d), testsApart: true }));
    fill(testsBox, j.tests?.length ? renderTests(j, pick) : null);
    revealResult();
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
      if (job?.id === id) output.append(d.stream === 'stderr' ? 'stderr' : 'stdout', text(d.data, d.encoding));
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
      prefsControls(),
      h('div', { class: 'group end' }, term.toggle, cancelBtn, runBtn)),
    langWarning,
    h('div', { class: 'workspace' },
      h('div', { class: 'code-column' }, files.el, editorBox),
      h('div', { class: 'side' },
        h('section', { class: 'panel' },
          field('Standard input', stdin),
          h('div', { class: 'group stdin-file' },
            h('label', { for: 'stdin-file', class: 'button secondary small', id: 'stdin-file-label' }, 'Read stdin from a file…'), stdinFile),
          field('Arguments', args, 'Split like a shell: quotes group words.'),
          field('Compile flags', compileArgs, 'For compiled languages, e.g. -O2 -Wall; the cluster accepts a list of safe flags.')),
        h('details', { class: 'panel', id: 'limits-panel' },
          h('summary', null, 'Limits'),
          limits.el,
          h('p', { class: 'hint' }, 'Empty means the cluster\'s default.')),
        tests.el,
        outputPanel)),
    testsBox);

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
        const main = req.source ?? req.files?.[0]?.content ?? '';
        const extra = (req.source ? req.files ?? [] : req.files?.slice(1) ?? []).map((f) => ({ name: f.name, content: text(f.content, f.encoding) }));
        switchLanguage(req.language, main, extra);
        versionSel.value = req.version ?? '';
        stdin.value = req.stdin ? text(req.stdin, req.stdin_encoding) : '';
        args.value = joinArgs(req.args);
        compileArgs.value = joinArgs(req.compile_args);
        limits.set(req.limits);
        tests.load((req.tests ?? []).map((t) => ({ stdin: text(t.stdin, t.stdin_encoding), expected: t.expected_output ?? '' })));
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
      flush();
      window.removeEventListener('pagehide', flush);
      stream?.close();
      stream = null;
      term.close();
      clearInterval(ticker);
      job = null; // ends a polling loop
    },
  };
}
