// Limits: the form of the editor (each field with the cluster's default
// and maximum, a refused value explained next to its field in words) and
// the sentence saying which limit a finished job hit.
import type { Job, Limits } from './api';
import { h } from './dom';
import { duration, kb } from './format';

export interface LimitRange { default: Limits; max: Limits }

type Key = 'cpu_ms' | 'wall_ms' | 'memory_mb' | 'output_kb';

const fields: { key: Key; id: string; label: string; unit: string; words: string; show: (n: number) => string }[] = [
  { key: 'cpu_ms', id: 'limit-cpu', label: 'CPU time (ms)', unit: 'ms', words: 'CPU time', show: duration },
  { key: 'wall_ms', id: 'limit-wall', label: 'Wall time (ms)', unit: 'ms', words: 'Wall time', show: duration },
  { key: 'memory_mb', id: 'limit-memory', label: 'Memory (MB)', unit: 'MB', words: 'Memory', show: (n) => `${n} MB` },
  { key: 'output_kb', id: 'limit-output', label: 'Output (KB)', unit: 'KB', words: 'Output', show: kb },
];

/** "1 min (60000 ms)": the value in words, and in the field's unit when they differ. */
function inUnits(f: { unit: string; show: (n: number) => string }, n: number): string {
  const words = f.show(n);
  return words === `${n} ${f.unit}` ? words : `${words} (${n} ${f.unit})`;
}

export interface LimitsForm {
  el: HTMLElement;
  read(): Limits;
  set(l: Limits | undefined): void;
  setRange(r: LimitRange | undefined): void;
  /** Checks the values against the maxima; false (and says why) if one is refused. */
  validate(): boolean;
  /** Places an API refusal ("limits.cpu_ms is 999999, over the maximum 60000") next to its field; false if it is about no limit. */
  explain(message: string): boolean;
  onInput(f: () => void): void;
}

export function createLimitsForm(): LimitsForm {
  let range: LimitRange | undefined;
  const inputs = {} as Record<Key, HTMLInputElement>;
  const hints = {} as Record<Key, HTMLElement>;
  const errors = {} as Record<Key, HTMLElement>;
  const rows = fields.map((f) => {
    const id = f.id;
    const input = h('input', { id, type: 'number', min: 1, step: 1, inputmode: 'numeric', 'aria-describedby': `${id}-hint ${id}-error` });
    inputs[f.key] = input;
    hints[f.key] = h('small', { id: `${id}-hint`, class: 'hint' });
    errors[f.key] = h('small', { id: `${id}-error`, class: 'field-error', role: 'alert', hidden: true });
    input.addEventListener('input', () => clear(f.key));
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), input, hints[f.key], errors[f.key]);
  });

  function clear(k: Key): void {
    errors[k].hidden = true;
    inputs[k].removeAttribute('aria-invalid');
  }
  function refuse(k: Key, why: string): void {
    errors[k].textContent = why;
    errors[k].hidden = false;
    inputs[k].setAttribute('aria-invalid', 'true');
  }
  function describe(): void {
    for (const f of fields) {
      const d = range?.default[f.key];
      const m = range?.max[f.key];
      inputs[f.key].placeholder = d ? String(d) : '';
      if (m) inputs[f.key].max = String(m);
      else inputs[f.key].removeAttribute('max');
      hints[f.key].textContent = [d ? `default ${f.show(d)}` : '', m ? `at most ${f.show(m)}` : ''].filter(Boolean).join(', ');
    }
  }
  const num = (k: Key) => {
    const v = inputs[k].value.trim();
    return v === '' ? undefined : Number(v);
  };

  const form: LimitsForm = {
    el: h('div', { class: 'limits' }, rows),
    read() {
      const l: Limits = {};
      for (const f of fields) {
        const n = num(f.key);
        if (n !== undefined && n > 0) l[f.key] = Math.floor(n);
      }
      return l;
    },
    set(l) {
      for (const f of fields) inputs[f.key].value = l?.[f.key] ? String(l[f.key]) : '';
    },
    setRange(r) {
      range = r;
      describe();
    },
    validate() {
      let ok = true;
      for (const f of fields) {
        clear(f.key);
        const n = num(f.key);
        if (n === undefined) continue;
        const m = range?.max[f.key];
        if (!Number.isFinite(n) || n <= 0 || !Number.isInteger(n)) {
          refuse(f.key, `${f.words} must be a whole number of ${f.unit} above 0, or empty for the default.`);
          ok = false;
        } else if (m && n > m) {
          refuse(f.key, `${f.words} can be at most ${inUnits(f, m)} on this cluster; you asked for ${f.show(n)}.`);
          ok = false;
        }
      }
      if (!ok) (form.el.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
      return ok;
    },
    explain(message) {
      const m = message.match(/limits\.(\w+)\b[^0-9-]*(-?\d+)?(?:.*maximum (\d+))?/);
      const f = m && fields.find((x) => x.key === m[1]);
      if (!f) return false;
      const asked = m![2] !== undefined ? Number(m![2]) : undefined;
      const max = m![3] !== undefined ? Number(m![3]) : undefined;
      refuse(f.key, max !== undefined
        ? `${f.words} can be at most ${inUnits(f, max)} on this cluster${asked !== undefined ? `; you asked for ${f.show(asked)}` : ''}.`
        : `${f.words} was refused: it must be above 0.`);
      const details = form.el.closest('details');
      if (details) details.open = true;
      inputs[f.key].focus();
      return true;
    },
    onInput(fn) {
      for (const f of fields) inputs[f.key].addEventListener('input', fn);
    },
  };
  return form;
}

/**
 * Which limit a job hit, with its value: "CPU time limit 5 s exceeded".
 * The limits are the job's own (the request as stored has the defaults
 * filled in); a time limit is the CPU one when the CPU time reached it,
 * else the wall-clock one.
 */
export function limitHit(j: Job): string | null {
  const l = j.request?.limits ?? {};
  const runs = [j.run, ...(j.tests ?? [])].filter((r) => !!r);
  switch (j.verdict) {
    case 'time_limit': {
      const cpu = l.cpu_ms && runs.some((r) => r!.cpu_ms >= l.cpu_ms! * 0.95);
      if (cpu || !l.wall_ms) return l.cpu_ms ? `CPU time limit ${duration(l.cpu_ms)} exceeded.` : 'Time limit exceeded.';
      return `Wall time limit ${duration(l.wall_ms)} exceeded (the program waited or slept; CPU time is counted separately).`;
    }
    case 'memory_limit':
      return l.memory_mb ? `Memory limit ${l.memory_mb} MB exceeded.` : 'Memory limit exceeded.';
    case 'output_limit':
      return l.output_kb ? `Output limit ${kb(l.output_kb)} exceeded (per stream; the whole job may write ${kb(l.total_output_kb ?? 8192)}).` : 'Output limit exceeded.';
  }
  return null;
}
