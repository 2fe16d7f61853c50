// straggler-knn: digits-knn's predictions, but now and then late, for benchmarks of straggler
// mitigation (Clipper §5: answer by the deadline with the members that made it). On a fraction of
// predict() calls, drawn from a seeded PRNG so runs reproduce, it waits on a timer before
// answering; it sleeps rather than spins, so a stall costs no CPU.
//
//   CLIPPER_STRAGGLER_P     probability that a call stalls (default 0.1)
//   CLIPPER_STRAGGLER_MS    length of a stall in ms (default 100)
//   CLIPPER_STRAGGLER_SEED  PRNG seed (default 1), so replicas can stall at different calls
//
// JS model wrapper contract: as digits-knn.mjs (Float32Array of 64 raw pixels in, Float32Array of
// 10 class probabilities out, one per query, in order).

import { mulberry32 } from './mulberry32.mjs';
import { predict as knnPredict } from './digits-knn.mjs';

function envNumber(name, fallback, valid, what) {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!valid(value)) throw new RangeError(`${name} must be ${what}, got ${raw}`);
  return value;
}

/**
 * A predict(inputs) that answers as digits-knn but stalls on a seeded fraction of calls.
 * @param {{ probability: number, stallMs: number, seed: number }} options
 * @returns {(inputs: ReadonlyArray<ArrayLike<number>>) => Promise<Float32Array[]>}
 */
export function stragglerPredictor({ probability, stallMs, seed }) {
  const rng = mulberry32(seed);
  return async (inputs) => {
    const outputs = knnPredict(inputs);
    // One draw per call, so the stall pattern depends only on the call count.
    if (rng() < probability) await new Promise((resolve) => setTimeout(resolve, stallMs));
    return outputs;
  };
}

export const STALL_PROBABILITY = envNumber('CLIPPER_STRAGGLER_P', 0.1, (p) => p >= 0 && p <= 1, 'a number in [0, 1]');
export const STALL_MS = envNumber('CLIPPER_STRAGGLER_MS', 100, (ms) => Number.isFinite(ms) && ms >= 0, 'a number ≥ 0');
const SEED = envNumber('CLIPPER_STRAGGLER_SEED', 1, (s) => Number.isInteger(s), 'an integer');

/**
 * @param {ReadonlyArray<ArrayLike<number>>} inputs
 * @returns {Promise<Float32Array[]>}
 */
export const predict = stragglerPredictor({ probability: STALL_PROBABILITY, stallMs: STALL_MS, seed: SEED });
