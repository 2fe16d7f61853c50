/**
 * What the dashboard and `clipper status` show per app, from the queries this ingress answered:
 * totals by outcome since start, throughput over the last seconds, P50/P99 latency over a sliding
 * window, and the share of the last minute's queries a model answered within the SLO. Per-second
 * buckets in a ring; each second keeps at most `samplesPerSecond` latencies (a uniform sample), so
 * the cost stays flat under load. No I/O.
 */

/**
 * ok: a model answered; default: the app's default output; refused: 503 (overload); error: any other
 * failure; forwarded: a direct NATS query, handed to the model's scheduler with the client's reply
 * subject, whose answer this process does not see (no latency, not in the SLO attainment).
 */
export type QueryOutcome = 'ok' | 'default' | 'refused' | 'error' | 'forwarded';
export const QUERY_OUTCOMES: readonly QueryOutcome[] = ['ok', 'default', 'refused', 'error', 'forwarded'];

const noQueries = (): Record<QueryOutcome, number> => ({ ok: 0, default: 0, refused: 0, error: 0, forwarded: 0 });

export interface RecentQueriesOptions {
  /** Seconds of latencies behind P50/P99. */
  latencyWindowS?: number;
  /** Seconds behind the throughput. */
  rateWindowS?: number;
  /** Seconds behind the SLO attainment. */
  sloWindowS?: number;
  samplesPerSecond?: number;
  now?: () => number;
  random?: () => number;
}

export interface AppQueriesSummary {
  /** Queries by outcome since this ingress started. */
  total: Record<QueryOutcome, number>;
  /** Queries answered (model or default) per second, over the rate window. */
  answeredPerS: number;
  /** Over the latency window; null when no query was answered in it. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Share of the SLO window's queries a model answered within the SLO; null when there were none. */
  sloAttainment: number | null;
  /** Queries in the SLO window. */
  sloWindowQueries: number;
}

interface Second {
  second: number;
  answered: number;
  all: number;
  withinSlo: number;
  /** Latencies seen this second and the sample kept of them. */
  seen: number;
  latenciesMs: number[];
}

interface AppWindow {
  total: Record<QueryOutcome, number>;
  ring: Second[];
}

export class RecentQueries {
  private readonly apps = new Map<string, AppWindow>();
  private readonly latencyWindowS: number;
  private readonly rateWindowS: number;
  private readonly sloWindowS: number;
  private readonly samplesPerSecond: number;
  private readonly ringSize: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(opts: RecentQueriesOptions = {}) {
    this.latencyWindowS = opts.latencyWindowS ?? 10;
    this.rateWindowS = opts.rateWindowS ?? 5;
    this.sloWindowS = opts.sloWindowS ?? 60;
    this.samplesPerSecond = opts.samplesPerSecond ?? 2048;
    this.ringSize = Math.max(this.latencyWindowS, this.rateWindowS, this.sloWindowS);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** One query of `app`; `latencyMs` for answered ones (ok, default). */
  record(app: string, outcome: QueryOutcome, latencyMs?: number, withinSlo = false): void {
    let w = this.apps.get(app);
    if (!w) this.apps.set(app, (w = { total: noQueries(), ring: [] }));
    w.total[outcome]++;
    if (outcome === 'forwarded') return;
    const s = this.second(w, Math.floor(this.now() / 1000));
    s.all++;
    if (withinSlo) s.withinSlo++;
    if (latencyMs === undefined) return;
    s.answered++;
    s.seen++;
    if (s.latenciesMs.length < this.samplesPerSecond) s.latenciesMs.push(latencyMs);
    else {
      // Reservoir sampling: every latency of the second is kept with the same probability.
      const j = Math.floor(this.random() * s.seen);
      if (j < this.samplesPerSecond) s.latenciesMs[j] = latencyMs;
    }
  }

  /** Apps with at least one query. */
  appNames(): string[] {
    return [...this.apps.keys()];
  }

  summary(app: string): AppQueriesSummary {
    const w = this.apps.get(app);
    const nowS = Math.floor(this.now() / 1000);
    let answered = 0;
    let all = 0;
    let within = 0;
    const latencies: number[] = [];
    for (const s of w?.ring ?? []) {
      const age = s ? nowS - s.second : -1;
      if (!s || age < 0) continue;
      if (age < this.rateWindowS) answered += s.answered;
      if (age < this.sloWindowS) {
        all += s.all;
        within += s.withinSlo;
      }
      if (age < this.latencyWindowS) latencies.push(...s.latenciesMs);
    }
    latencies.sort((a, b) => a - b);
    return {
      total: { ...(w?.total ?? noQueries()) },
      answeredPerS: answered / this.rateWindowS,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      sloAttainment: all > 0 ? within / all : null,
      sloWindowQueries: all,
    };
  }

  private second(w: AppWindow, second: number): Second {
    const i = second % this.ringSize;
    let s = w.ring[i];
    if (!s || s.second !== second) {
      s = { second, answered: 0, all: 0, withinSlo: 0, seen: 0, latenciesMs: [] };
      w.ring[i] = s;
    }
    return s;
  }
}

/** Nearest-rank percentile of sorted values; null for none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
