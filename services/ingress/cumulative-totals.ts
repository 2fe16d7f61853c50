/**
 * Totals that only go up, from cumulative counts reported by many processes that come and go.
 * Each source (one process instance) reports its own running counts; the totals grow by what it
 * counted since its previous report (all of it the first time). A source that restarts reports
 * under a new identity and starts from zero, and one that stops simply stops adding: summing the
 * live sources' counts instead would make the exported counter fall on every restart, which
 * Prometheus reads as a reset of the whole series. No I/O.
 */
import { metricFamily, seriesKey, type Labels, type MetricFamily, type MetricType } from './metric-families.js';

interface Total {
  family: string;
  metricName?: string;
  labels: Labels;
  value: number;
}

interface Source {
  last: Map<string, number>;
  seenMs: number;
}

export class CumulativeTotals {
  private readonly totals = new Map<string, Total>();
  private readonly familyInfo = new Map<string, { help: string; type: MetricType }>();
  private readonly sources = new Map<string, Source>();

  /**
   * Adds what `source` counted since its last report. Only counters and histograms belong here;
   * a count lower than last time (not expected under one identity) is taken as a restart.
   */
  report(source: string, families: readonly MetricFamily[], nowMs: number): void {
    let s = this.sources.get(source);
    if (!s) this.sources.set(source, (s = { last: new Map(), seenMs: nowMs }));
    s.seenMs = nowMs;
    for (const f of families) {
      if (f.type === 'gauge') continue;
      if (!this.familyInfo.has(f.name)) this.familyInfo.set(f.name, { help: f.help, type: f.type });
      for (const v of f.values) {
        if (!Number.isFinite(v.value)) continue;
        const key = seriesKey(v.metricName ?? f.name, v.labels);
        const last = s.last.get(key) ?? 0;
        const delta = v.value >= last ? v.value - last : v.value;
        s.last.set(key, v.value);
        let t = this.totals.get(key);
        if (!t) this.totals.set(key, (t = { family: f.name, ...(v.metricName ? { metricName: v.metricName } : {}), labels: { ...v.labels }, value: 0 }));
        t.value += delta;
      }
    }
  }

  /** Forgets sources not heard from since `cutoffMs`; what they counted stays in the totals. */
  forget(cutoffMs: number): void {
    for (const [id, s] of this.sources) if (s.seenMs < cutoffMs) this.sources.delete(id);
  }

  /** Sources reported and not forgotten. */
  get sourceCount(): number {
    return this.sources.size;
  }

  /** The total of one series (0 when never reported). */
  value(metricName: string, labels: Labels): number {
    return this.totals.get(seriesKey(metricName, labels))?.value ?? 0;
  }

  /** The sum of a metric's series whose labels pass `match`. */
  sum(metricName: string, match: (labels: Labels) => boolean = () => true): number {
    let n = 0;
    for (const t of this.totals.values()) if ((t.metricName ?? t.family) === metricName && match(t.labels)) n += t.value;
    return n;
  }

  /** Every total as metric families. */
  families(): MetricFamily[] {
    const byName = new Map<string, MetricFamily>();
    for (const t of this.totals.values()) {
      let f = byName.get(t.family);
      if (!f) {
        const info = this.familyInfo.get(t.family)!;
        byName.set(t.family, (f = metricFamily(t.family, info.help, info.type, [])));
      }
      f.values.push({ value: t.value, labels: { ...t.labels }, ...(t.metricName ? { metricName: t.metricName } : {}) });
    }
    return [...byName.values()];
  }
}
