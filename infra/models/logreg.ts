// Multinomial logistic regression (softmax regression) with an L2 penalty,
// trained with mini-batch Adam on cross-entropy. Pure functions, no I/O,
// deterministic for a given seed. Training runs in float64; the returned
// weights are float32 so the TS forward pass and the ONNX export agree.

import { argmax, mulberry32, shuffleInPlace, softmax, type Row } from './mlp.js';

/** Weights in the layout ONNX Gemm uses with transB = 0: w is [inputSize, classes] row-major. */
export interface LogregModel {
  readonly inputSize: number;
  readonly classes: number;
  readonly w: Float32Array;
  readonly b: Float32Array;
}

export interface LogregTrainOptions {
  readonly xs: readonly Row[];
  readonly ys: ArrayLike<number>;
  readonly classes: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** L2 penalty on the weights (not the biases). */
  readonly l2: number;
  /** Seeds the batch order (the weights start at zero). */
  readonly seed: number;
  readonly onEpoch?: (epoch: number, meanLoss: number) => void;
}

/** Class logits x·W + b, in float64. */
function logits(model: { inputSize: number; classes: number; w: ArrayLike<number>; b: ArrayLike<number> }, x: Row): Float64Array {
  const z = Float64Array.from(model.b as ArrayLike<number>);
  for (let i = 0; i < model.inputSize; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    const base = i * model.classes;
    for (let k = 0; k < model.classes; k++) z[k] = z[k]! + xi * model.w[base + k]!;
  }
  return z;
}

/** Class probabilities for one example. */
export function logregPredictProba(model: LogregModel, x: Row): Float64Array {
  if (x.length !== model.inputSize) throw new RangeError(`expected ${model.inputSize} features, got ${x.length}`);
  return softmax(logits(model, x));
}

export function logregPredictClass(model: LogregModel, x: Row): number {
  return argmax(logregPredictProba(model, x));
}

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/** Trains the model; the same options (seed included) always give the same weights. */
export function trainLogreg(o: LogregTrainOptions): LogregModel {
  if (o.xs.length === 0 || o.xs.length !== o.ys.length) throw new RangeError(`${o.xs.length} rows but ${o.ys.length} labels`);
  if (!(o.learningRate > 0) || !(o.l2 >= 0) || !(o.epochs >= 1) || !(o.batchSize >= 1)) throw new RangeError('bad logistic regression hyper-parameters');
  const inputSize = o.xs[0]!.length;
  const { classes } = o;
  const nw = inputSize * classes;
  // [w | b] in one buffer, so Adam is one loop and L2 applies to the prefix.
  const params = new Float64Array(nw + classes);
  const grad = new Float64Array(params.length);
  const m = new Float64Array(params.length);
  const v = new Float64Array(params.length);
  const model = { inputSize, classes, w: params.subarray(0, nw), b: params.subarray(nw) };
  const rng = mulberry32(o.seed);
  const order = o.xs.map((_, i) => i);
  let step = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    shuffleInPlace(order, rng);
    let lossSum = 0;
    for (let start = 0; start < order.length; start += o.batchSize) {
      const end = Math.min(start + o.batchSize, order.length);
      grad.fill(0);
      for (let r = start; r < end; r++) {
        const i = order[r]!;
        const x = o.xs[i]!;
        const y = o.ys[i]!;
        if (x.length !== inputSize) throw new RangeError(`row ${i} has ${x.length} features, expected ${inputSize}`);
        const p = softmax(logits(model, x));
        lossSum -= Math.log(Math.max(p[y]!, 1e-300));
        p[y] = p[y]! - 1; // dLoss/dLogits = probs - onehot
        for (let k = 0; k < classes; k++) grad[nw + k] = grad[nw + k]! + p[k]!;
        for (let f = 0; f < inputSize; f++) {
          const xf = x[f]!;
          if (xf === 0) continue;
          const base = f * classes;
          for (let k = 0; k < classes; k++) grad[base + k] = grad[base + k]! + xf * p[k]!;
        }
      }
      step++;
      const c1 = 1 - ADAM_BETA1 ** step;
      const c2 = 1 - ADAM_BETA2 ** step;
      const batch = end - start;
      for (let j = 0; j < params.length; j++) {
        const g = grad[j]! / batch + (j < nw ? o.l2 * params[j]! : 0);
        const mj = (m[j] = ADAM_BETA1 * m[j]! + (1 - ADAM_BETA1) * g);
        const vj = (v[j] = ADAM_BETA2 * v[j]! + (1 - ADAM_BETA2) * g * g);
        params[j] = params[j]! - (o.learningRate * (mj / c1)) / (Math.sqrt(vj / c2) + ADAM_EPSILON);
      }
    }
    o.onEpoch?.(epoch, lossSum / order.length);
  }
  return { inputSize, classes, w: Float32Array.from(model.w), b: Float32Array.from(model.b) };
}
