// Compiler messages and runtime tracebacks read as positions in the code:
// gcc/g++, go and rustc ("file:line:col: error: …"), javac ("File.java:3:
// error: …", the column from its caret line), Python and Node tracebacks.
// Pure functions, so they are tested on real output (diagnostics.test.ts).

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  /** The file name as the tool printed it, without its directory. */
  file: string;
  line: number; // 1-based
  column?: number; // 1-based, when the tool gives one
  severity: Severity;
  message: string;
}

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Files of the toolchain or the runtime, not the user's: never marked. */
function foreign(path: string): boolean {
  return /^(node:|internal\/|<)/.test(path) || /^\/(usr|lib|opt|nix)\//.test(path) ||
    /\/(site-packages|dist-packages|lib\/python[\d.]*|rustlib|go\/src)\//.test(path);
}

function severity(word: string | undefined): Severity {
  if (!word) return 'error';
  if (/warn/i.test(word)) return 'warning';
  if (/note|help|info/i.test(word)) return 'info';
  return 'error';
}

// gcc, g++, clang, go, and javac: path:line[:col]: [severity:] message
const lineCol = /^(?:\.\/)?([^\s:][^:\n]*?):(\d+)(?::(\d+))?:\s*(?:(fatal error|error|warning|note)(?:\[[^\]]*\])?:\s*)?(.+)$/;
// rustc: "error[E0425]: message" then " --> path:line:col"
const rustHead = /^(error|warning|note|help)(?:\[\w+\])?:\s*(.+)$/;
const rustWhere = /^\s*-->\s*([^:\n]+):(\d+):(\d+)/;
// Python: '  File "path", line N, in f' … 'KindError: message'
const pyFrame = /^\s*File "([^"]+)", line (\d+)/;
const pyError = /^(\w+(?:\.\w+)*(?:Error|Exception|Exit|Interrupt|Warning)|[A-Z]\w*):\s?(.*)$/;
// Node: "    at f (path:line:col)" or "    at path:line:col"; "path:line" header
const nodeFrame = /^\s+at (?:.*\()?([^()\s][^()]*?):(\d+):(\d+)\)?$/;
const nodeHead = /^(\/[^:\n]+\.[cm]?[jt]s):(\d+)$/;
const nodeError = /^(\w*(?:Error|Exception)|Uncaught \w+):\s?(.*)$/;

/**
 * Reads the diagnostics in text, the output of a compiler or of a program
 * that died. Positions in files of the toolchain are left out; the same
 * position and message is given once.
 */
export function parseDiagnostics(text: string): Diagnostic[] {
  const lines = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/);
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  const add = (path: string, line: number, column: number | undefined, sev: Severity, message: string) => {
    if (foreign(path) || !(line > 0)) return;
    const d: Diagnostic = { file: basename(path), line, severity: sev, message: message.trim() };
    if (column && column > 0) d.column = column;
    const key = `${d.file}:${d.line}:${d.column ?? ''}:${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  };

  if (lines.some((l) => /^Traceback \(most recent call last\):/.test(l) || pyFrame.test(l))) {
    pythonTraceback(lines, add);
    if (out.length) return out;
  }
  if (lines.some((l) => nodeFrame.test(l)) && lines.some((l) => nodeError.test(l))) {
    nodeTrace(lines, add);
    if (out.length) return out;
  }
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const rh = l.match(rustHead);
    if (rh) {
      // rustc names the place on one of the next lines.
      for (let k = i + 1; k < Math.min(lines.length, i + 4); k++) {
        const w = lines[k].match(rustWhere);
        if (w) {
          add(w[1], +w[2], +w[3], severity(rh[1]), rh[2]);
          break;
        }
      }
      continue;
    }
    const m = l.match(lineCol);
    if (!m || /^\s/.test(l)) continue;
    const [, path, ln, col, sev, msg] = m;
    if (!/\.\w+$/.test(path)) continue; // "In function 'main'" and other prose
    let column = col ? +col : undefined;
    if (!column && /\.java$/.test(path)) column = javacColumn(lines, i);
    add(path, +ln, column, severity(sev), msg);
  }
  return out;
}

/** javac prints the source line, then a caret under the column. */
function javacColumn(lines: string[], i: number): number | undefined {
  const caret = lines[i + 2];
  if (lines[i + 1] === undefined || caret === undefined || !/^\s*\^\s*$/.test(caret)) return undefined;
  return caret.indexOf('^') + 1;
}

type Add = (path: string, line: number, column: number | undefined, sev: Severity, message: string) => void;

/**
 * A Python traceback: its last frame in the user's code is where the
 * error shows, with the exception's line as the message; a SyntaxError's
 * caret gives the column.
 */
function pythonTraceback(lines: string[], add: Add): void {
  let frame: { path: string; line: number; at: number } | null = null;
  let error = '';
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].match(pyFrame);
    if (f) {
      if (!foreign(f[1])) frame = { path: f[1], line: +f[2], at: i };
      continue;
    }
    if (!/^\s/.test(lines[i]) && pyError.test(lines[i])) error = lines[i];
  }
  if (!frame || !error) return;
  let column: number | undefined;
  if (/^(SyntaxError|IndentationError|TabError)/.test(error)) {
    const caret = lines.slice(frame.at + 1, frame.at + 4).find((l) => /^\s*\^+\s*$/.test(l));
    const src = lines[frame.at + 1];
    if (caret && src) column = caret.indexOf('^') - (src.length - src.trimStart().length) + 1;
  }
  add(frame.path, frame.line, column, 'error', error);
}

/** A Node stack trace: the first frame in the user's code. */
function nodeTrace(lines: string[], add: Add): void {
  const error = lines.find((l) => nodeError.test(l)) ?? '';
  for (const l of lines) {
    const f = l.match(nodeFrame);
    if (f && !foreign(f[1])) {
      add(f[1], +f[2], +f[3], 'error', error);
      return;
    }
  }
  const head = lines.map((l) => l.match(nodeHead)).find(Boolean);
  if (head) add(head[1], +head[2], undefined, 'error', error);
}

/**
 * Which editor tab a diagnostic belongs to: the tab of that name, else the
 * main file (a single-file program's name is the catalogue's, main.c or
 * Main.java, which the editor does not show).
 */
export function tabOf(d: Diagnostic, tabs: string[], main: string): string {
  return tabs.includes(d.file) ? d.file : main;
}
