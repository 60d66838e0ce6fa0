// Line charts of the dashboard, drawn by uPlot (small, canvas-based, no
// inline styles to fight with the CSP). uPlot is loaded with the dashboard
// only, as its own chunk; its stylesheet is part of style.css.
import type uPlotT from 'uplot';

export interface Series { label: string; color: string; fill?: boolean }

export interface Chart {
  /** xs in Unix seconds; one array of ys per series; span: the x range shown (else the data's). */
  set(xs: number[], ys: number[][], span?: [number, number]): void;
  destroy(): void;
}

/** Steps between time labels, in seconds: round minutes and hours. */
const TIME_STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/**
 * "14:05" ("14:05:30" when labels are less than a minute apart); "6 Dec
 * 14:05" where the day changes, and first when it is not today.
 */
function timeLabel(secs: number, prev: number | null, step: number): string {
  const d = new Date(secs * 1000);
  const hm = d.toLocaleTimeString([], step < 60 ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false } : { hour: '2-digit', minute: '2-digit', hour12: false });
  const day = (t: number) => new Date(t * 1000).toDateString();
  const today = day(secs) === new Date().toDateString();
  return (prev === null ? !today : day(prev) !== day(secs))
    ? `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${hm}` : hm;
}

export async function lineChart(box: HTMLElement, series: Series[], unit: string, height = 170): Promise<Chart> {
  const { default: uPlot } = await import('uplot');
  let span: [number, number] | undefined;
  const fmt = (v: number | null) => (v === null ? '—' : `${+v.toFixed(v < 10 ? 2 : 0)} ${unit}`);
  const opts: uPlotT.Options = {
    width: Math.max(200, box.clientWidth),
    height,
    scales: {
      // The span asked for, not just the data's: a day with an hour of
      // samples shows an hour's line on a day's axis.
      x: { time: true, range: (_u, min, max) => span ?? [min, max] },
      // Counts start at zero, and an empty chart still has a scale.
      y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      // Time labels at least 80 px apart, as hours and minutes (the day
      // too where it changes): uPlot's defaults crowd a narrow chart.
      { stroke: '#5b6472', grid: { stroke: '#e6e8ec', width: 1 }, ticks: { stroke: '#e6e8ec' }, space: 80, incrs: TIME_STEPS,
        values: (_u, vals) => vals.map((v, i) => timeLabel(v, i > 0 ? vals[i - 1] : null, vals.length > 1 ? vals[1] - vals[0] : 60)) },
      { stroke: '#5b6472', grid: { stroke: '#e6e8ec', width: 1 }, ticks: { stroke: '#e6e8ec' }, size: 56,
        values: (_u, vals) => vals.map((v) => `${+v.toFixed(2)}`) },
    ],
    series: [
      { value: (_u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
      ...series.map((s) => ({
        label: s.label, stroke: s.color, width: 2,
        fill: s.fill ? s.color + '22' : undefined,
        value: (_u: uPlotT, v: number | null) => fmt(v),
        // A line needs two points: a lone sample (a long span, a new
        // master) is drawn as a dot.
        points: { show: (_u: uPlotT, _s: number, i0: number, i1: number) => i1 - i0 < 2 },
      })),
    ],
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
  };
  const empty = [[], ...series.map(() => [])] as unknown as uPlotT.AlignedData;
  const plot = new uPlot(opts, empty, box);
  // Follow the width of the page (window resize, phone rotation).
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, box.clientWidth);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  ro.observe(box);
  return {
    set(xs, ys, s) {
      span = s;
      plot.setData([xs, ...ys] as uPlotT.AlignedData);
    },
    destroy() { ro.disconnect(); plot.destroy(); },
  };
}
