/**
 * One JSON picture of the deployment, for `GET /status`, `clipper status` and every tick of the
 * dashboard: per app what this ingress saw (totals, throughput, P50/P99, SLO attainment over the
 * last minute), per model version what its scheduler and cache report (replicas and their state,
 * queue, cumulative batch/queue/compute sums and counts, cache hits), and the policies' weights.
 * Cumulative sums and counts let a reader take its own rates between two snapshots.
 */
import type { RegistryView } from '../../shared/registry.js';
import type { ClusterStats } from './cluster-stats.js';
import type { Labels } from './metric-families.js';
import type { RecentQueries, QueryOutcome } from './recent-queries.js';
import type { ReplicaState } from './replica-health.js';

export interface AppStatus {
  name: string;
  policy: string;
  slo_ms: number;
  /** Linked models. */
  models: string[];
  /** Queries by outcome since this ingress started. */
  requests: Record<QueryOutcome, number>;
  requests_total: number;
  /** Answered queries per second over the last 5 s. */
  answered_per_s: number;
  /** Over the last 10 s; null without answered queries. */
  p50_ms: number | null;
  p99_ms: number | null;
  /** Share of the last minute's queries a model answered within the SLO; null without queries. */
  slo_attainment: number | null;
  slo_window_queries: number;
}

export interface ReplicaStatus {
  replica: string;
  state: ReplicaState;
  /** Largest batch the replica's sizer allows now (null once it is gone). */
  batch_size: number | null;
  in_flight: number;
}

export interface CacheStatus {
  lookups: number;
  hits: number;
  approx_hits: number;
  coalesced: number;
  /** hits / lookups since the ingress started counting; null without lookups. */
  hit_rate: number | null;
}

export interface ModelStatus {
  name: string;
  version: string;
  replicas_desired: number;
  replicas_ready: number;
  replicas: ReplicaStatus[];
  queued: number;
  tasks_total: number;
  batches_total: number;
  expired_total: number;
  rejected_total: number;
  batch_size_sum: number;
  batch_size_count: number;
  queue_seconds_sum: number;
  queue_seconds_count: number;
  compute_seconds_sum: number;
  compute_seconds_count: number;
  cache: CacheStatus | null;
}

export interface WeightStatus {
  app: string;
  model: string;
  shard: string;
  weight: number;
}

export interface StatusSnapshot {
  v: 1;
  ts_unix_ms: number;
  /** When the actors' stats were last polled (0: not yet); model figures are as of then. */
  stats_polled_unix_ms: number;
  apps: AppStatus[];
  models: ModelStatus[];
  weights: WeightStatus[];
}

export function buildStatusSnapshot(view: RegistryView, recent: RecentQueries, cluster: ClusterStats): StatusSnapshot {
  const now = Date.now();
  const apps: AppStatus[] = [...new Set([...view.apps.keys(), ...recent.appNames()])].sort().map((name) => {
    const app = view.apps.get(name);
    const s = recent.summary(name);
    return {
      name, policy: app?.policy ?? '', slo_ms: app ? app.latency_slo_micros / 1000 : 0, models: view.links.get(name) ?? [],
      requests: s.total, requests_total: Object.values(s.total).reduce((a, b) => a + b, 0),
      answered_per_s: s.answeredPerS, p50_ms: s.p50Ms, p99_ms: s.p99Ms, slo_attainment: s.sloAttainment, slo_window_queries: s.sloWindowQueries,
    };
  });

  const schedulers = new Map(cluster.schedulers().map((s) => [`${s.metadata.model}:${s.metadata.version}`, s]));
  const keys = new Set([...view.deployed().map((m) => `${m.name}:${m.version}`), ...schedulers.keys()]);
  const health = cluster.health.rows(now);
  const { totals } = cluster;
  const models: ModelStatus[] = [...keys].sort().map((key) => {
    const i = key.lastIndexOf(':');
    const name = key.slice(0, i);
    const version = key.slice(i + 1);
    const of = (l: Labels): boolean => l.model === name && l.version === version;
    const latest = schedulers.get(key)?.data;
    const listed = new Map((Array.isArray(latest?.replicas) ? latest.replicas : []).map((r) => [String(r.id).split('.').slice(2).join('.'), r]));
    const replicas: ReplicaStatus[] = health.filter((r) => r.model === name && r.version === version).map((r) => {
      const l = r.state === 'dead' ? undefined : listed.get(r.replica);
      return { replica: r.replica, state: r.state, batch_size: l ? l.batch_size : null, in_flight: l ? l.in_flight : 0 };
    });
    const lookups = totals.sum('clipper_cache_lookups_total', of);
    const exact = totals.sum('clipper_cache_hits_total', (l) => of(l) && l.match === 'exact');
    const approx = totals.sum('clipper_cache_hits_total', (l) => of(l) && l.match === 'approx');
    const cached = lookups > 0 || view.model(name, version)?.cache?.mode === 'exact' || view.model(name, version)?.cache?.mode === 'approx';
    return {
      name, version,
      replicas_desired: view.model(name, version)?.num_replicas ?? 0,
      replicas_ready: replicas.filter((r) => r.state === 'up').length,
      replicas,
      queued: typeof latest?.queued === 'number' ? latest.queued : 0,
      tasks_total: totals.sum('clipper_scheduler_tasks_total', of),
      batches_total: totals.sum('clipper_scheduler_batches_total', of),
      expired_total: totals.sum('clipper_scheduler_expired_total', of),
      rejected_total: totals.sum('clipper_scheduler_rejected_total', of),
      batch_size_sum: totals.sum('clipper_batch_size_sum', of),
      batch_size_count: totals.sum('clipper_batch_size_count', of),
      queue_seconds_sum: totals.sum('clipper_queue_duration_seconds_sum', of),
      queue_seconds_count: totals.sum('clipper_queue_duration_seconds_count', of),
      compute_seconds_sum: totals.sum('clipper_batch_compute_duration_seconds_sum', of),
      compute_seconds_count: totals.sum('clipper_batch_compute_duration_seconds_count', of),
      cache: cached ? { lookups, hits: exact + approx, approx_hits: approx, coalesced: totals.sum('clipper_cache_coalesced_total', of), hit_rate: lookups > 0 ? (exact + approx) / lookups : null } : null,
    };
  });

  const weights: WeightStatus[] = [];
  for (const p of cluster.policies()) {
    for (const [shard, byApp] of Object.entries(p.data.weights ?? {})) {
      for (const [app, byModel] of Object.entries(byApp ?? {})) {
        for (const [model, weight] of Object.entries(byModel ?? {})) if (typeof weight === 'number') weights.push({ app, model, shard, weight });
      }
    }
  }
  weights.sort((a, b) => a.app.localeCompare(b.app) || a.shard.localeCompare(b.shard, undefined, { numeric: true }) || a.model.localeCompare(b.model));
  return { v: 1, ts_unix_ms: now, stats_polled_unix_ms: cluster.polledUnixMs, apps, models, weights };
}
