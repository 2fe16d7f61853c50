// digits-forest: a random forest digits classifier (bagged CART trees on random feature subsets,
// trained on the FIT split by infra/train-ensemble.ts with infra/models/forest.ts). The trees are
// read at import time from ./ensemble/digits-forest.json; the probabilities are the mean of the
// trees' leaf class distributions. This repeats forestPredictProba of infra/models/forest.ts in
// plain JS; the trainer checks that the two agree.
//
// JS model wrapper contract: `predict(inputs)` gets one batch, an array with one element per query
// (a Float32Array of 64 raw pixel counts 0..16 here), and returns one output per query, in order:
// a Float32Array of 10 class probabilities.

import { readFileSync } from 'node:fs';

const FORMAT = 'clipper-digits-forest-v1';

/**
 * A predictor over a parsed digits-forest.json. Each tree is flat arrays, node 0 the root: an
 * internal node sends x to left[i] when x[feature[i]] <= threshold[i], else to right[i]; a leaf
 * (feature -1) holds its training class counts.
 * @param {{ format: string, classes: number, features: number,
 *           trees: { feature: number[], threshold: number[], left: number[], right: number[], counts: number[][] }[] }} forest
 * @returns {(x: ArrayLike<number>) => Float32Array}
 */
export function forestPredictor(forest) {
  if (forest.format !== FORMAT) throw new Error(`digits-forest: expected format ${FORMAT}, got ${forest.format}`);
  const { classes, features, trees } = forest;
  // Leaf distributions normalised once, at load.
  const leaves = trees.map((t) =>
    t.counts.map((counts) => {
      const n = counts.reduce((a, b) => a + b, 0);
      return counts.map((c) => c / n / trees.length);
    }),
  );
  return (x) => {
    if (x.length !== features) throw new RangeError(`digits-forest: expected ${features} pixels, got ${x.length}`);
    const probs = new Float64Array(classes);
    trees.forEach((t, ti) => {
      let node = 0;
      while (t.feature[node] >= 0) node = x[t.feature[node]] <= t.threshold[node] ? t.left[node] : t.right[node];
      const leaf = leaves[ti][node];
      for (let c = 0; c < classes; c++) probs[c] += leaf[c];
    });
    return Float32Array.from(probs);
  };
}

const predictOne = forestPredictor(JSON.parse(readFileSync(new URL('./ensemble/digits-forest.json', import.meta.url), 'utf8')));

/**
 * @param {ReadonlyArray<ArrayLike<number>>} inputs
 * @returns {Float32Array[]}
 */
export function predict(inputs) {
  if (!Array.isArray(inputs)) throw new TypeError('predict(inputs): inputs must be an array, one element per query');
  return inputs.map(predictOne);
}
