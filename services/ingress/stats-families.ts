/**
 * The other actors' `$SRV.STATS` data as metric families: their cumulative counters become
 * counters, their current values gauges. The scheduler's histograms arrive as families already.
 * Names follow Prometheus conventions: `clipper_` prefix, base units in the name, `_total` on counters.
 */
import { SCHEDULER_REFUSAL_CAUSES, type CacheStatsPayload, type PolicyStatsPayload, type SchedulerStatsPayload } from '../../shared/protocol.js';
import { metricFamily, parseFamilies, type Labels, type MetricFamily, type MetricSample } from './metric-families.js';

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** `<model>.<version>.<replica>` → the replica token. */
export function replicaOf(id: string): string {
  const parts = id.split('.');
  return parts.length >= 3 ? parts.slice(2).join('.') : id;
}

/** A scheduler's refusals as one sample per cause; one `unknown` sample from a scheduler without `rejected_by`. */
function rejectedByCause(p: Partial<SchedulerStatsPayload>, labels: Labels): MetricSample[] {
  const by = p.rejected_by;
  if (!by || typeof by !== 'object') return [{ value: num(p.rejected), labels: { ...labels, cause: 'unknown' } }];
  return SCHEDULER_REFUSAL_CAUSES.map((cause) => ({ value: num(by[cause]), labels: { ...labels, cause } }));
}

export function schedulerFamilies(p: Partial<SchedulerStatsPayload>, model: string, version: string): MetricFamily[] {
  const labels = { model, version };
  const counter = (name: string, help: string, value: unknown): MetricFamily => metricFamily(name, help, 'counter', [{ value: num(value), labels }]);
  const replicas = Array.isArray(p.replicas) ? p.replicas : [];
  const perReplica = (pick: (r: SchedulerStatsPayload['replicas'][number]) => number): MetricSample[] =>
    replicas.map((r) => ({ value: num(pick(r)), labels: { ...labels, replica: replicaOf(String(r.id)) } }));
  return [
    counter('clipper_scheduler_tasks_total', 'Tasks (one query for one model) received by the scheduler', p.tasks),
    counter('clipper_scheduler_batches_total', 'Batches sent to worker replicas', p.batches),
    counter('clipper_scheduler_expired_total', 'Tasks answered "expired": their deadline passed before a batch could take them', p.expired),
    metricFamily('clipper_scheduler_rejected_total', 'Tasks refused (retryable), by cause: queue_full, would_be_late, arrived_late, waited_too_long, shutting_down (unknown: a scheduler that does not tell)', 'counter', rejectedByCause(p, labels)),
    counter('clipper_scheduler_requeued_total', 'Tasks sent back to the queue when their replica was dropped', p.requeued),
    counter('clipper_scheduler_replicas_dropped_total', 'Replicas dropped for missed heartbeats or a failed batch request', p.replicas_dropped),
    metricFamily('clipper_scheduler_queued_tasks', 'Tasks waiting in the scheduler\'s queue now', 'gauge', [{ value: num(p.queued), labels }]),
    metricFamily('clipper_replica_batch_size', 'Largest batch the replica\'s sizer (AIMD, quantile or fixed) allows now', 'gauge', perReplica((r) => r.batch_size)),
    metricFamily('clipper_replica_in_flight_batches', 'Batches the replica is evaluating now', 'gauge', perReplica((r) => r.in_flight)),
    ...parseFamilies(p.metrics),
  ];
}

export function cacheFamilies(p: Partial<CacheStatsPayload>): MetricFamily[] {
  const models = Object.entries(p.models && typeof p.models === 'object' ? p.models : {}).map(([key, s]) => {
    const i = key.lastIndexOf(':');
    return { labels: { model: key.slice(0, i), version: key.slice(i + 1) }, s };
  });
  const counter = (name: string, help: string, pick: (s: CacheStatsPayload['models'][string]) => number): MetricFamily =>
    metricFamily(name, help, 'counter', models.map(({ labels, s }) => ({ value: num(pick(s)), labels })));
  return [
    counter('clipper_cache_lookups_total', 'Prediction cache lookups', (s) => s.lookups),
    metricFamily('clipper_cache_hits_total', 'Lookups answered from the cache: match="exact" (same input bytes) or "approx" (a cached input within the tolerance)', 'counter',
      models.flatMap(({ labels, s }) => [
        { value: num(s.hits) - num(s.approx_hits), labels: { ...labels, match: 'exact' } },
        { value: num(s.approx_hits), labels: { ...labels, match: 'approx' } },
      ])),
    counter('clipper_cache_misses_total', 'Lookups not in the cache (forwarded to the model, or coalesced)', (s) => s.misses),
    counter('clipper_cache_coalesced_total', 'Misses that waited for an identical evaluation already in flight', (s) => s.coalesced),
    counter('clipper_cache_puts_total', 'Predictions stored in the cache', (s) => s.puts),
    metricFamily('clipper_cache_evictions_total', 'Entries evicted to stay within the byte budget', 'counter', [{ value: num(p.evictions), labels: {} }]),
    metricFamily('clipper_cache_entries', 'Entries in the cache now', 'gauge', [{ value: num(p.entries), labels: {} }]),
    metricFamily('clipper_cache_bytes', 'Bytes the cache holds now', 'gauge', [{ value: num(p.bytes), labels: {} }]),
  ];
}

export function policyFamilies(p: Partial<PolicyStatsPayload>): MetricFamily[] {
  const weights: MetricSample[] = [];
  for (const [shard, apps] of Object.entries(p.weights ?? {})) {
    for (const [app, models] of Object.entries(apps ?? {})) {
      for (const [model, w] of Object.entries(models ?? {})) weights.push({ value: num(w), labels: { app, model, shard } });
    }
  }
  const applied: MetricSample[] = [];
  const processed: MetricSample[] = [];
  const skipped: MetricSample[] = [];
  const lag: MetricSample[] = [];
  for (const [shard, st] of Object.entries(p.feedback ?? {})) {
    if (!st) continue;
    for (const [app, a] of Object.entries(st.apps ?? {})) applied.push({ value: num(a?.applied), labels: { app, shard } });
    processed.push({ value: num(st.processed), labels: { shard } });
    skipped.push({ value: num(st.skipped), labels: { shard } });
    lag.push({ value: num(st.lag), labels: { shard } });
  }
  return [
    metricFamily('clipper_policy_weight', 'Population weight of a model in an app\'s exp3/exp4 policy: softmax of its log-weight (sums to 1 per app and shard)', 'gauge', weights),
    metricFamily('clipper_feedback_applied', 'Feedback observations the app\'s learned state covers on the shard (a replay resets it)', 'gauge', applied),
    metricFamily('clipper_feedback_processed_total', 'Feedback observations evaluated and applied by the shard', 'counter', processed),
    metricFamily('clipper_feedback_skipped_total', 'Feedback observations skipped as already applied (redeliveries)', 'counter', skipped),
    metricFamily('clipper_feedback_lag', 'Feedback observations stored but not yet applied by the shard', 'gauge', lag),
  ];
}
