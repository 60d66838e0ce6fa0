// The dashboard's activity charts: queue and running jobs, throughput,
// queue wait. They draw the history the master keeps in its store (GET
// /api/v1/stats/history: a sample every 15 s, a day of them), so they
// reach back hours and survive a restart of the master; the span is
// chosen above them. A master without the history falls back to its
// last ten minutes in memory (/api/v1/stats).
import { ApiError, get, type Stats } from '../api';
import { every } from '../app';
import { lineChart, type Chart } from '../charts';
import { h, setText } from '../dom';

const REFRESH = 15_000;
const SPANS: [string, number][] = [['15 min', 15], ['1 hour', 60], ['6 hours', 360], ['24 hours', 1440]];

export interface Activity { el: HTMLElement; start(): void; stop(): void }

export function activityCharts(): Activity {
  const charts: Chart[] = [];
  const stops: (() => void)[] = [];
  let stopped = false;
  let legacy = false; // the master has no /stats/history

  const chartBox = (id: string, title: string) => {
    const box = h('div', { class: 'chart', id });
    return { box, el: h('figure', { class: 'chart-card' }, h('figcaption', null, title), box) };
  };
  const qChart = chartBox('chart-queue', 'Queue depth and running jobs');
  const tChart = chartBox('chart-throughput', 'Throughput (jobs per second)');
  const wChart = chartBox('chart-wait', 'Mean queue wait (ms)');
  const span = h('select', { id: 'stats-span', 'aria-label': 'Time span of the charts' },
    SPANS.map(([label, minutes]) => h('option', { value: String(minutes), selected: minutes === 60 }, label)));
  const note = h('p', { class: 'muted small', id: 'stats-note' });

  let data: Stats | null = null;
  const draw = () => {
    if (!data || charts.length < 3) return;
    const p = data.points;
    const xs = p.map((x) => Date.parse(x.time) / 1000);
    const per = data.interval_seconds || 15;
    const now = Date.now() / 1000;
    const range: [number, number] | undefined = legacy ? undefined : [now - Number(span.value) * 60, now];
    charts[0].set(xs, [p.map((x) => x.queue_depth), p.map((x) => x.running)], range);
    charts[1].set(xs, [p.map((x) => x.completed / per), p.map((x) => x.submitted / per)], range);
    charts[2].set(xs, [p.map((x) => x.queue_wait_ms)], range);
  };

  async function refresh(): Promise<void> {
    const minutes = Number(span.value);
    let st: Stats;
    if (!legacy) {
      try {
        st = await get<Stats>(`/api/v1/stats/history?minutes=${minutes}`);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
        legacy = true;
        st = await get<Stats>('/api/v1/stats');
      }
    } else {
      st = await get<Stats>('/api/v1/stats');
    }
    if (stopped) return;
    data = st;
    const first = st.points.length ? Date.parse(st.points[0].time) : 0;
    const reach = first ? Math.round((Date.now() - first) / 60_000) : 0;
    setText(note, !st.points.length
      ? 'No activity recorded yet: the master records a sample every 15 s.'
      : legacy
        ? `Last ${reach || 1} min (this master keeps no longer history), one point every ${st.interval_seconds} s.`
        : `From ${new Date(first).toLocaleString()} (${reach < 120 ? `${reach || 1} min` : `${Math.round(reach / 60)} h`} back), one point every ${st.interval_seconds} s. Kept by the master for 24 hours, across restarts.`);
    note.dataset.points = String(st.points.length);
    note.dataset.first = first ? new Date(first).toISOString() : '';
    draw();
  }

  span.addEventListener('change', () => void refresh().catch(() => {}));
  const el = h('section', { id: 'activity', 'aria-labelledby': 'activity-title' },
    h('div', { class: 'page-head' }, h('h2', { id: 'activity-title' }, 'Activity'), h('label', { class: 'inline' }, 'Span ', span)),
    note,
    h('div', { class: 'charts' }, qChart.el, tChart.el, wChart.el));

  return {
    el,
    start() {
      stopped = false;
      // Charts need their boxes in the document to know their width.
      void Promise.all([
        lineChart(qChart.box, [{ label: 'queued', color: '#b45309', fill: true }, { label: 'running', color: '#2563eb' }], 'jobs'),
        lineChart(tChart.box, [{ label: 'completed', color: '#15803d', fill: true }, { label: 'submitted', color: '#7e22ce' }], '/s'),
        lineChart(wChart.box, [{ label: 'queue wait', color: '#be123c', fill: true }], 'ms'),
      ]).then((cs) => {
        if (stopped) return cs.forEach((c) => c.destroy());
        charts.push(...cs);
        stops.push(every(REFRESH, refresh));
      });
    },
    stop() {
      stopped = true;
      stops.splice(0).forEach((s) => s());
      charts.splice(0).forEach((c) => c.destroy());
    },
  };
}
