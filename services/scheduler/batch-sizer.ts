/**
 * How many queued tasks go into the next batch. The scheduler asks `batchSize()` before each
 * dispatch and reports each finished batch to `observe()`; adaptive sizers (AIMD, Clipper §4.3)
 * implement the same interface.
 */
export interface BatchSizer {
  /** Largest batch to send next. */
  batchSize(): number;
  /** A batch of `size` tasks took `latencyUs` end to end on a replica. */
  observe(size: number, latencyUs: number): void;
}

/** A fixed maximum batch size (the model's `batch_size`). */
export class FixedBatchSizer implements BatchSizer {
  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  }

  batchSize(): number {
    return this.size;
  }

  observe(): void {
    // fixed: nothing to learn
  }
}

/** Batch size used for `batch_size: -1` (adaptive) until an adaptive sizer is configured. */
export const DEFAULT_MAX_BATCH = 32;

export function createBatchSizer(batchSize: number): BatchSizer {
  return new FixedBatchSizer(batchSize > 0 ? batchSize : DEFAULT_MAX_BATCH);
}
