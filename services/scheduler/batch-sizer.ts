/**
 * How many queued tasks go into the next batch. The scheduler keeps one sizer per worker replica,
 * asks `batchSize()` before each dispatch and reports each finished batch to `observe()`.
 * Implementations: a fixed size (the model's `batch_size`), AIMD (Clipper §4.3, the default for
 * `batch_size: -1`) and a quantile-regression estimate of the largest batch whose P99 fits.
 */
export interface BatchSizer {
  /** Largest batch to send next (≥ 1). */
  batchSize(): number;
  /** A batch of `size` tasks took `latencyUs` on a replica (dispatch to completion). */
  observe(size: number, latencyUs: number): void;
  /** Predicted latency of a batch of `size` in µs, once enough has been observed. */
  estimateLatencyUs(size: number): number | undefined;
  /** The latency budget a batch must fit in changed (e.g. an app's SLO changed). */
  setBudgetUs(budgetUs: number): void;
  /**
   * The replica's warm-up says batches of `size` fit the budget: an adaptive sizer starts there
   * instead of at its initial size, unless it has observed a batch already (a fixed size ignores it).
   */
  startAt(size: number): void;
}

/** A fixed maximum batch size (the model's `batch_size`). */
export class FixedBatchSizer implements BatchSizer {
  private latencyPerTaskUs?: number;

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  }

  batchSize(): number {
    return this.size;
  }

  observe(size: number, latencyUs: number): void {
    // An exponentially weighted mean per task, only for deadline estimates.
    const perTask = latencyUs / Math.max(1, size);
    this.latencyPerTaskUs = this.latencyPerTaskUs === undefined ? perTask : 0.9 * this.latencyPerTaskUs + 0.1 * perTask;
  }

  estimateLatencyUs(size: number): number | undefined {
    return this.latencyPerTaskUs === undefined ? undefined : this.latencyPerTaskUs * size;
  }

  setBudgetUs(): void {
    // fixed: the budget does not change the size
  }

  startAt(): void {
    // fixed: the size is the model's
  }
}
