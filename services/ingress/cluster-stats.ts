/**
 * The other actors' state, polled: every `pollMs` the ingress asks `$SRV.STATS` of the schedulers,
 * cache and policy processes of its deployment (same subject prefix), turns their data into metric
 * families, adds their cumulative counts to restart-proof totals and keeps their current values
 * while they keep answering. `/metrics`, `/status` and the dashboard read from here.
 */
import { RequestStrategy, type NatsConnection, type ServiceStats } from 'nats';
import type { Logger } from '../../shared/logging.js';
import type { CacheStatsPayload, PolicyStatsPayload, SchedulerStatsPayload } from '../../shared/protocol.js';
import type { RegistryView } from '../../shared/registry.js';
import { CumulativeTotals } from './cumulative-totals.js';
import { metricFamily, type MetricFamily, type MetricSample } from './metric-families.js';
import { REPLICA_STATES, ReplicaHealth } from './replica-health.js';
import { cacheFamilies, policyFamilies, replicaOf, schedulerFamilies } from './stats-families.js';

export const POLLED_SERVICES = ['clipper-scheduler', 'clipper-cache', 'clipper-policy'] as const;
type PolledService = (typeof POLLED_SERVICES)[number];

/** The latest answer of one process. */
export interface SourceState<T> {
  service: PolledService;
  id: string;
  seenUnixMs: number;
  data: Partial<T>;
  metadata: Record<string, string>;
}

export interface ClusterStatsDeps {
  nc: NatsConnection;
  log: Logger;
  view: RegistryView;
  prefix: string;
}

/** How long past its last answer a process's current values still count. */
const STALE_POLLS = 3;
/** A process silent this long is forgotten by the totals (what it counted stays). */
const FORGET_AFTER_MS = 10 * 60_000;

export class ClusterStats {
  readonly totals = new CumulativeTotals();
  readonly health = new ReplicaHealth();
  private readonly sources = new Map<string, SourceState<unknown> & { gauges: MetricFamily[] }>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** When the last poll finished (0: never). */
  polledUnixMs = 0;

  constructor(private readonly deps: ClusterStatsDeps, readonly pollMs: number) {}

  start(): void {
    if (this.pollMs <= 0) return;
    const loop = (): void => {
      if (this.stopped) return;
      void this.poll().catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'stats poll failed')).then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.pollMs);
      });
    };
    loop();
  }

  /** Stops polling; a poll in flight ends with the connection (its answers are dropped). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Asks every polled service once and folds the answers in. */
  async poll(): Promise<void> {
    if (this.deps.nc.isClosed() || this.deps.nc.isDraining()) return;
    const client = this.deps.nc.services.client({ strategy: RequestStrategy.JitterTimer, maxWait: Math.min(1_000, Math.max(200, this.pollMs * 0.75)), jitter: 100 });
    const answers = await Promise.all(POLLED_SERVICES.map(async (service) => {
      const got: ServiceStats[] = [];
      try {
        for await (const s of await client.stats(service)) got.push(s);
      } catch (err) {
        // no responders (nothing of that kind running yet), or the connection is closing
        this.deps.log.debug({ service, err: (err as Error).message }, 'no stats');
      }
      return { service, got };
    }));
    if (this.stopped) return;
    const now = Date.now();
    for (const { service, got } of answers) {
      for (const s of got) {
        const metadata = s.metadata ?? {};
        if ((metadata.prefix ?? this.deps.prefix) !== this.deps.prefix) continue;
        this.fold(service, s.id, metadata, (s.endpoints?.[0]?.data ?? {}) as Record<string, unknown>, now);
      }
    }
    const staleBefore = now - STALE_POLLS * Math.max(this.pollMs, 1_000);
    for (const [key, src] of this.sources) if (src.seenUnixMs < staleBefore) this.sources.delete(key);
    const liveModels = new Set(this.schedulers().map((s) => `${s.metadata.model}.${s.metadata.version}`));
    for (const key of this.health.models()) {
      if (!liveModels.has(key)) {
        const [model, version] = key.split('.');
        this.health.forgetModel(model!, version!);
      }
    }
    this.totals.forget(now - FORGET_AFTER_MS);
    this.polledUnixMs = now;
  }

  private fold(service: PolledService, id: string, metadata: Record<string, string>, data: Record<string, unknown>, now: number): void {
    let families: MetricFamily[];
    if (service === 'clipper-scheduler') {
      const { model, version } = metadata;
      if (!model || !version) return;
      const p = data as Partial<SchedulerStatsPayload>;
      families = schedulerFamilies(p, model, version);
      const replicas = Array.isArray(p.replicas) ? p.replicas : [];
      this.health.observe(model, version, replicas.map((r) => ({ replica: replicaOf(String(r.id)), draining: !!r.draining })), now);
    } else if (service === 'clipper-cache') {
      families = cacheFamilies(data as Partial<CacheStatsPayload>);
    } else {
      families = policyFamilies(data as Partial<PolicyStatsPayload>);
    }
    const key = `${service}/${id}`;
    this.totals.report(key, families, now);
    this.sources.set(key, { service, id, seenUnixMs: now, data, metadata, gauges: families.filter((f) => f.type === 'gauge') });
  }

  /** The schedulers answering now. */
  schedulers(): SourceState<SchedulerStatsPayload>[] {
    return this.live('clipper-scheduler') as SourceState<SchedulerStatsPayload>[];
  }

  caches(): SourceState<CacheStatsPayload>[] {
    return this.live('clipper-cache') as SourceState<CacheStatsPayload>[];
  }

  policies(): SourceState<PolicyStatsPayload>[] {
    return this.live('clipper-policy') as SourceState<PolicyStatsPayload>[];
  }

  private live(service: PolledService): SourceState<unknown>[] {
    return [...this.sources.values()].filter((s) => s.service === service);
  }

  /**
   * Every family, one list per source (equal series are summed by `AggregatorRegistry.aggregate`):
   * the totals, each live process's gauges, and what is derived here (replica states, replica
   * counts, processes per service).
   */
  families(): MetricFamily[][] {
    const now = Date.now();
    const rows = this.health.rows(now);
    const states: MetricSample[] = rows.flatMap((r) => REPLICA_STATES.map((state) => ({ value: r.state === state ? 1 : 0, labels: { model: r.model, version: r.version, replica: r.replica, state } })));
    const desired: MetricSample[] = this.deps.view.deployed().map((m) => ({ value: m.num_replicas, labels: { model: m.name, version: m.version } }));
    const ready: MetricSample[] = this.deps.view.deployed().map((m) => ({
      value: rows.filter((r) => r.model === m.name && r.version === m.version && r.state === 'up').length, labels: { model: m.name, version: m.version },
    }));
    const processes: MetricSample[] = POLLED_SERVICES.map((service) => ({ value: this.live(service).length, labels: { service } }));
    const derived = [
      metricFamily('clipper_replica_state', 'Worker replica state as its scheduler sees it: 1 for the current state (up, draining, or dead: dropped within the last minute)', 'gauge', states),
      metricFamily('clipper_model_replicas_desired', 'Worker replicas the registry asks for (num_replicas of the current version)', 'gauge', desired),
      metricFamily('clipper_model_replicas_ready', 'Worker replicas up and taking batches', 'gauge', ready),
      metricFamily('clipper_actor_processes', 'Processes of each polled service answering the ingress\'s stats polls (heard within the last three)', 'gauge', processes),
      metricFamily('clipper_stats_poll_timestamp_seconds', 'When the ingress last polled the actors\' stats (Unix time)', 'gauge', [{ value: this.polledUnixMs / 1000, labels: {} }]),
    ];
    return [this.totals.families(), ...[...this.sources.values()].map((s) => s.gauges), derived];
  }
}
