// The three splits of the digits rows that the ensemble members and the
// correction policies (Exp3/Exp4, Clipper §5) share:
//   TEST     the MLP trainer's held-out 20% (same splitTrainTest call), never trained on;
//   FIT      75% of the rest, the only rows any ensemble member is trained on;
//   FEEDBACK 25% of the rest, streamed as feedback to learn ensemble weights.
// Members never see FEEDBACK, so they are not unrealistically right on it.

import { splitTrainTest } from './mlp.js';

/** Same as infra/train-digits.ts, so TEST is exactly digits-mlp's held-out split. */
export const TEST_FRACTION = 0.2;
export const TEST_SPLIT_SEED = 2024;
/** Fraction of the non-test rows that goes to FEEDBACK. */
export const FEEDBACK_FRACTION = 0.25;
export const FEEDBACK_SPLIT_SEED = 2025;

/** Row indices into the digits data set, each list ascending; the three are disjoint and cover every row. */
export interface EnsembleSplits {
  readonly fit: number[];
  readonly feedback: number[];
  readonly test: number[];
}

/** Deterministic, stratified FIT / FEEDBACK / TEST split of the rows with these labels. */
export function ensembleSplits(labels: ArrayLike<number>): EnsembleSplits {
  const outer = splitTrainTest(labels.length, TEST_FRACTION, TEST_SPLIT_SEED, labels);
  const rest = outer.train;
  const inner = splitTrainTest(rest.length, FEEDBACK_FRACTION, FEEDBACK_SPLIT_SEED, rest.map((i) => labels[i]!));
  // inner indices point into `rest`, which is ascending, so the mapped lists stay ascending.
  return {
    fit: inner.train.map((j) => rest[j]!),
    feedback: inner.test.map((j) => rest[j]!),
    test: outer.test,
  };
}
