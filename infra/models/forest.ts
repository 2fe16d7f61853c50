// A random forest (Breiman 2001): CART trees grown on bootstrap samples, each
// split chosen by Gini impurity among a random subset of the features; the
// forest's probabilities are the mean of the trees' leaf class distributions.
// Pure functions, no I/O, deterministic for a given seed. The trees are plain
// arrays so they serialise to the JSON that infra/models/digits-forest.mjs
// reads; the .mjs repeats forestPredictProba in plain JS.

import { mulberry32, type Row } from './mlp.js';

export const FOREST_FORMAT = 'clipper-digits-forest-v1';

/**
 * One tree in flat arrays, node 0 the root. An internal node sends x to
 * left[i] when x[feature[i]] <= threshold[i], else to right[i]. A leaf has
 * feature -1 and holds its training class counts in counts[i] (internal nodes
 * hold []).
 */
export interface Tree {
  readonly feature: number[];
  readonly threshold: number[];
  readonly left: number[];
  readonly right: number[];
  readonly counts: number[][];
}

export interface Forest {
  readonly format: typeof FOREST_FORMAT;
  readonly classes: number;
  readonly features: number;
  readonly trees: Tree[];
}

export interface ForestTrainOptions {
  /** Integer-valued features in 0..maxValue (raw digit pixels). */
  readonly xs: readonly Row[];
  readonly ys: ArrayLike<number>;
  readonly classes: number;
  readonly maxValue: number;
  readonly trees: number;
  readonly maxDepth: number;
  /** Features drawn per split (more are tried only if none of them can split the node). */
  readonly maxFeatures: number;
  readonly minSamplesSplit: number;
  readonly seed: number;
  readonly onTree?: (index: number, nodes: number) => void;
}

interface Grower {
  readonly o: ForestTrainOptions;
  readonly rng: () => number;
  readonly featureCount: number;
  readonly tree: Tree;
  /** Scratch: per value, per class counts. */
  readonly hist: Float64Array;
}

/** Σ n_c² / n: larger means purer (n·gini = n − this). */
const purity = (counts: ArrayLike<number>, n: number): number => {
  let s = 0;
  for (let c = 0; c < counts.length; c++) s += counts[c]! * counts[c]!;
  return n === 0 ? 0 : s / n;
};

interface SplitChoice {
  readonly feature: number;
  readonly threshold: number;
  readonly purity: number;
}

function bestSplitOn(g: Grower, samples: readonly number[], feature: number): SplitChoice | undefined {
  const { classes, maxValue, xs, ys } = g.o;
  const { hist } = g;
  hist.fill(0);
  for (const s of samples) {
    const v = xs[s]![feature]!;
    hist[v * classes + ys[s]!] = hist[v * classes + ys[s]!]! + 1;
  }
  const total = new Float64Array(classes);
  for (let v = 0; v <= maxValue; v++) for (let c = 0; c < classes; c++) total[c] = total[c]! + hist[v * classes + c]!;
  const left = new Float64Array(classes);
  const right = new Float64Array(classes);
  let nLeft = 0;
  let best: SplitChoice | undefined;
  for (let v = 0; v < maxValue; v++) {
    for (let c = 0; c < classes; c++) {
      const h = hist[v * classes + c]!;
      left[c] = left[c]! + h;
      nLeft += h;
    }
    const nRight = samples.length - nLeft;
    if (nLeft === 0 || nRight === 0) continue;
    for (let c = 0; c < classes; c++) right[c] = total[c]! - left[c]!;
    const p = purity(left, nLeft) + purity(right, nRight);
    // Midpoint threshold, so non-integer inputs split the way their nearest integers would.
    if (best === undefined || p > best.purity) best = { feature, threshold: v + 0.5, purity: p };
  }
  return best;
}

function chooseSplit(g: Grower, samples: readonly number[], nodeCounts: ArrayLike<number>): SplitChoice | undefined {
  const order = Array.from({ length: g.featureCount }, (_, i) => i);
  const parent = purity(nodeCounts, samples.length);
  let best: SplitChoice | undefined;
  for (let tried = 0; tried < order.length; tried++) {
    if (tried >= g.o.maxFeatures && best !== undefined) break;
    // Partial Fisher–Yates: order[tried] becomes a uniform draw from the untried features.
    const j = tried + Math.floor(g.rng() * (order.length - tried));
    [order[tried], order[j]] = [order[j]!, order[tried]!];
    const split = bestSplitOn(g, samples, order[tried]!);
    if (split !== undefined && split.purity > parent + 1e-9 && (best === undefined || split.purity > best.purity)) best = split;
  }
  return best;
}

/** Grows the subtree for `samples`; returns its node index (preorder). */
function grow(g: Grower, samples: number[], depth: number): number {
  const { tree, o } = g;
  const index = tree.feature.length;
  tree.feature.push(-1);
  tree.threshold.push(-1);
  tree.left.push(-1);
  tree.right.push(-1);
  tree.counts.push([]);
  const counts = new Array<number>(o.classes).fill(0);
  for (const s of samples) counts[o.ys[s]!]!++;
  const pure = counts.filter((c) => c > 0).length <= 1;
  const split = pure || depth >= o.maxDepth || samples.length < o.minSamplesSplit ? undefined : chooseSplit(g, samples, counts);
  if (split === undefined) {
    tree.counts[index] = counts;
    return index;
  }
  tree.feature[index] = split.feature;
  tree.threshold[index] = split.threshold;
  const goLeft = (s: number): boolean => o.xs[s]![split.feature]! <= split.threshold;
  tree.left[index] = grow(g, samples.filter(goLeft), depth + 1);
  tree.right[index] = grow(g, samples.filter((s) => !goLeft(s)), depth + 1);
  return index;
}

/** Trains the forest; the same options (seed included) always give the same trees. */
export function trainForest(o: ForestTrainOptions): Forest {
  if (o.xs.length === 0 || o.xs.length !== o.ys.length) throw new RangeError(`${o.xs.length} rows but ${o.ys.length} labels`);
  const featureCount = o.xs[0]!.length;
  for (const row of o.xs) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (!Number.isInteger(v) || v < 0 || v > o.maxValue) throw new RangeError(`feature value ${v} is not an integer in 0..${o.maxValue}`);
    }
  }
  const rng = mulberry32(o.seed);
  const trees: Tree[] = [];
  for (let t = 0; t < o.trees; t++) {
    const bootstrap = Array.from({ length: o.xs.length }, () => Math.floor(rng() * o.xs.length));
    const g: Grower = {
      o,
      rng,
      featureCount,
      tree: { feature: [], threshold: [], left: [], right: [], counts: [] },
      hist: new Float64Array((o.maxValue + 1) * o.classes),
    };
    grow(g, bootstrap, 0);
    trees.push(g.tree);
    o.onTree?.(t, g.tree.feature.length);
  }
  return { format: FOREST_FORMAT, classes: o.classes, features: featureCount, trees };
}

/** Mean of the trees' leaf class distributions for one query. */
export function forestPredictProba(forest: Forest, x: Row): Float64Array {
  const probs = new Float64Array(forest.classes);
  for (const tree of forest.trees) {
    let node = 0;
    while (tree.feature[node]! >= 0) node = x[tree.feature[node]!]! <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
    const counts = tree.counts[node]!;
    let n = 0;
    for (const c of counts) n += c;
    for (let c = 0; c < forest.classes; c++) probs[c] = probs[c]! + counts[c]! / n / forest.trees.length;
  }
  return probs;
}

/** One tree per line, so retraining diffs tree by tree. */
export function forestJson(forest: Forest): string {
  const { trees, ...head } = forest;
  return `${JSON.stringify(head).slice(0, -1)},\n"trees":[\n${trees.map((t) => JSON.stringify(t)).join(',\n')}\n]}\n`;
}
