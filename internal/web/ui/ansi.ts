// ANSI colour codes (SGR escape sequences) in program output, read into
// runs of text with classes (style.css colours them). Text stays text: the
// runs go into the page through textContent, so output cannot inject
// markup, and class names come from a fixed set, never from the output.
// Other escape sequences (cursor moves, erasing) are dropped.

export interface Run { text: string; classes: string[] }

interface Style { bold: boolean; dim: boolean; italic: boolean; underline: boolean; fg: string; bg: string }

const plain = (): Style => ({ bold: false, dim: false, italic: false, underline: false, fg: '', bg: '' });

// Any CSI sequence, or a lone ESC with one character (ESC c, ESC 7…).
const escape = /\x1b(?:\[([0-9;:?]*)([@-~])|[^[])/g;

/** 256-colour and truecolour codes are mapped to the nearest of the 16. */
function nearest16(r: number, g: number, b: number): number {
  const bright = Math.max(r, g, b) > 191 ? 8 : 0;
  const bit = (v: number) => (v > 95 ? 1 : 0);
  const base = bit(r) | (bit(g) << 1) | (bit(b) << 2);
  return base === 0 && Math.max(r, g, b) > 63 ? 8 : base + bright;
}

function color256(n: number): number {
  if (n < 16) return n;
  if (n >= 232) return n < 244 ? 8 : 7; // grey ramp
  const c = n - 16;
  const v = (k: number) => [0, 95, 135, 175, 215, 255][k];
  return nearest16(v(Math.floor(c / 36)), v(Math.floor(c / 6) % 6), v(c % 6));
}

function apply(style: Style, params: string): void {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(style, plain());
    else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 22) style.bold = style.dim = false;
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c >= 30 && c <= 37) style.fg = String(c - 30);
    else if (c >= 90 && c <= 97) style.fg = String(c - 90 + 8);
    else if (c === 39) style.fg = '';
    else if (c >= 40 && c <= 47) style.bg = String(c - 40);
    else if (c >= 100 && c <= 107) style.bg = String(c - 100 + 8);
    else if (c === 49) style.bg = '';
    else if (c === 38 || c === 48) {
      let n = -1;
      if (codes[i + 1] === 5) { n = color256(codes[i + 2] ?? 0); i += 2; }
      else if (codes[i + 1] === 2) { n = nearest16(codes[i + 2] ?? 0, codes[i + 3] ?? 0, codes[i + 4] ?? 0); i += 4; }
      if (n >= 0) { if (c === 38) style.fg = String(n); else style.bg = String(n); }
    }
  }
}

function classesOf(s: Style): string[] {
  const cls: string[] = [];
  if (s.bold) cls.push('ansi-bold');
  if (s.dim) cls.push('ansi-dim');
  if (s.italic) cls.push('ansi-italic');
  if (s.underline) cls.push('ansi-underline');
  if (s.fg) cls.push(`ansi-fg-${s.fg}`);
  if (s.bg) cls.push(`ansi-bg-${s.bg}`);
  return cls;
}

/**
 * Splits text into runs of one style. A stream read in chunks keeps its
 * style from one chunk to the next through state (pass the same object).
 */
export function parseAnsi(text: string, state: Style = plain()): Run[] {
  // Most output has no colour at all: one run, no regular expression.
  if (!text.includes('\x1b') && classesOf(state).length === 0) return text ? [{ text, classes: [] }] : [];
  const runs: Run[] = [];
  let last = 0;
  const push = (s: string) => {
    if (!s) return;
    const classes = classesOf(state);
    const prev = runs[runs.length - 1];
    if (prev && prev.classes.join() === classes.join()) prev.text += s;
    else runs.push({ text: s, classes });
  };
  for (const m of text.matchAll(escape)) {
    push(text.slice(last, m.index));
    last = m.index! + m[0].length;
    if (m[2] === 'm') apply(state, m[1] ?? '');
  }
  push(text.slice(last));
  return runs;
}

/** A fresh style state for parseAnsi, one per stream. */
export const newAnsiState = plain;
