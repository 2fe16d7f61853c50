/** `clipper status` as text: the ingress's StatusSnapshot (GET /status) as aligned tables. */
import type { StatusSnapshot } from '../services/ingress/mod.js';

/** Columns padded to their widest cell, two spaces apart. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const ms = (v: number | null): string => (v === null ? '-' : v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);
const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(1)} %`);
const mean = (sum: number, count: number, scale = 1): number | null => (count > 0 ? (sum / count) * scale : null);

export function formatStatus(s: StatusSnapshot): string {
  const out: string[] = [];
  out.push(formatTable(
    ['APP', 'POLICY', 'SLO', 'REQUESTS', 'DEFAULTS', 'REFUSED', 'ERRORS', 'Q/S', 'P50', 'P99', 'SLO MET (1 MIN)', 'MODELS'],
    s.apps.map((a) => [
      a.name, a.policy, ms(a.slo_ms), String(a.requests_total), String(a.requests.default), String(a.requests.refused), String(a.requests.error),
      a.answered_per_s.toFixed(1), ms(a.p50_ms), ms(a.p99_ms), pct(a.slo_attainment), a.models.join(',') || '-',
    ]),
  ));
  out.push('');
  out.push(formatTable(
    ['MODEL', 'VERSION', 'REPLICAS', 'STATES', 'QUEUED', 'TASKS', 'BATCH', 'LIMIT', 'QUEUE', 'COMPUTE', 'CACHE HITS'],
    s.models.map((m) => {
      const limits = m.replicas.filter((r) => r.state === 'up' && r.batch_size !== null).map((r) => r.batch_size!);
      const batch = mean(m.batch_size_sum, m.batch_size_count);
      return [
        m.name, m.version, `${m.replicas_ready}/${m.replicas_desired}`, m.replicas.map((r) => `${r.replica}:${r.state}`).join(' ') || '-',
        String(m.queued), String(m.tasks_total), batch === null ? '-' : batch.toFixed(1), limits.length ? String(Math.max(...limits)) : '-',
        ms(mean(m.queue_seconds_sum, m.queue_seconds_count, 1000)), ms(mean(m.compute_seconds_sum, m.compute_seconds_count, 1000)),
        m.cache ? pct(m.cache.hit_rate) : '-',
      ];
    }),
  ));
  if (s.weights.length > 0) {
    out.push('');
    const shards = new Set(s.weights.map((w) => w.shard)).size;
    const byApp = new Map<string, string[]>();
    for (const w of s.weights) {
      const k = shards > 1 ? `${w.app} (shard ${w.shard})` : w.app;
      byApp.set(k, [...(byApp.get(k) ?? []), `${w.model} ${w.weight.toFixed(3)}`]);
    }
    out.push(formatTable(['POLICY WEIGHTS', ''], [...byApp].map(([app, ws]) => [app, ws.join(', ')])));
  }
  out.push('');
  out.push('Requests, Q/S, P50/P99 and SLO attainment are this ingress\'s (P50/P99 over the last 10 s); batch, queue and compute are means since the ingress started counting.');
  return out.join('\n');
}
