// Syntax colours that follow the page's theme: CodeMirror's default
// highlight style with its colours read from CSS variables (style.css
// sets them for the light and the dark theme), so switching the theme
// needs nothing of the editors.
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';

const v = (name: string) => `var(--hl-${name})`;

export const themedHighlighting = syntaxHighlighting(HighlightStyle.define([
  { tag: t.meta, color: v('meta') },
  { tag: t.link, textDecoration: 'underline' },
  { tag: t.heading, textDecoration: 'underline', fontWeight: 'bold' },
  { tag: t.emphasis, fontStyle: 'italic' },
  { tag: t.strong, fontWeight: 'bold' },
  { tag: t.strikethrough, textDecoration: 'line-through' },
  { tag: t.keyword, color: v('keyword') },
  { tag: [t.atom, t.bool, t.url, t.contentSeparator, t.labelName], color: v('atom') },
  { tag: [t.literal, t.inserted], color: v('literal') },
  { tag: [t.string, t.deleted], color: v('string') },
  { tag: [t.regexp, t.escape, t.special(t.string)], color: v('escape') },
  { tag: t.definition(t.variableName), color: v('definition') },
  { tag: t.local(t.variableName), color: v('local') },
  { tag: [t.typeName, t.namespace], color: v('type') },
  { tag: t.className, color: v('class') },
  { tag: [t.special(t.variableName), t.macroName], color: v('macro') },
  { tag: t.definition(t.propertyName), color: v('property') },
  { tag: t.comment, color: v('comment') },
  { tag: t.invalid, color: v('invalid') },
]));
