/**
 * Metric families in prom-client's JSON form (`Registry.getMetricsAsJSON()`): what the scheduler
 * ships in its stats, what the ingress builds from the other actors' counters, and what
 * `AggregatorRegistry.aggregate` turns back into Prometheus text.
 */
export type Labels = Record<string, string | number>;

/** One sample; histograms carry `metricName` (`<name>_bucket` with `le`, `_sum`, `_count`). */
export interface MetricSample {
  value: number;
  labels: Labels;
  metricName?: string;
}

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  /** How `AggregatorRegistry.aggregate` merges equal series from several sources. */
  aggregator: 'sum';
  values: MetricSample[];
}

export function metricFamily(name: string, help: string, type: MetricType, values: MetricSample[]): MetricFamily {
  return { name, help, type, aggregator: 'sum', values };
}

/** A sample's identity: its metric name and its labels, in label-name order. */
export function seriesKey(metricName: string, labels: Labels): string {
  const names = Object.keys(labels).sort();
  return `${metricName}{${names.map((n) => `${n}=${JSON.stringify(String(labels[n]))}`).join(',')}}`;
}

/** Keeps the well-formed families of a prom-client JSON payload from another process. */
export function parseFamilies(payload: unknown): MetricFamily[] {
  if (!Array.isArray(payload)) return [];
  const out: MetricFamily[] = [];
  for (const f of payload as Partial<MetricFamily>[]) {
    if (!f || typeof f.name !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(f.name) || !Array.isArray(f.values)) continue;
    if (f.type !== 'counter' && f.type !== 'gauge' && f.type !== 'histogram') continue;
    const values = f.values.filter((v): v is MetricSample => !!v && typeof v.value === 'number' && typeof v.labels === 'object' && v.labels !== null);
    out.push(metricFamily(f.name, typeof f.help === 'string' ? f.help : f.name, f.type, values));
  }
  return out;
}
