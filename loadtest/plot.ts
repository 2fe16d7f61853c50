/**
 * A dependency-free SVG chart of load sweeps: goodput vs offered rate (left, with the ideal y = x
 * dashed) and P99 latency vs offered rate (right, with the SLO dashed), one line per named series.
 * Filled markers are good steps (within the SLO), hollow ones are not; latencies above the chart
 * are drawn at its top edge with an arrow.
 */
import fs from 'node:fs';
import path from 'node:path';
import { round1 } from './round.js';

export interface PlotStep {
  rate_offered: number;
  goodput_qps: number;
  p99_ms: number;
  good?: boolean;
  /** Run again (too much steal): not drawn. */
  discarded?: boolean;
}

export interface PlotSeries {
  name: string;
  steps: readonly PlotStep[];
}

export interface PlotSpec {
  title: string;
  sloMs: number;
  series: readonly PlotSeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const WIDTH = 1040;
const HEIGHT = 470;
const PANEL = { top: 84, bottom: 60, left: 70, right: 24, gap: 90 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.abs(v) >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : Number.isInteger(v) ? String(v) : v.toPrecision(3).replace(/\.?0+$/, ''));

/** A "nice" axis: 0 to a round maximum in 4–8 round steps. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

interface Panel {
  x0: number;
  y0: number;
  w: number;
  h: number;
  xMax: number;
  yMax: number;
}

const px = (p: Panel, x: number): number => round1(p.x0 + (x / p.xMax) * p.w);
const py = (p: Panel, y: number): number => round1(p.y0 + p.h - (Math.min(y, p.yMax) / p.yMax) * p.h);

function axes(p: Panel, xTicks: number[], yTicks: number[], xLabel: string, yLabel: string, title: string): string[] {
  const out: string[] = [];
  out.push(`<text x="${round1(p.x0 + p.w / 2)}" y="${p.y0 - 12}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of yTicks) {
    const y = py(p, t);
    out.push(`<line x1="${p.x0}" y1="${y}" x2="${p.x0 + p.w}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${p.x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = px(p, t);
    out.push(`<line x1="${x}" y1="${p.y0 + p.h}" x2="${x}" y2="${p.y0 + p.h + 5}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${p.y0 + p.h + 18}" text-anchor="middle" font-size="11">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${p.x0}" y="${p.y0}" width="${p.w}" height="${p.h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${round1(p.x0 + p.w / 2)}" y="${p.y0 + p.h + 40}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  const cy = round1(p.y0 + p.h / 2);
  out.push(`<text x="${p.x0 - 50}" y="${cy}" text-anchor="middle" font-size="12" transform="rotate(-90 ${p.x0 - 50} ${cy})">${esc(yLabel)}</text>`);
  return out;
}

function seriesLines(p: Panel, series: readonly PlotSeries[], y: (s: PlotStep) => number): string[] {
  const out: string[] = [];
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const steps = [...s.steps].filter((st) => !st.discarded && Number.isFinite(y(st))).sort((a, b) => a.rate_offered - b.rate_offered);
    if (steps.length === 0) return;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${steps.map((st) => `${px(p, st.rate_offered)},${py(p, y(st))}`).join(' ')}"/>`);
    for (const st of steps) {
      const cx = px(p, st.rate_offered);
      const v = y(st);
      if (v > p.yMax) {
        // Off the chart: an arrow at the top edge.
        const top = p.y0;
        out.push(`<path d="M${cx - 5},${top + 9} L${cx},${top + 1} L${cx + 5},${top + 9} Z" fill="${color}"><title>${esc(`${s.name}: ${fmt(st.rate_offered)}/s → ${fmt(round1(v))}`)}</title></path>`);
        continue;
      }
      const fill = st.good === false ? 'white' : color;
      out.push(`<circle cx="${cx}" cy="${py(p, v)}" r="3.5" fill="${fill}" stroke="${color}" stroke-width="1.5"><title>${esc(`${s.name}: offered ${fmt(st.rate_offered)}/s, goodput ${fmt(round1(st.goodput_qps))}/s, p99 ${fmt(round1(st.p99_ms))} ms`)}</title></circle>`);
    }
  });
  return out;
}

/** The chart as SVG text. */
export function renderPlot(spec: PlotSpec): string {
  const all = spec.series.flatMap((s) => s.steps);
  const xTicks = niceTicks(Math.max(1, ...all.map((s) => s.rate_offered)));
  const xMax = xTicks[xTicks.length - 1]!;
  const gTicks = niceTicks(Math.max(1, ...all.map((s) => Math.max(s.goodput_qps, Math.min(s.rate_offered, xMax)))));
  const maxP99 = Math.max(0, ...all.map((s) => s.p99_ms).filter(Number.isFinite));
  // Room for the SLO line and what is just above it; far outliers are clipped (arrows).
  const lTicks = niceTicks(Math.max(spec.sloMs * 1.5, Math.min(maxP99, spec.sloMs * 4)));
  const w = (WIDTH - PANEL.left - PANEL.gap - PANEL.right) / 2;
  const h = HEIGHT - PANEL.top - PANEL.bottom;
  const left: Panel = { x0: PANEL.left, y0: PANEL.top, w, h, xMax, yMax: gTicks[gTicks.length - 1]! };
  const right: Panel = { x0: PANEL.left + w + PANEL.gap, y0: PANEL.top, w, h, xMax, yMax: lTicks[lTicks.length - 1]! };

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  out.push(`<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(spec.title)}</text>`);
  // Legend, wrapping onto a second row when it does not fit.
  let lx = PANEL.left;
  let ly = 42;
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const width = 40 + s.name.length * 6.5;
    if (lx + width > WIDTH - PANEL.right && lx > PANEL.left) {
      lx = PANEL.left;
      ly += 17;
    }
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="2"/><circle cx="${lx + 11}" cy="${ly}" r="3.5" fill="${color}"/>`);
    out.push(`<text x="${lx + 28}" y="${ly + 4}" font-size="12">${esc(s.name)}</text>`);
    lx += width;
  });
  out.push(`<text x="${WIDTH - PANEL.right}" y="${HEIGHT - 6}" text-anchor="end" font-size="10" fill="#555">filled: P99 ≤ SLO and ≥ 95 % of arrivals answered by a model; hollow: not; ▲: P99 above the chart</text>`);

  out.push(...axes(left, xTicks, gTicks, 'offered rate (requests/s)', 'goodput (model answers/s)', 'Throughput'));
  out.push(`<line x1="${px(left, 0)}" y1="${py(left, 0)}" x2="${px(left, Math.min(xMax, left.yMax))}" y2="${py(left, Math.min(xMax, left.yMax))}" stroke="#999" stroke-dasharray="4 4"/>`);
  out.push(...seriesLines(left, spec.series, (s) => s.goodput_qps));

  out.push(...axes(right, xTicks, lTicks, 'offered rate (requests/s)', 'P99 latency (ms)', 'P99 latency'));
  const sloY = py(right, spec.sloMs);
  out.push(`<line x1="${right.x0}" y1="${sloY}" x2="${right.x0 + right.w}" y2="${sloY}" stroke="#444" stroke-width="1.5" stroke-dasharray="8 5"/>`);
  out.push(`<text x="${right.x0 + right.w - 4}" y="${sloY - 5}" text-anchor="end" font-size="11" fill="#444">SLO ${fmt(spec.sloMs)} ms</text>`);
  out.push(...seriesLines(right, spec.series, (s) => s.p99_ms));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes the chart to `file` (folders created as needed). */
export function writePlot(file: string, spec: PlotSpec): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderPlot(spec));
}
