/**
 * The worker's warm-up at load: batches of growing size (1, 2, 4, … up to the model's largest batch)
 * of a row the model takes, each run a few times, before the replica says it is ready. It warms the
 * model and the process (the runtime's buffers for each batch shape, V8's code for the batch path),
 * and what it measures, the compute time per batch size, goes to the scheduler in the replica's
 * heartbeats. There it sets the batch size adaptive batching starts from (scheduler.ts,
 * `seedReplica`) instead of 1.
 */
import type { ProfilePoint } from '../../shared/protocol.js';

export interface WarmUpOptions {
  /** Largest batch the model may be given (its fixed `batch_size`, or the adaptive sizer's cap). */
  maxBatchSize: number;
  /** Runs per size; the median counts (default 3). */
  repeats?: number;
  /** No larger size is started after this much time in all, ms (default 2000): big models stop early. */
  timeLimitMs?: number;
  /** A size above 1 failed: the profile ends with the sizes before it (default: it is rethrown). */
  onFailure?: (size: number, err: unknown) => void;
  /** Clock in ms (tests pass their own). */
  now?: () => number;
}

/** Sizes the warm-up runs: powers of two up to `maxBatchSize`, and `maxBatchSize` itself. */
export function warmUpSizes(maxBatchSize: number): number[] {
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be an integer ≥ 1, got ${maxBatchSize}`);
  const sizes: number[] = [];
  for (let n = 1; n < maxBatchSize; n *= 2) sizes.push(n);
  sizes.push(maxBatchSize);
  return sizes;
}

/**
 * Runs `run(size)` for each warm-up size, `repeats` times, and returns each size's median compute
 * time, in order of size. Stops before a size once `timeLimitMs` is spent (at least size 1 runs).
 * A failure at size 1 throws: a model that cannot take its own sample row is not ready. A failure at
 * a larger size (memory, an operator that takes no batches) ends the profile there, with `onFailure`
 * told; the model still serves the sizes that worked.
 */
export async function profileBatches(run: (size: number) => Promise<unknown>, opts: WarmUpOptions): Promise<ProfilePoint[]> {
  const repeats = opts.repeats ?? 3;
  const timeLimitMs = opts.timeLimitMs ?? 2_000;
  const now = opts.now ?? (() => performance.now());
  if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError(`repeats must be an integer ≥ 1, got ${repeats}`);
  const started = now();
  const points: ProfilePoint[] = [];
  for (const size of warmUpSizes(opts.maxBatchSize)) {
    if (points.length > 0 && now() - started >= timeLimitMs) break;
    const runs: number[] = [];
    try {
      for (let i = 0; i < repeats; i++) {
        const t0 = now();
        await run(size);
        runs.push((now() - t0) * 1000);
      }
    } catch (err) {
      if (size === 1 || !opts.onFailure) throw err;
      opts.onFailure(size, err);
      break;
    }
    runs.sort((a, b) => a - b);
    points.push({ size, compute_us: Math.round(runs[Math.floor(runs.length / 2)]!) });
  }
  return points;
}
