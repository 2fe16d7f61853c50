// k-nearest-neighbour classifier: distance-weighted class votes over stored
// reference rows, turned into smoothed probabilities. "Training" is storing
// the rows; this module also encodes them as the compact JSON that
// infra/models/digits-knn.mjs reads. The .mjs repeats knnPredictProba in plain
// JS (served models need no build); train-ensemble.ts checks the two agree.

import type { Row } from './mlp.js';

export const KNN_FORMAT = 'clipper-digits-knn-v1';
/** One character per pixel value 0..16. */
export const KNN_PIXEL_ALPHABET = '0123456789abcdefg';
/** Keeps exact matches (distance 0) finite and dominant. */
export const KNN_DISTANCE_EPSILON = 1e-6;

export interface KnnModel {
  readonly k: number;
  readonly classes: number;
  /** Added to every class's normalised vote before renormalising, so no class is exactly 0. */
  readonly smoothing: number;
  /** Integer-valued reference rows. */
  readonly rows: readonly Row[];
  readonly labels: ArrayLike<number>;
}

/** The JSON file digits-knn.mjs loads: each row is a string of pixel characters, labels one digit per row. */
export interface KnnFile {
  readonly format: typeof KNN_FORMAT;
  readonly k: number;
  readonly classes: number;
  readonly smoothing: number;
  readonly features: number;
  readonly distance_epsilon: number;
  readonly pixel_alphabet: string;
  readonly labels: string;
  readonly pixels: string[];
}

export function knnToFile(model: KnnModel): KnnFile {
  const features = model.rows[0]?.length ?? 0;
  const encode = (row: Row): string =>
    Array.from({ length: row.length }, (_, i) => {
      const ch = KNN_PIXEL_ALPHABET[row[i]!];
      if (ch === undefined) throw new RangeError(`pixel ${row[i]} is not an integer in 0..${KNN_PIXEL_ALPHABET.length - 1}`);
      return ch;
    }).join('');
  if (model.classes > 10) throw new RangeError('labels are stored as one decimal digit each');
  return {
    format: KNN_FORMAT,
    k: model.k,
    classes: model.classes,
    smoothing: model.smoothing,
    features,
    distance_epsilon: KNN_DISTANCE_EPSILON,
    pixel_alphabet: KNN_PIXEL_ALPHABET,
    labels: Array.from(model.labels as ArrayLike<number>, String).join(''),
    pixels: model.rows.map(encode),
  };
}

/** One array entry per line, so the file diffs row by row. */
export function knnFileJson(file: KnnFile): string {
  const { pixels, ...head } = file;
  const top = JSON.stringify(head).slice(0, -1);
  return `${top},\n"pixels":[\n${pixels.map((p) => JSON.stringify(p)).join(',\n')}\n]}\n`;
}

/** Class probabilities for one query. Ties in distance go to the earlier reference row. */
export function knnPredictProba(model: KnnModel, x: Row): Float64Array {
  const { k, classes, rows, labels } = model;
  const bestDist = new Float64Array(k).fill(Infinity);
  const bestRow = new Int32Array(k).fill(-1);
  for (let r = 0; r < rows.length; r++) {
    const ref = rows[r]!;
    let d2 = 0;
    for (let i = 0; i < ref.length; i++) {
      const diff = x[i]! - ref[i]!;
      d2 += diff * diff;
    }
    if (!(d2 < bestDist[k - 1]!)) continue;
    // Insertion into the sorted k-best list.
    let j = k - 1;
    while (j > 0 && bestDist[j - 1]! > d2) {
      bestDist[j] = bestDist[j - 1]!;
      bestRow[j] = bestRow[j - 1]!;
      j--;
    }
    bestDist[j] = d2;
    bestRow[j] = r;
  }
  const votes = new Float64Array(classes);
  let total = 0;
  for (let j = 0; j < k; j++) {
    if (bestRow[j]! < 0) continue;
    const w = 1 / (Math.sqrt(bestDist[j]!) + KNN_DISTANCE_EPSILON);
    votes[labels[bestRow[j]!]!] = votes[labels[bestRow[j]!]!]! + w;
    total += w;
  }
  const norm = 1 + classes * model.smoothing;
  for (let c = 0; c < classes; c++) votes[c] = (votes[c]! / total + model.smoothing) / norm;
  return votes;
}
