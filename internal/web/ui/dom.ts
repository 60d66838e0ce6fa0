// A tiny element builder. Every text goes in through textContent (never
// innerHTML), so program output, file names and user names cannot inject
// markup. There is no `style` prop: the Content-Security-Policy forbids
// style attributes, so looks come from classes in style.css and the few
// computed sizes (bar widths) are set through the CSSOM (el.style.x = …),
// which the policy allows.

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (ev: any) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.className = String(v);
    } else if (k === 'style') {
      throw new Error('h: style attributes are refused by the CSP; use a class');
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') {
      (el as any)[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces el's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Sets text only when it changed, so live tables do not flicker or lose a selection. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Keeps a table body in step with a list: rows are matched by key (data-key),
 * created once, updated in place and removed when gone. Buttons inside a row
 * thus survive a refresh, and a click that lands during one is not lost.
 */
export function syncRows<T>(
  tbody: HTMLTableSectionElement,
  items: T[],
  key: (item: T) => string,
  create: (item: T) => HTMLTableRowElement,
  update: (row: HTMLTableRowElement, item: T) => void,
): void {
  const old = new Map<string, HTMLTableRowElement>();
  for (const row of Array.from(tbody.rows)) old.set(row.dataset.key ?? '', row);
  let prev: HTMLTableRowElement | null = null;
  for (const item of items) {
    const k = key(item);
    let row = old.get(k);
    if (row) old.delete(k);
    else {
      row = create(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want: ChildNode | null = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
}

/** A labelled form field: <label for=id>text</label> + control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}
