/**
 * When would a task queued now be done, and how big may a batch be (`batchSizeFor`)? The scheduler's
 * admission, drops and batch cuts go by this. Pure logic, unit-tested.
 *
 * Each replica's batch latency is modelled as a line, latency ≈ a + b·size, fitted by exponentially
 * weighted least squares over its recent batches (`BatchLatencyModel`). A batch has a fixed cost (the
 * NATS round trip, process wake-ups, the model's per-call overhead) and a per-task cost, and the two
 * matter for different questions: at moderate load batches are small and the fixed cost dominates,
 * so latency / size overstates what a task costs in the larger batch a burst would form. That
 * over-estimate refused tasks that would have made their deadline.
 *
 * `completionMs` then plays the queue out: replicas take batches of their current size limit as they
 * become free, earliest free first, until the task's own batch is done.
 */
import { EwlsLine } from './aimd-batch-sizer.js';

/** Batch latency of one replica, from what it measured. */
export class BatchLatencyModel {
  private readonly line: EwlsLine;
  private latencyEwmaUs = 0;
  private sizeEwma = 0;
  private seen = 0;

  /** `decay`: weight of older batches per new one in the line fit (an effective window of 1 / (1 − decay)). */
  constructor(decay = 0.98) {
    this.line = new EwlsLine(decay);
  }

  /** Batches observed so far. */
  get count(): number {
    return this.seen;
  }

  /** A batch of `size` tasks took `latencyUs` (dispatch to done). Invalid observations are ignored. */
  observe(size: number, latencyUs: number): void {
    if (!(Number.isFinite(size) && size >= 1 && Number.isFinite(latencyUs) && latencyUs >= 0)) return;
    this.line.add(size, latencyUs);
    const first = this.seen === 0;
    this.latencyEwmaUs = first ? latencyUs : 0.8 * this.latencyEwmaUs + 0.2 * latencyUs;
    this.sizeEwma = first ? size : 0.8 * this.sizeEwma + 0.2 * size;
    this.seen++;
  }

  /**
   * Predicted latency of a batch of `size`, µs; undefined before any batch. Until the line has a few
   * points (and whenever the sizes seen hardly vary, so the slope is not identified) the estimate is
   * the recent latency per task times `size`, the cautious reading.
   */
  estimateUs(size: number): number | undefined {
    if (this.seen === 0) return undefined;
    const perTaskUs = this.latencyEwmaUs / this.sizeEwma;
    if (this.seen < MIN_FIT_POINTS) return perTaskUs * size;
    const [a, b] = this.line.fit()!;
    return a + b * size;
  }
}

/** Batches a line needs before its fit replaces latency-per-task. */
export const MIN_FIT_POINTS = 8;

/** What the estimate needs of one replica. */
export interface ReplicaOutlook {
  /** Milliseconds until it can take its next batch (0 when it has capacity now). */
  freeInMs: number;
  /** Tasks it takes per batch (its sizer's current limit, ≥ 1). */
  batchSize: number;
  /** Predicted latency of a batch of `size`, ms. */
  latencyMs(size: number): number;
}

/** Batches played out one by one before the rest of the queue is taken at the replicas' throughput. */
const MAX_SIMULATED_BATCHES = 64;

/**
 * Milliseconds from now until a task with `ahead` tasks before it in the queue would be done, or
 * undefined without replicas. Each batch goes to the replica free soonest and takes min(its size
 * limit, tasks left) tasks; the task's own batch is the one that reaches it. With delayed batching,
 * a batch under its replica's limit waits for more tasks, a full one goes as soon as its replica is
 * free: a first batch under the limit starts no earlier than `partialStartMs` from now (when the
 * head of the queue, the task with the earliest deadline, has waited the delay), a later one no
 * earlier than `laterPartialStartMs` (its head is queued by now, so its wait ends by now + delay).
 */
export function completionMs(ahead: number, replicas: readonly ReplicaOutlook[], partialStartMs = 0, laterPartialStartMs = partialStartMs): number | undefined {
  if (replicas.length === 0) return undefined;
  const free = replicas.map((r) => Math.max(0, r.freeInMs));
  let left = Math.max(0, ahead) + 1;
  for (let n = 0; n < MAX_SIMULATED_BATCHES; n++) {
    let i = 0;
    for (let k = 1; k < free.length; k++) if (free[k]! < free[i]!) i = k;
    const r = replicas[i]!;
    const limit = Math.max(1, Math.floor(r.batchSize));
    const size = Math.min(limit, left);
    const start = size < limit ? Math.max(free[i]!, n === 0 ? partialStartMs : laterPartialStartMs) : free[i]!;
    const done = start + r.latencyMs(size);
    left -= size;
    if (left <= 0) return done;
    free[i] = done;
  }
  // A long queue: the rest drains at the replicas' combined throughput, then the last batch runs.
  let tasksPerMs = 0;
  for (const r of replicas) {
    const size = Math.max(1, Math.floor(r.batchSize));
    tasksPerMs += size / Math.max(1e-6, r.latencyMs(size));
  }
  return Math.min(...free) + left / tasksPerMs;
}

/**
 * How many tasks the next batch takes. The head of the EDF queue has the tightest deadline,
 * `headSlackMs` from now, so the batch is as big as `limit` (the sizer's size, at most what is queued)
 * and as the head can wait for: its estimated latency plus `marginMs` must end before that deadline;
 * every task behind the head, due later, fits too. 0 when the head is not expected to make it even
 * in a batch of its own: it is dropped instead.
 */
export function batchSizeFor(headSlackMs: number, limit: number, latencyMs: (size: number) => number, marginMs: number): number {
  if (headSlackMs <= latencyMs(1) + marginMs) return 0;
  let size = Math.max(1, Math.floor(limit));
  while (size > 1 && headSlackMs <= latencyMs(size) + marginMs) size--;
  return size;
}
