/**
 * Picks a BatchSizer by name: a fixed size, Clipper's AIMD adaptive batching (NSDI'17 §4.3) or its
 * quantile-regression alternative (largest batch whose P99 latency fits the budget).
 */
import { AimdBatchSizer } from './aimd-batch-sizer.js';
import { FixedBatchSizer, type BatchSizer } from './batch-sizer.js';
import { QuantileBatchSizer } from './quantile-batch-sizer.js';
import type { ProfilePoint } from '../../shared/protocol.js';

export type SizerKind = 'fixed' | 'aimd' | 'quantile';

export const SIZER_KINDS: readonly SizerKind[] = ['fixed', 'aimd', 'quantile'];

export interface CreateBatchSizerOptions {
  kind: SizerKind;
  /** The fixed size (required for `fixed`, ignored otherwise). */
  batchSize?: number;
  /** Upper cap for the adaptive sizers. */
  maxBatchSize: number;
  /** Latency budget of one batch, µs, for the adaptive sizers. */
  budgetUs: number;
}

export function createBatchSizer(opts: CreateBatchSizerOptions): BatchSizer {
  switch (opts.kind) {
    case 'fixed':
      if (opts.batchSize === undefined || !Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
        throw new RangeError(`a fixed batch sizer needs a positive integer batchSize, got ${opts.batchSize}`);
      }
      return new FixedBatchSizer(opts.batchSize);
    case 'aimd':
      return new AimdBatchSizer({ budgetUs: opts.budgetUs, maxBatchSize: opts.maxBatchSize });
    case 'quantile':
      return new QuantileBatchSizer({ budgetUs: opts.budgetUs, maxBatchSize: opts.maxBatchSize });
    default:
      throw new RangeError(`unknown batch sizer kind ${String((opts as { kind: unknown }).kind)}`);
  }
}

/**
 * Where an adaptive sizer starts on a replica whose warm-up measured `profile` (compute time per batch
 * size): the largest profiled size that computes in at most half the budget, since the round trip
 * and contention the warm-up does not see take their share too; 1 when none does.
 */
export function startingBatchSize(profile: readonly ProfilePoint[], budgetUs: number): number {
  let size = 1;
  for (const p of profile) if (p.compute_us <= budgetUs / 2) size = Math.max(size, p.size);
  return size;
}
