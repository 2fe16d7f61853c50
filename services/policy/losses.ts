/**
 * Losses in [0, 1] of one model output against Clipper's feedback label (Clipper §5: the bandit
 * policies learn from these). Class-probability outputs (more than one element) are judged by
 * whether their top class is the label (0/1 loss, the default) or by the probability they gave the
 * labelled class (`probability`); regression outputs (one element) by the squared error relative to
 * a scale. An output that cannot be read, or a model that did not answer, costs 1.
 *
 * Why 0/1 by default: 1 − p(label) rewards confidence as much as correctness. On the digits
 * ensemble (loadtest/ensemble.ts) it handed the weight to the sharpest model (an MLP with 10
 * held-out errors) over the most accurate one (a kNN with 4, whose votes are smoothed); with 0/1
 * loss the weights follow accuracy.
 */
import { checkTensor, elementCount, toNumbers, type Tensor } from '../../shared/tensor.js';

/** How losses are measured. */
export interface LossOptions {
  /** A regression error of `regressionScale` or more costs the full loss 1 (default 1). */
  regressionScale?: number;
  /** How a class-probability output is judged: `zero-one` (top class wrong, default) or `probability` (1 − p(label)). */
  classificationLoss?: 'zero-one' | 'probability';
}

/** True for a class-probability output (more than one element); false for a regression output. */
export function isClassification(t: Tensor): boolean {
  return t.dtype !== 'BYTES' && elementCount(t.shape) > 1;
}

/** The tensor's values as plain numbers, or undefined when it holds none that can be read (BYTES, torn data). */
export function numericValues(t: Tensor): number[] | undefined {
  if (t.dtype === 'BYTES') return undefined;
  try {
    return toNumbers(checkTensor(t));
  } catch {
    return undefined;
  }
}

/** Scores as a distribution: negatives and non-finite values count as 0; undefined when no mass is left. */
export function normalizedProbabilities(values: readonly number[]): number[] | undefined {
  let sum = 0;
  const p = values.map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  for (const v of p) sum += v;
  if (!(sum > 0) || !Number.isFinite(sum)) return undefined;
  return p.map((v) => v / sum);
}

/** 1 − p(label) of the normalised output; 1 when the label is not a class index of the output or it has no mass. */
export function classificationLoss(values: readonly number[], label: number): number {
  if (!Number.isInteger(label) || label < 0 || label >= values.length) return 1;
  const p = normalizedProbabilities(values);
  return p ? clamp01(1 - p[label]!) : 1;
}

/** 0 when the output's top class is the label, else 1 (also when the output has no positive mass). */
export function zeroOneLoss(values: ArrayLike<number>, label: number): number {
  if (!Number.isInteger(label) || label < 0 || label >= values.length) return 1;
  let top = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v) && v > 0 && (top < 0 || v > values[top]!)) top = i;
  }
  return top === label ? 0 : 1;
}

/** min(1, (y − label)² / scale²); 1 when the output is not one finite number. */
export function regressionLoss(values: readonly number[], label: number, scale = 1): number {
  const y = values[0];
  if (values.length !== 1 || y === undefined || !Number.isFinite(y) || !Number.isFinite(label)) return 1;
  const err = (y - label) / scale;
  return clamp01(err * err);
}

/** The loss of one model output (undefined: the model did not answer) against the feedback label. */
export function predictionLoss(output: Tensor | undefined, label: number, opts: LossOptions = {}): number {
  return output ? computeLoss(output, label, opts) : 1;
}

function computeLoss(output: Tensor, label: number, opts: LossOptions): number {
  if (opts.classificationLoss !== 'probability' && (output.dtype === 'FP32' || output.dtype === 'FP64')) {
    const fast = floatZeroOneLoss(output, label);
    if (fast !== undefined) return fast;
  }
  const values = numericValues(output);
  if (!values || values.length === 0) return 1;
  if (values.length === 1) return regressionLoss(values, label, opts.regressionScale ?? 1);
  return opts.classificationLoss === 'probability' ? classificationLoss(values, label) : zeroOneLoss(values, label);
}

const readF32 = Buffer.prototype.readFloatLE;
const readF64 = Buffer.prototype.readDoubleLE;

/**
 * 0/1 loss of FP32/FP64 class scores read straight from the little-endian bytes, whatever their
 * alignment: no copy, no array (replay scores hundreds of thousands of outputs). Undefined when the
 * tensor is not a well-formed vector of more than one score: the general path decides then.
 */
function floatZeroOneLoss(t: Tensor, label: number): number | undefined {
  const width = t.dtype === 'FP32' ? 4 : 8;
  const n = elementCount(t.shape);
  if (n < 2 || t.data.byteLength !== n * width) return undefined;
  if (!Number.isInteger(label) || label < 0 || label >= n) return 1;
  const read = width === 4 ? readF32 : readF64;
  let top = -1;
  let topValue = 0;
  for (let i = 0; i < n; i++) {
    const v = read.call(t.data as Buffer, i * width);
    if (Number.isFinite(v) && v > 0 && (top < 0 || v > topValue)) {
      top = i;
      topValue = v;
    }
  }
  return top === label ? 0 : 1;
}

/** Throws unless `scale` is a usable positive regression scale; returns it. */
export function checkRegressionScale(scale: number | undefined): number {
  const s = scale ?? 1;
  if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`regressionScale must be a positive number, got ${scale}`);
  return s;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}
