/**
 * Weighted ensembles of model outputs (Clipper §5.2: Exp4 combines every model's prediction by its
 * weight) with anytime substitutes (§5.2.2: a model that missed the deadline is replaced by its
 * expected output). Class-probability outputs are averaged as normalised distributions, regression
 * outputs as a weighted mean. Confidence is the agreement of the models that actually answered.
 */
import { fromNumbers, type Tensor } from '../../shared/tensor.js';
import { normalizedProbabilities, numericValues } from './losses.js';
import { modelKey, type Combined, type ExpectedOutputs, type ModelRef } from './types.js';

/** How outputs are combined. */
export interface CombineOptions {
  /** Regression confidence falls to 0 as the spread of the answers nears |combined| + `regressionScale` (default 1). */
  regressionScale?: number;
}

interface Part {
  key: string;
  answered: boolean;
  weight: number;
  tensor: Tensor;
  values: number[];
}

/**
 * Combines the outputs of `selected` (weights[i] is the weight of selected[i]; negative or
 * non-finite weights count as 0, and all-zero weights as equal ones). Missing outputs are replaced
 * by `expected(model)` when it has one; models with neither are left out and the weights
 * renormalised. Every selected model without its own answer is listed in `missing`. Outputs whose length differs from the first usable answer are left out
 * too. Undefined when nothing is left.
 */
export function combineOutputs(
  selected: readonly ModelRef[],
  weights: readonly number[],
  outputs: ReadonlyMap<string, Tensor>,
  expected?: ExpectedOutputs,
  opts: CombineOptions = {},
): Combined | undefined {
  const candidates: Part[] = [];
  selected.forEach((m, i) => {
    const key = modelKey(m);
    const own = outputs.get(key);
    const tensor = own ?? expected?.(m);
    const values = tensor && usableValues(tensor);
    if (!tensor || !values) return;
    const w = weights[i] ?? 0;
    candidates.push({ key, answered: own !== undefined, weight: Number.isFinite(w) && w > 0 ? w : 0, tensor, values });
  });
  // The first real answer fixes the shape; substitutes only set it when no model answered.
  const reference = candidates.find((c) => c.answered) ?? candidates[0];
  if (!reference) return undefined;
  const n = reference.values.length;
  const parts = candidates.filter((c) => c.values.length === n);
  const share = normalizedWeights(parts.map((p) => p.weight));

  const combined = new Array<number>(n).fill(0);
  parts.forEach((p, i) => p.values.forEach((v, j) => (combined[j]! += share[i]! * v)));

  const answered = parts.flatMap((p, i) => (p.answered ? [{ values: p.values, weight: share[i]! }] : []));
  const confidence = n > 1
    ? classificationAgreement(combined, answered)
    : regressionAgreement(combined[0]!, answered, opts.regressionScale ?? 1);

  const result: Combined = {
    output: fromNumbers(reference.tensor.dtype === 'FP64' ? 'FP64' : 'FP32', combined, [...reference.tensor.shape]),
    models: parts.filter((p) => p.answered).map((p) => p.key),
    confidence,
  };
  const missing = selected.map(modelKey).filter((key) => !outputs.has(key));
  if (missing.length > 0) result.missing = missing;
  return result;
}

/** Index of the largest value (the first on ties); -1 for an empty vector. */
export function argmax(values: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best < 0 || values[i]! > values[best]!) best = i;
  return best;
}

/** The values to combine: a normalised distribution for class outputs, one finite number for regression. */
function usableValues(t: Tensor): number[] | undefined {
  const values = numericValues(t);
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) return normalizedProbabilities(values);
  return Number.isFinite(values[0]) ? values : undefined;
}

function normalizedWeights(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  return total > 0 ? weights.map((w) => w / total) : weights.map(() => 1 / weights.length);
}

/** Weight share of the answering models whose top class is the combined top class. */
function classificationAgreement(combined: readonly number[], answered: readonly { values: number[]; weight: number }[]): number {
  if (answered.length === 0) return 0;
  const share = normalizedWeights(answered.map((a) => a.weight));
  const top = argmax(combined);
  // Shares that sum to 1 can add up to a rounding error above it.
  return Math.min(1, answered.reduce((sum, a, i) => sum + (argmax(a.values) === top ? share[i]! : 0), 0));
}

/** 1 − weighted mean absolute deviation of the answers from the combined value, relative to |combined| + scale. */
function regressionAgreement(combined: number, answered: readonly { values: number[]; weight: number }[], scale: number): number {
  if (answered.length === 0) return 0;
  const share = normalizedWeights(answered.map((a) => a.weight));
  const deviation = answered.reduce((sum, a, i) => sum + share[i]! * Math.abs(a.values[0]! - combined), 0);
  const c = 1 - deviation / (Math.abs(combined) + scale);
  return c < 0 ? 0 : c > 1 ? 1 : c;
}
