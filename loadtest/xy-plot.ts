/** A small SVG line chart of y against x for a few named series (no dependencies). */
import fs from 'node:fs';

export interface XySeries {
  name: string;
  points: [number, number][];
}

export interface XyPlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: XySeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];

export function writeXyPlot(file: string, spec: XyPlotSpec): void {
  const W = 640;
  const H = 400;
  const m = { l: 60, r: 20, t: 50, b: 50 };
  const all = spec.series.flatMap((s) => s.points);
  const xMax = Math.max(1e-9, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const sx = (x: number): number => m.l + (x / xMax) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - (y / yMax) * (H - m.t - m.b);
  const ticks = (max: number): number[] => Array.from({ length: 6 }, (_, i) => (max * i) / 5);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escape(spec.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
  ];
  for (const t of ticks(xMax)) parts.push(`<text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  for (const t of ticks(yMax)) {
    parts.push(`<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
    parts.push(`<line x1="${m.l}" y1="${sy(t)}" x2="${W - m.r}" y2="${sy(t)}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${escape(spec.xLabel)}</text>`);
  parts.push(`<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${escape(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.points.map((p) => `${sx(p[0])},${sy(p[1])}`).join(' ')}"/>`);
    for (const p of s.points) parts.push(`<circle cx="${sx(p[0])}" cy="${sy(p[1])}" r="3" fill="${c}"/>`);
    parts.push(`<rect x="${m.l + 10 + i * 200}" y="32" width="12" height="3" fill="${c}"/><text x="${m.l + 26 + i * 200}" y="37">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  fs.writeFileSync(file, parts.join('\n'));
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2);
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}
