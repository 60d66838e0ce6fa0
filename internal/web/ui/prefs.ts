// The reader's preferences, remembered in this browser: a dark theme and
// the code's font size. The theme is a class on <html> (style.css swaps
// its colour variables); the size, a CSS variable the editor reads.
import { h } from './dom';

export interface Prefs { theme: 'light' | 'dark'; fontSize: number }

const KEY = 'grappe.prefs';
export const FONT_SIZES = [12, 13, 14, 16, 18, 20];

export function loadPrefs(): Prefs {
  const p: Prefs = { theme: matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light', fontSize: 14 };
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}');
    if (saved.theme === 'dark' || saved.theme === 'light') p.theme = saved.theme;
    if (FONT_SIZES.includes(saved.fontSize)) p.fontSize = saved.fontSize;
  } catch { /* defaults */ }
  return p;
}

export function applyPrefs(p: Prefs): void {
  document.documentElement.classList.toggle('theme-dark', p.theme === 'dark');
  // CSSOM, not a style attribute: the Content-Security-Policy allows it.
  document.documentElement.style.setProperty('--code-size', `${p.fontSize}px`);
}

export function savePrefs(p: Prefs): void {
  applyPrefs(p);
  try { localStorage.setItem(KEY, JSON.stringify(p)); } catch { /* not remembered */ }
}

const shortcuts: [string, string][] = [
  ['Ctrl-Enter (⌘-Enter)', 'Run the program, from anywhere on the page'],
  ['Tab / Shift-Tab', 'Indent / unindent in the editor'],
  ['Escape, then Tab', 'Leave the editor (move the focus on)'],
  ['Ctrl-F', 'Find in the code'],
  ['Ctrl-Z / Ctrl-Shift-Z', 'Undo / redo'],
  ['Ctrl-/', 'Comment or uncomment the lines'],
  ['Alt-↑ / Alt-↓', 'Move the line up / down'],
  ['Ctrl-]', 'Indent more'],
];

/** The controls of the editor's toolbar: theme, font size, shortcuts. */
export function prefsControls(): HTMLElement {
  const p = loadPrefs();
  const theme = h('button', {
    type: 'button', id: 'theme-toggle', class: 'secondary', 'aria-pressed': p.theme === 'dark' ? 'true' : 'false',
    title: 'Dark or light colours, remembered in this browser',
  }, 'Dark theme');
  theme.addEventListener('click', () => {
    p.theme = p.theme === 'dark' ? 'light' : 'dark';
    theme.setAttribute('aria-pressed', p.theme === 'dark' ? 'true' : 'false');
    savePrefs(p);
  });
  const size = h('select', { id: 'font-size', 'aria-label': 'Font size of the code' },
    FONT_SIZES.map((n) => h('option', { value: n, selected: n === p.fontSize }, `${n} px`)));
  size.addEventListener('change', () => { p.fontSize = Number(size.value); savePrefs(p); });
  const keys = h('button', { type: 'button', id: 'shortcuts', class: 'secondary', onclick: showShortcuts }, 'Shortcuts');
  return h('div', { class: 'group' }, theme, h('label', { for: 'font-size', class: 'inline' }, 'Size'), size, keys);
}

function showShortcuts(): void {
  const dlg = h('dialog', { id: 'shortcuts-dialog', class: 'dialog', 'aria-labelledby': 'shortcuts-title' },
    h('h2', { id: 'shortcuts-title' }, 'Keyboard shortcuts'),
    h('table', { class: 'keys' }, h('tbody', null, shortcuts.map(([k, what]) => h('tr', null, h('th', null, h('kbd', null, k)), h('td', null, what))))),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'shortcuts-close', onclick: () => { dlg.close(); } }, 'Close')));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}
