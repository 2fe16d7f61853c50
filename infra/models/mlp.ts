import { gaussian, mulberry32 } from '../../shared/random.js';
// A dense MLP classifier (input → ReLU hidden layer → softmax), trained with
// mini-batch Adam on cross-entropy. Pure functions, no I/O, deterministic
// for a given seed. Training runs in float64; the returned weights are float32
// so that the TypeScript forward pass and an ONNX export see identical weights.

/** One example's features. */
export type Row = ArrayLike<number>;

/**
 * Weights in the layout ONNX Gemm uses with transB = 0:
 * w1 is [inputSize, hidden] row-major, w2 is [hidden, classes] row-major.
 */
export interface MlpModel {
  readonly inputSize: number;
  readonly hidden: number;
  readonly classes: number;
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
}

export interface EpochProgress {
  readonly epoch: number; // 1-based
  readonly epochs: number;
  /** Mean cross-entropy over the epoch's examples (the L2 penalty is not included). */
  readonly loss: number;
  /** Fraction of the epoch's examples predicted right before each batch's update. */
  readonly trainAccuracy: number;
}

export interface TrainOptions {
  readonly xs: readonly Row[];
  readonly ys: ArrayLike<number>;
  readonly hidden: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  /** L2 penalty on weights (not biases); 0 by default. */
  readonly l2?: number;
  /** Defaults to max(ys) + 1. */
  readonly classes?: number;
  readonly onEpoch?: (progress: EpochProgress) => void;
}

// ---------------------------------------------------------------- randomness

/** The seeded PRNG and normal samples live in shared/random.ts; re-exported for the trainers. */
export { gaussian, mulberry32 };

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

export interface Split {
  /** Row indices, ascending. */
  readonly train: number[];
  /** Row indices, ascending. */
  readonly test: number[];
}

/**
 * Seeded train/test split of rows 0..n-1. With `labels`, the split is
 * stratified: each class contributes round(count × testFraction) rows.
 */
export function splitTrainTest(n: number, testFraction: number, seed: number, labels?: ArrayLike<number>): Split {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError(`testFraction must be in (0, 1), got ${testFraction}`);
  if (labels !== undefined && labels.length !== n) throw new RangeError(`labels has ${labels.length} entries, expected ${n}`);
  const rng = mulberry32(seed);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = labels === undefined ? 0 : labels[i]!;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [i]);
    else group.push(i);
  }
  const test: number[] = [];
  const train: number[] = [];
  // Sorted keys so the result does not depend on label first-appearance order.
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const group = shuffleInPlace(groups.get(key)!, rng);
    const k = Math.round(group.length * testFraction);
    test.push(...group.slice(0, k));
    train.push(...group.slice(k));
  }
  const ascending = (a: number, b: number): number => a - b;
  return { train: train.sort(ascending), test: test.sort(ascending) };
}

// ---------------------------------------------------------------- forward pass

type Weights = Float32Array | Float64Array;

interface Layers {
  readonly inputSize: number;
  readonly hidden: number;
  readonly classes: number;
  readonly w1: Weights;
  readonly b1: Weights;
  readonly w2: Weights;
  readonly b2: Weights;
}

/** Numerically stable softmax (shifts by the max so exp() cannot overflow). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(logits.length);
  softmaxInto(logits, out);
  return out;
}

function softmaxInto(logits: ArrayLike<number>, out: Float64Array): void {
  let max = -Infinity;
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k]!);
  let sum = 0;
  for (let k = 0; k < logits.length; k++) {
    out[k] = Math.exp(logits[k]! - max);
    sum += out[k]!;
  }
  for (let k = 0; k < logits.length; k++) out[k] = out[k]! / sum;
}

/** Fills `hiddenOut` with ReLU activations and `probsOut` with class probabilities. */
function forwardInto(net: Layers, x: Row, hiddenOut: Float64Array, probsOut: Float64Array): void {
  const { inputSize, hidden, classes, w1, b1, w2, b2 } = net;
  for (let j = 0; j < hidden; j++) hiddenOut[j] = b1[j]!;
  for (let i = 0; i < inputSize; i++) {
    const xi = x[i]!;
    if (xi === 0) continue; // digit images are ~half zeros
    const base = i * hidden;
    for (let j = 0; j < hidden; j++) hiddenOut[j] = hiddenOut[j]! + xi * w1[base + j]!;
  }
  for (let j = 0; j < hidden; j++) if (hiddenOut[j]! < 0) hiddenOut[j] = 0;
  for (let k = 0; k < classes; k++) probsOut[k] = b2[k]!;
  for (let j = 0; j < hidden; j++) {
    const hj = hiddenOut[j]!;
    if (hj === 0) continue;
    const base = j * classes;
    for (let k = 0; k < classes; k++) probsOut[k] = probsOut[k]! + hj * w2[base + k]!;
  }
  softmaxInto(probsOut, probsOut);
}

function checkRow(model: Layers, x: Row): void {
  if (x.length !== model.inputSize) throw new RangeError(`expected ${model.inputSize} features, got ${x.length}`);
}

/** Class probabilities for one example (float64 arithmetic on the float32 weights). */
export function predictProba(model: MlpModel, x: Row): Float64Array {
  checkRow(model, x);
  const probs = new Float64Array(model.classes);
  forwardInto(model, x, new Float64Array(model.hidden), probs);
  return probs;
}

/** Index of the largest value; the first one wins ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function predictClass(model: MlpModel, x: Row): number {
  return argmax(predictProba(model, x));
}

/** Fraction of rows whose argmax prediction equals the label; `indices` selects a subset. */
export function accuracy(model: MlpModel, xs: readonly Row[], ys: ArrayLike<number>, indices?: readonly number[]): number {
  const rows = indices ?? xs.map((_, i) => i);
  if (rows.length === 0) return Number.NaN;
  let correct = 0;
  for (const i of rows) if (predictClass(model, xs[i]!) === ys[i]) correct++;
  return correct / rows.length;
}

// ---------------------------------------------------------------- training

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/**
 * All parameters live in one Float64Array laid out [w1 | w2 | b1 | b2], so the
 * Adam update is one loop and L2 applies to the prefix [0, weightCount).
 */
interface FlatParams extends Layers {
  readonly all: Float64Array;
  readonly weightCount: number;
}

function flatParams(inputSize: number, hidden: number, classes: number, all?: Float64Array): FlatParams {
  const n1 = inputSize * hidden;
  const n2 = hidden * classes;
  const buf = all ?? new Float64Array(n1 + n2 + hidden + classes);
  return {
    inputSize,
    hidden,
    classes,
    all: buf,
    weightCount: n1 + n2,
    w1: buf.subarray(0, n1),
    w2: buf.subarray(n1, n1 + n2),
    b1: buf.subarray(n1 + n2, n1 + n2 + hidden),
    b2: buf.subarray(n1 + n2 + hidden),
  };
}

/** He-normal weights (suits ReLU), zero biases. */
function initParams(inputSize: number, hidden: number, classes: number, rng: () => number): FlatParams {
  const p = flatParams(inputSize, hidden, classes);
  const std1 = Math.sqrt(2 / inputSize);
  const std2 = Math.sqrt(2 / hidden);
  for (let i = 0; i < p.w1.length; i++) p.w1[i] = gaussian(rng) * std1;
  for (let i = 0; i < p.w2.length; i++) p.w2[i] = gaussian(rng) * std2;
  return p;
}

function validateTrainOptions(o: TrainOptions): { inputSize: number; classes: number } {
  const positiveInt = (v: number, name: string): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt(o.hidden, 'hidden');
  positiveInt(o.epochs, 'epochs');
  positiveInt(o.batchSize, 'batchSize');
  if (!(o.learningRate > 0)) throw new RangeError(`learningRate must be > 0, got ${o.learningRate}`);
  if (o.l2 !== undefined && !(o.l2 >= 0)) throw new RangeError(`l2 must be >= 0, got ${o.l2}`);
  if (o.xs.length === 0) throw new RangeError('no training rows');
  if (o.xs.length !== o.ys.length) throw new RangeError(`${o.xs.length} rows but ${o.ys.length} labels`);
  const inputSize = o.xs[0]!.length;
  let maxLabel = 0;
  for (let i = 0; i < o.xs.length; i++) {
    if (o.xs[i]!.length !== inputSize) throw new RangeError(`row ${i} has ${o.xs[i]!.length} features, expected ${inputSize}`);
    const y = o.ys[i]!;
    if (!Number.isInteger(y) || y < 0) throw new RangeError(`label ${i} is ${y}; labels must be integers >= 0`);
    maxLabel = Math.max(maxLabel, y);
  }
  const classes = o.classes ?? maxLabel + 1;
  if (maxLabel >= classes) throw new RangeError(`label ${maxLabel} out of range for ${classes} classes`);
  return { inputSize, classes };
}

/** Per-step scratch buffers, allocated once per training run. */
interface Scratch {
  readonly grad: FlatParams;
  readonly hidden: Float64Array;
  readonly probs: Float64Array;
  readonly dHidden: Float64Array;
}

/**
 * Adds one example's cross-entropy gradient to `grad`; returns the loss and
 * whether the pre-update prediction was right.
 */
function accumulateExample(p: FlatParams, s: Scratch, x: Row, y: number): { loss: number; correct: boolean } {
  const { inputSize, hidden, classes } = p;
  const g = s.grad;
  forwardInto(p, x, s.hidden, s.probs);
  const correct = argmax(s.probs) === y;
  const loss = -Math.log(Math.max(s.probs[y]!, 1e-300));
  // dLoss/dLogits of softmax + cross-entropy is (probs - onehot); reuse probs.
  const dz = s.probs;
  dz[y] = dz[y]! - 1;
  for (let k = 0; k < classes; k++) g.b2[k] = g.b2[k]! + dz[k]!;
  for (let j = 0; j < hidden; j++) {
    const hj = s.hidden[j]!;
    const base = j * classes;
    let back = 0;
    for (let k = 0; k < classes; k++) {
      g.w2[base + k] = g.w2[base + k]! + hj * dz[k]!;
      back += p.w2[base + k]! * dz[k]!;
    }
    s.dHidden[j] = hj > 0 ? back : 0; // ReLU gate
  }
  for (let j = 0; j < hidden; j++) g.b1[j] = g.b1[j]! + s.dHidden[j]!;
  for (let i = 0; i < inputSize; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    const base = i * hidden;
    for (let j = 0; j < hidden; j++) g.w1[base + j] = g.w1[base + j]! + xi * s.dHidden[j]!;
  }
  return { loss, correct };
}

interface AdamState {
  readonly m: Float64Array;
  readonly v: Float64Array;
  step: number;
}

function adamUpdate(p: FlatParams, grad: Float64Array, state: AdamState, lr: number, l2: number, batch: number): void {
  state.step++;
  const c1 = 1 - ADAM_BETA1 ** state.step;
  const c2 = 1 - ADAM_BETA2 ** state.step;
  const { all } = p;
  for (let i = 0; i < all.length; i++) {
    const gi = grad[i]! / batch + (i < p.weightCount ? l2 * all[i]! : 0);
    const m = (state.m[i] = ADAM_BETA1 * state.m[i]! + (1 - ADAM_BETA1) * gi);
    const v = (state.v[i] = ADAM_BETA2 * state.v[i]! + (1 - ADAM_BETA2) * gi * gi);
    all[i] = all[i]! - (lr * (m / c1)) / (Math.sqrt(v / c2) + ADAM_EPSILON);
  }
}

function toModel(p: FlatParams): MlpModel {
  return {
    inputSize: p.inputSize,
    hidden: p.hidden,
    classes: p.classes,
    w1: Float32Array.from(p.w1),
    b1: Float32Array.from(p.b1),
    w2: Float32Array.from(p.w2),
    b2: Float32Array.from(p.b2),
  };
}

/** Trains an MLP; the same options (seed included) always give the same weights. */
export function trainMlp(options: TrainOptions): MlpModel {
  const { inputSize, classes } = validateTrainOptions(options);
  const { xs, ys, hidden, epochs, batchSize, learningRate } = options;
  const l2 = options.l2 ?? 0;
  const rng = mulberry32(options.seed);
  const params = initParams(inputSize, hidden, classes, rng);
  const scratch: Scratch = {
    grad: flatParams(inputSize, hidden, classes),
    hidden: new Float64Array(hidden),
    probs: new Float64Array(classes),
    dHidden: new Float64Array(hidden),
  };
  const adam: AdamState = { m: new Float64Array(params.all.length), v: new Float64Array(params.all.length), step: 0 };
  const order = xs.map((_, i) => i);

  for (let epoch = 1; epoch <= epochs; epoch++) {
    shuffleInPlace(order, rng);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const end = Math.min(start + batchSize, order.length);
      scratch.grad.all.fill(0);
      for (let b = start; b < end; b++) {
        const i = order[b]!;
        const r = accumulateExample(params, scratch, xs[i]!, ys[i]!);
        lossSum += r.loss;
        if (r.correct) correct++;
      }
      adamUpdate(params, scratch.grad.all, adam, learningRate, l2, end - start);
    }
    options.onEpoch?.({ epoch, epochs, loss: lossSum / xs.length, trainAccuracy: correct / xs.length });
  }
  return toModel(params);
}
