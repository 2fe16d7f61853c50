/**
 * The scheduler's distributions, kept with prom-client in this process and shipped in its
 * `$SRV.STATS` data as prom-client JSON (`metrics`); the ingress sums every process's series into
 * `GET /metrics`. Queue wait per task, and per batch its size and the worker's compute time.
 */
import { Histogram, Registry } from 'prom-client';

/** Seconds, from 100 µs (an idle queue) to 1 s (far past any SLO). */
export const DURATION_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class SchedulerMetrics {
  private readonly registry = new Registry();
  private readonly queueDuration: Histogram;
  private readonly computeDuration: Histogram;
  private readonly batchSize: Histogram;

  constructor(labels: { model: string; version: string }) {
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    this.queueDuration = new Histogram({ name: 'clipper_queue_duration_seconds', help: 'Time a task waited in its scheduler\'s queue before its batch was sent', buckets: DURATION_BUCKETS_S, registers });
    this.computeDuration = new Histogram({ name: 'clipper_batch_compute_duration_seconds', help: 'Time a worker spent evaluating one batch (compute_us)', buckets: DURATION_BUCKETS_S, registers });
    this.batchSize = new Histogram({ name: 'clipper_batch_size', help: 'Tasks per batch sent to a worker', buckets: BATCH_SIZE_BUCKETS, registers });
  }

  /** A task left the queue for a batch after `seconds` in it. */
  queued(seconds: number): void {
    this.queueDuration.observe(seconds);
  }

  /** A batch of `size` tasks came back; the worker computed for `computeSeconds`. */
  batchDone(size: number, computeSeconds: number): void {
    this.batchSize.observe(size);
    this.computeDuration.observe(computeSeconds);
  }

  /** Every series, cumulative since this process started, in prom-client's JSON form. */
  json(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }
}
