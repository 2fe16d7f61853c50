// garbage: a model that is confidently wrong at random, for benchmarks of ensemble weighting
// (Exp3/Exp4 should learn to ignore it). Each query gets a valid probability vector over 10
// classes that looks random but is a pure function of the query's bytes, so runs reproduce.
//
// JS model wrapper contract: `predict(inputs)` gets one batch, an array with one element per query
// (a typed array, a string or a string array), and returns one output per query, in order: a
// Float32Array of 10 probabilities (each > 0, summing to 1).

const CLASSES = 10;

import { mulberry32 } from './mulberry32.mjs';

const encoder = new TextEncoder();

/** The query's bytes: a typed array's memory, or the UTF-8 of its string(s). */
function bytesOf(input) {
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (typeof input === 'string') return encoder.encode(input);
  if (Array.isArray(input)) return encoder.encode(input.join('\u0000'));
  throw new TypeError('garbage: each input must be a typed array, a string or a string array');
}

/** FNV-1a, 32-bit. */
function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/**
 * A uniform draw from the probability simplex (normalised exponentials), seeded by the input.
 * @param {ArrayLike<number> | string | string[]} input
 * @returns {Float32Array}
 */
export function garbageProbabilities(input) {
  const rng = mulberry32(fnv1a(bytesOf(input)));
  const weights = Array.from({ length: CLASSES }, () => 1e-6 - Math.log(1 - rng()));
  const total = weights.reduce((a, b) => a + b, 0);
  return Float32Array.from(weights, (w) => w / total);
}

/**
 * @param {ReadonlyArray<ArrayLike<number> | string | string[]>} inputs
 * @returns {Float32Array[]}
 */
export function predict(inputs) {
  if (!Array.isArray(inputs)) throw new TypeError('predict(inputs): inputs must be an array, one element per query');
  return inputs.map(garbageProbabilities);
}
