// CodeMirror 6 set up for grappe: the editor of the editor page and the
// read-only source view of a job page.
//
// Content-Security-Policy: CodeMirror computes its styles at run time and
// hands them to the browser through style-mod. In a document, style-mod
// writes them into a <style> element, which our policy (style-src 'self',
// no 'unsafe-inline', no nonce) blocks: the editor would come up unstyled.
// In a shadow root, style-mod uses a constructed stylesheet
// (adoptedStyleSheets) instead, which style-src does not govern. So each
// editor lives in the shadow root of its box, and the policy stays as
// strict as it is. Our own variables (--code-bg, --mono) inherit through
// the shadow boundary. The browser tests fail on any CSP violation.
import { basicSetup } from 'codemirror';
import { Compartment, EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { indentWithTab } from '@codemirror/commands';
import { lintGutter, setDiagnostics, type Diagnostic as LintDiagnostic } from '@codemirror/lint';
import { themedHighlighting } from './highlight';
import { modeOf } from './languages';

/** A problem to mark: 1-based line, and column when known. */
export interface Mark { line: number; column?: number; severity: 'error' | 'warning' | 'info'; message: string }

export interface Code {
  view: EditorView;
  text(): string;
  setText(s: string): void;
  setLanguage(lang: string): Promise<void>;
  /** Marks problems in the gutter and under the code (none: clears). */
  mark(marks: Mark[]): void;
  /** Puts the cursor on a line (and column), scrolled into view, focused. */
  jump(line: number, column?: number): void;
}

const theme = EditorView.theme({
  // Font size and colours come from CSS variables the preferences set.
  '&': { height: '100%', fontSize: 'var(--code-size, 14px)', backgroundColor: 'var(--code-bg)', color: 'var(--text)' },
  '.cm-content': { caretColor: 'var(--text)' },
  '&.cm-focused .cm-cursor': { borderLeftColor: 'var(--text)' },
  '.cm-activeLine': { backgroundColor: 'var(--code-active)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--code-active)' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.45' },
  '.cm-gutters': { backgroundColor: 'var(--code-gutter)', borderRight: '1px solid var(--line)' },
  '&.cm-focused': { outline: '2px solid var(--focus)', outlineOffset: '-2px' },
});

export function createCode(parent: HTMLElement, opts: {
  doc: string;
  lang: string;
  label: string;
  readOnly?: boolean;
  onRun?: () => void;
  onChange?: (text: string) => void;
}): Code {
  const language = new Compartment();
  const extensions = [
    // Above basicSetup, whose default keymap binds Mod-Enter to "insert
    // blank line".
    Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => { opts.onRun?.(); return true; } }])),
    basicSetup,
    // Tab indents; Escape first (then Tab) moves focus out of the editor,
    // as CodeMirror's own accessibility convention has it.
    keymap.of([indentWithTab]),
    lintGutter(),
    themedHighlighting,
    theme,
    language.of([]),
    EditorView.contentAttributes.of({ 'aria-label': opts.label }),
    EditorView.updateListener.of((u) => {
      if (u.docChanged) opts.onChange?.(u.state.doc.toString());
    }),
  ];
  if (opts.readOnly) extensions.push(EditorState.readOnly.of(true), EditorView.editable.of(false));
  const shadow = parent.attachShadow({ mode: 'open' });
  const inner = document.createElement('div');
  inner.style.height = '100%'; // CSSOM, not a style attribute: the CSP allows it
  shadow.append(inner);
  const view = new EditorView({ parent: inner, root: shadow, state: EditorState.create({ doc: opts.doc, extensions }) });

  // Modes load asynchronously; a quick second switch must not be
  // overtaken by the first one's late arrival.
  let generation = 0;
  const code: Code = {
    view,
    text: () => view.state.doc.toString(),
    setText(s: string) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: s } });
    },
    async setLanguage(lang: string) {
      const g = ++generation;
      const ext = await modeOf(lang).catch(() => []);
      if (g === generation) view.dispatch({ effects: language.reconfigure(ext) });
    },
    mark(marks) {
      const doc = view.state.doc;
      const ds: LintDiagnostic[] = [];
      for (const m of marks) {
        if (m.line < 1 || m.line > doc.lines) continue;
        const line = doc.line(m.line);
        const from = m.column ? Math.min(line.from + m.column - 1, line.to) : line.from;
        // A column marks the word there; a line alone, the whole line.
        const word = m.column ? /^[\w$]+/.exec(doc.sliceString(from, line.to))?.[0].length ?? 1 : line.length;
        ds.push({ from, to: Math.min(line.to, from + Math.max(word, 1)), severity: m.severity, message: m.message });
      }
      view.dispatch(setDiagnostics(view.state, ds));
    },
    jump(line, column) {
      const doc = view.state.doc;
      const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
      const pos = column ? Math.min(l.from + column - 1, l.to) : l.from;
      view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
      view.focus();
    },
  };
  void code.setLanguage(opts.lang);
  return code;
}
