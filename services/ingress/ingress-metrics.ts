/**
 * The ingress's own metrics, kept with prom-client where they happen (every query and observation
 * passes through an ingress), plus the recent windows behind the dashboard and `clipper status`.
 * `exposition()` adds the other actors' families (ClusterStats) into one Prometheus text.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AppRecord, RegistryView } from '../../shared/registry.js';
import type { ClusterStats } from './cluster-stats.js';
import { RecentQueries, type QueryOutcome } from './recent-queries.js';

/** Seconds, around the SLOs apps use: 0.5 ms to 1 s. */
export const REQUEST_DURATION_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

/** Where the gauges read the ingress's current state at scrape time. */
export interface IngressMetricSources {
  /** Requests the ingress is handling now. */
  inFlight: () => number;
  /** The near cache's hit and miss counts, when it has one. */
  near?: () => { hits: number; misses: number } | undefined;
  /** The edge shedder's current share for an app (reading it closes a window whose time is up, as the next query would). */
  shedShare?: (app: string) => number;
  /** The time an app's model takes to answer nine times in ten, ms, once known (answer-times.ts). */
  answerTimeMs?: (app: string) => number | undefined;
}

/** Why the ingress refused a query before reading it. */
export type EdgeRefusalCause = 'slo_spent' | 'too_little_left' | 'shed';

export class IngressMetrics {
  readonly registry = new Registry();
  readonly recent = new RecentQueries();
  private readonly requests: Counter<'app' | 'outcome'>;
  private readonly withinSlo: Counter<'app'>;
  private readonly duration: Histogram<'app'>;
  private readonly queueWait: Histogram<'app'>;
  private readonly feedback: Counter<'app' | 'outcome'>;
  private readonly edgeRefusals: Counter<'app' | 'cause'>;

  constructor(view: RegistryView, sources: IngressMetricSources) {
    const { inFlight, near, shedShare, answerTimeMs } = sources;
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'clipper_requests_total', help: 'Queries by app and outcome: ok (a model answered), default (the app\'s default output), refused (503, overload), error, forwarded (a direct NATS query: the worker answered the client, not counted in the latency histogram)', labelNames: ['app', 'outcome'], registers,
    });
    this.withinSlo = new Counter({ name: 'clipper_requests_within_slo_total', help: 'Queries a model answered within the app\'s latency SLO', labelNames: ['app'], registers });
    this.duration = new Histogram({
      name: 'clipper_request_duration_seconds', help: 'Time from a query\'s arrival at the ingress to its answer (model or default output)', labelNames: ['app'], buckets: REQUEST_DURATION_BUCKETS_S, registers,
    });
    this.queueWait = new Histogram({
      name: 'clipper_request_queue_seconds', help: 'Time from a query\'s X-Request-Start stamp (set by the client or a load balancer) to its arrival at the ingress; only queries that carry one', labelNames: ['app'], buckets: REQUEST_DURATION_BUCKETS_S, registers,
    });
    this.feedback = new Counter({ name: 'clipper_feedback_total', help: 'Feedback observations by app and outcome: stored (acknowledged by JetStream) or error', labelNames: ['app', 'outcome'], registers });
    new Gauge({
      name: 'clipper_app_slo_seconds', help: 'Latency SLO of each app', labelNames: ['app'], registers,
      collect() {
        this.reset();
        for (const a of view.apps.values()) this.set({ app: a.name }, a.latency_slo_micros / 1e6);
      },
    });
    new Gauge({
      name: 'clipper_ingress_shed_share', help: 'Share of each app\'s new queries this ingress refuses before reading them, as set at the end of its last 200 ms window (load shedding; 0 when its models keep up)', labelNames: ['app'], registers,
      collect() {
        this.reset();
        if (shedShare) for (const a of view.apps.values()) this.set({ app: a.name }, shedShare(a.name));
      },
    });
    this.edgeRefusals = new Counter({
      name: 'clipper_ingress_edge_refusals_total', help: 'Queries this ingress refused before reading them, by cause: slo_spent (X-Request-Start: the SLO was spent in front of it), too_little_left (less of the SLO left than the app\'s model takes to answer nine times in ten), shed (the load shedder\'s share)', labelNames: ['app', 'cause'], registers,
    });
    new Gauge({
      name: 'clipper_ingress_answer_time_p10_seconds', help: 'The time from this ingress\'s read of a query to a model\'s answer that nine answers in ten take or more, per app answered by one model at a time, from 20 answers on: a stamped query left less of its SLO is refused', labelNames: ['app'], registers,
      collect() {
        this.reset();
        if (answerTimeMs) {
          for (const a of view.apps.values()) {
            const ms = answerTimeMs(a.name);
            if (ms !== undefined) this.set({ app: a.name }, ms / 1000);
          }
        }
      },
    });
    new Gauge({ name: 'clipper_ingress_requests_in_flight', help: 'HTTP and NATS requests this ingress is handling now', registers, collect() { this.set(inFlight()); } });
    new Counter({
      name: 'clipper_near_cache_lookups_total', help: 'Exact-mode lookups in this ingress\'s near cache, by result: hit (answered here) or miss (asked the cache shard)', labelNames: ['result'], registers,
      collect() {
        const c = near?.();
        this.reset();
        if (c) {
          this.inc({ result: 'hit' }, c.hits);
          this.inc({ result: 'miss' }, c.misses);
        }
      },
    });
  }

  /** One query of `app` ended; `startedMs` is performance.now() at its arrival. */
  query(app: AppRecord, outcome: QueryOutcome, startedMs: number): void {
    this.requests.inc({ app: app.name, outcome });
    if (outcome === 'ok' || outcome === 'default') {
      const ms = performance.now() - startedMs;
      const within = outcome === 'ok' && ms * 1000 <= app.latency_slo_micros;
      this.duration.observe({ app: app.name }, ms / 1000);
      this.withinSlo.inc({ app: app.name }, within ? 1 : 0);
      this.recent.record(app.name, outcome, ms, within);
    } else {
      this.recent.record(app.name, outcome);
    }
  }

  /** A query of `app` was refused before it was read (counted as `refused` too). */
  edgeRefusal(app: AppRecord, cause: EdgeRefusalCause): void {
    this.query(app, 'refused', 0);
    this.edgeRefusals.inc({ app: app.name, cause });
  }

  /** A query of `app` carried an X-Request-Start stamp `waitedMs` before it arrived here. */
  queued(app: AppRecord, waitedMs: number): void {
    this.queueWait.observe({ app: app.name }, waitedMs / 1000);
  }

  feedbackDone(app: string, outcome: 'stored' | 'error'): void {
    this.feedback.inc({ app, outcome });
  }

  /** This ingress's metrics and every actor's, in the Prometheus text format. */
  async exposition(cluster: ClusterStats): Promise<string> {
    const own = await this.registry.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([own, ...cluster.families()]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
