// digits-knn: k-nearest-neighbour digits classifier (k = 5, Euclidean distance on raw pixels,
// distance-weighted votes, smoothed so no class is exactly 0). Its reference rows are the FIT split
// (infra/models/ensemble-splits.ts), read at import time from ./ensemble/digits-knn.json, which
// infra/train-ensemble.ts writes; the same file fixes k and the smoothing. This repeats
// knnPredictProba of infra/models/knn.ts in plain JS; the trainer checks that the two agree.
//
// JS model wrapper contract: `predict(inputs)` gets one batch, an array with one element per query
// (a Float32Array of 64 raw pixel counts 0..16 here), and returns one output per query, in order:
// a Float32Array of 10 class probabilities.

import { readFileSync } from 'node:fs';

const FORMAT = 'clipper-digits-knn-v1';

/**
 * A predictor over the rows of a parsed digits-knn.json.
 * @param {{ format: string, k: number, classes: number, smoothing: number, features: number,
 *           distance_epsilon: number, pixel_alphabet: string, labels: string, pixels: string[] }} file
 * @returns {(x: ArrayLike<number>) => Float32Array}
 */
export function knnPredictor(file) {
  if (file.format !== FORMAT) throw new Error(`digits-knn: expected format ${FORMAT}, got ${file.format}`);
  const { k, classes, smoothing, features, distance_epsilon: epsilon } = file;
  const n = file.pixels.length;
  if (file.labels.length !== n) throw new Error(`digits-knn: ${n} rows but ${file.labels.length} labels`);
  const rows = new Float64Array(n * features);
  const labels = new Int32Array(n);
  file.pixels.forEach((text, r) => {
    if (text.length !== features) throw new Error(`digits-knn: row ${r} has ${text.length} pixels, expected ${features}`);
    for (let i = 0; i < features; i++) rows[r * features + i] = file.pixel_alphabet.indexOf(text[i]);
    labels[r] = Number(file.labels[r]);
  });
  const bestDist = new Float64Array(k);
  const bestRow = new Int32Array(k);

  return (x) => {
    if (x.length !== features) throw new RangeError(`digits-knn: expected ${features} pixels, got ${x.length}`);
    bestDist.fill(Infinity);
    bestRow.fill(-1);
    for (let r = 0; r < n; r++) {
      const base = r * features;
      let d2 = 0;
      for (let i = 0; i < features; i++) {
        const diff = x[i] - rows[base + i];
        d2 += diff * diff;
      }
      if (!(d2 < bestDist[k - 1])) continue;
      // Insertion into the sorted k-best list; ties go to the earlier reference row.
      let j = k - 1;
      while (j > 0 && bestDist[j - 1] > d2) {
        bestDist[j] = bestDist[j - 1];
        bestRow[j] = bestRow[j - 1];
        j--;
      }
      bestDist[j] = d2;
      bestRow[j] = r;
    }
    const votes = new Float64Array(classes);
    let total = 0;
    for (let j = 0; j < k; j++) {
      if (bestRow[j] < 0) continue;
      const w = 1 / (Math.sqrt(bestDist[j]) + epsilon);
      votes[labels[bestRow[j]]] += w;
      total += w;
    }
    const out = new Float32Array(classes);
    const norm = 1 + classes * smoothing;
    for (let c = 0; c < classes; c++) out[c] = (votes[c] / total + smoothing) / norm;
    return out;
  };
}

const predictOne = knnPredictor(JSON.parse(readFileSync(new URL('./ensemble/digits-knn.json', import.meta.url), 'utf8')));

/**
 * @param {ReadonlyArray<ArrayLike<number>>} inputs
 * @returns {Float32Array[]}
 */
export function predict(inputs) {
  if (!Array.isArray(inputs)) throw new TypeError('predict(inputs): inputs must be an array, one element per query');
  return inputs.map(predictOne);
}
