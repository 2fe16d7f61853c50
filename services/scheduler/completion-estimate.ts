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

/**
 * A running estimate of a quantile of what it observes, in ms, by stochastic approximation: up by
 * `stepMs`·q when a value is over the current estimate, down by `stepMs`·(1 − q) otherwise (each
 * scaled by the value's weight: 1/n for the n tasks of a batch), so that about a share 1 − q of the
 * values end up over it. The scheduler keeps two.
 *
 * The lateness margin: a high quantile of how late tasks finish against their predicted completion,
 * so that about a share 1 − q of tasks end up later. Admission keeps this much in hand: on a busy
 * machine the prediction misses process wake-ups and contention that a line fit of past batches
 * cannot see. Never below 0. The step sets how fast it follows a change: with 0.5 ms and q = 0.98 it
 * falls 1 ms per 100 on-time batches once an overload is over (with 0.05 ms and q = 0.99, 10 s at
 * 1000/s, and the leftover margin refused most of the load that followed), and it jitters by about
 * one step. Why the 98th percentile: the scheduler also drops a queued task, and cuts a batch, by
 * this margin, so under overload about a share 1 − q of the admitted tasks that wait to the limit
 * still end late, as default answers. At 2× capacity (4600/s offered, 2300/s served) the 95th left
 * 250–290 default answers in 20 s, the 98th 90–150, the 99th 80–90, with goodput within the runs'
 * noise; on a slower VM, whose lateness had a heavier tail (P95 2–3 ms, P99 10–15 ms: a process
 * preempted for a time slice), keeping the 99th in hand refused a share of the load at rates well
 * under capacity.
 *
 * The usual trip to the scheduler (refusal.ts, `delayedUpstream`): the lower quartile of how long
 * tasks took to reach it, with `startAtFirst` (it starts at the first value instead of 0, and is
 * undefined before it, so that it need not climb from 0 at light load).
 */
export class RunningQuantile {
  private value: number | undefined;
  private observed = 0;

  constructor(private readonly q = 0.98, private readonly stepMs = 0.5, opts: { startAtFirst?: boolean } = {}) {
    if (!(q > 0 && q < 1)) throw new RangeError(`q must be in (0, 1), got ${q}`);
    if (!(stepMs > 0)) throw new RangeError(`stepMs must be positive, got ${stepMs}`);
    if (!opts.startAtFirst) this.value = 0;
  }

  /** Current estimate, ms (≥ 0; 0 before any observation). */
  get ms(): number {
    return this.value ?? 0;
  }

  /** The estimate, or undefined while a `startAtFirst` one has seen nothing. */
  get known(): number | undefined {
    return this.value;
  }

  /** Finite values observed so far. */
  get count(): number {
    return this.observed;
  }

  /** A task finished `lateMs` after its predicted completion (negative: early); or any other observation. */
  observe(lateMs: number): void {
    this.move(lateMs, 1);
  }

  /**
   * The tasks of one batch, each weighing 1/n: a batch moves the margin by at most one step. Tasks of
   * a batch are late together (one stall delays the whole batch and the queue behind it), so counted
   * one by one, a single 15 ms stall of a 30-task batch raised the margin by 14 ms; admission then
   * refused every task that found a queue, far under capacity, until ~400 on-time tasks brought it
   * down (measured: margin 11.8–13.1 ms at 1000–1500/s where the models serve 2000/s).
   */
  observeBatch(lateMs: readonly number[]): void {
    const w = 1 / lateMs.length;
    for (const l of lateMs) this.move(l, w);
  }

  private move(lateMs: number, weight: number): void {
    if (!Number.isFinite(lateMs)) return;
    this.observed++;
    if (this.value === undefined) {
      this.value = Math.max(0, lateMs);
      return;
    }
    this.value = Math.max(0, this.value + weight * (lateMs > this.value ? this.stepMs * this.q : -this.stepMs * (1 - this.q)));
  }
}
