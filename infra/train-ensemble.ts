// Trains four deliberately different digits classifiers for ensembles and the
// Exp3/Exp4 correction policies (Clipper §5), all on the FIT split only
// (infra/models/ensemble-splits.ts), and writes them to infra/models/ensemble/:
//   digits-logreg.onnx    softmax regression (L2), ONNX
//   digits-mlp-fit.onnx   the digits MLP with a 16-unit hidden layer, ONNX
//   digits-knn.json       reference rows for infra/models/digits-knn.mjs
//   digits-forest.json    trees for infra/models/digits-forest.mjs
//   ensemble.json         how each was trained, its accuracy per split, file hashes
//
//   node dist/infra/train-ensemble.js [--out DIR] [--data FILE]
//
// Progress goes to stderr; the last stdout line is a JSON summary. Exits 1 if
// an ONNX model disagrees with its TypeScript forward pass or a .mjs model with
// its TypeScript twin. The outputs contain no timestamps, so re-running
// reproduces them byte for byte.

import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

import { DIGITS_CLASSES, DIGITS_FEATURES, DIGITS_PIXEL_MAX, DIGITS_PIXEL_SCALE, loadDigits, scalePixels } from './models/digits-data.js';
import { ensembleSplits, FEEDBACK_FRACTION, FEEDBACK_SPLIT_SEED, TEST_FRACTION, TEST_SPLIT_SEED, type EnsembleSplits } from './models/ensemble-splits.js';
import { FOREST_FORMAT, forestJson, forestPredictProba, trainForest } from './models/forest.js';
import { KNN_FORMAT, knnFileJson, knnPredictProba, knnToFile, type KnnModel } from './models/knn.js';
import { logregPredictProba, trainLogreg } from './models/logreg.js';
import { logregToOnnx } from './models/logreg-onnx.js';
import { argmax, predictProba, trainMlp, type Row } from './models/mlp.js';
import { MLP_INPUT_NAME, MLP_OUTPUT_NAME, mlpToOnnx } from './models/mlp-onnx.js';
import { defaultTrainDigitsOptions } from './train-digits.js';

/** How far ORT's float32 probabilities may drift from the float64 TS forward pass. */
export const PROBABILITY_TOLERANCE = 1e-4;
/** A .mjs model and its TS twin do the same float64 arithmetic; only the float32 output rounding may differ. */
export const JS_TWIN_TOLERANCE = 1e-6;
/** The artefacts are committed; keep them small. */
export const MAX_ENSEMBLE_BYTES = 2 * 1024 * 1024;

export const MEMBER_NAMES = ['digits-logreg', 'digits-mlp-fit', 'digits-knn', 'digits-forest'] as const;
export type MemberName = (typeof MEMBER_NAMES)[number];

const DATASET = 'UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), CC BY 4.0';

/** Works both from dist/infra (compiled) and infra/ (run from source). */
function projectRoot(): string {
  const above = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return basename(above) === 'dist' ? resolve(above, '..') : above;
}

/** Where the .mjs models look for their data. */
export function defaultEnsembleDir(): string {
  return join(projectRoot(), 'infra', 'models', 'ensemble');
}

export interface TrainEnsembleOptions {
  readonly outDir: string;
  readonly dataPath: string;
  readonly logreg: { readonly epochs: number; readonly batchSize: number; readonly learningRate: number; readonly l2: number; readonly seed: number };
  readonly mlp: {
    readonly hidden: number;
    readonly epochs: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly l2: number;
    readonly seed: number;
  };
  readonly knn: { readonly k: number; readonly smoothing: number };
  readonly forest: { readonly trees: number; readonly maxDepth: number; readonly maxFeatures: number; readonly minSamplesSplit: number; readonly seed: number };
  /** Receives progress lines; stderr by default. */
  readonly log: (line: string) => void;
}

export function defaultTrainEnsembleOptions(): TrainEnsembleOptions {
  return {
    outDir: defaultEnsembleDir(),
    dataPath: defaultTrainDigitsOptions().dataPath,
    logreg: { epochs: 100, batchSize: 32, learningRate: 0.01, l2: 1e-3, seed: 3 },
    mlp: { hidden: 16, epochs: 60, batchSize: 32, learningRate: 0.005, l2: 1e-4, seed: 5 },
    knn: { k: 5, smoothing: 0.01 },
    forest: { trees: 25, maxDepth: 10, maxFeatures: 8, minSamplesSplit: 2, seed: 11 },
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

export interface SplitAccuracy {
  readonly fit: number;
  readonly feedback: number;
  readonly test: number;
}

export interface TrainEnsembleResult {
  readonly outDir: string;
  readonly sizes: { readonly fit: number; readonly feedback: number; readonly test: number };
  readonly accuracy: Readonly<Record<MemberName, SplitAccuracy>>;
  /** TEST accuracy of the plain average of the members' probabilities. */
  readonly averageTestAccuracy: number;
  /** For each pair "a|b": TEST rows that exactly one of the two gets wrong. */
  readonly exactlyOneWrong: Readonly<Record<string, number>>;
  readonly maxAbsProbabilityDiff: { readonly logreg: number; readonly mlp: number };
  /** Whether the .mjs models were loaded and checked against their TS twins (only when writing to their own folder). */
  readonly jsModelsChecked: boolean;
  readonly totalBytes: number;
}

export class EnsembleVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnsembleVerificationError';
  }
}

/** Probabilities of every row as served: one float32 row of `DIGITS_CLASSES` per data row. */
type Served = Float32Array;

async function ortProbabilities(onnx: Uint8Array, rawRows: readonly Row[]): Promise<Served> {
  const session = await ort.InferenceSession.create(onnx);
  try {
    const input = new Float32Array(rawRows.length * DIGITS_FEATURES);
    rawRows.forEach((row, r) => input.set(row, r * DIGITS_FEATURES));
    const feeds = { [MLP_INPUT_NAME]: new ort.Tensor('float32', input, [rawRows.length, DIGITS_FEATURES]) };
    const output = (await session.run(feeds))[MLP_OUTPUT_NAME];
    if (output === undefined || !(output.data instanceof Float32Array)) throw new Error(`ONNX model has no float32 "${MLP_OUTPUT_NAME}" output`);
    if (output.dims.join(',') !== `${rawRows.length},${DIGITS_CLASSES}`) throw new Error(`ONNX output dims [${output.dims.join(', ')}]`);
    return output.data;
  } finally {
    await session.release();
  }
}

/** Largest |served − reference| over every row and class. */
function maxAbsDiff(served: Served, reference: (row: number) => ArrayLike<number>, rows: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    const ref = reference(r);
    for (let c = 0; c < DIGITS_CLASSES; c++) worst = Math.max(worst, Math.abs(served[r * DIGITS_CLASSES + c]! - ref[c]!));
  }
  return worst;
}

function tsProbabilities(rows: number, predict: (row: number) => ArrayLike<number>): Served {
  const out = new Float32Array(rows * DIGITS_CLASSES);
  for (let r = 0; r < rows; r++) out.set(predict(r), r * DIGITS_CLASSES);
  return out;
}

const predictedClass = (served: Served, row: number): number => argmax(served.subarray(row * DIGITS_CLASSES, (row + 1) * DIGITS_CLASSES));

function splitAccuracy(served: Served, labels: ArrayLike<number>, splits: EnsembleSplits): SplitAccuracy {
  const acc = (rows: readonly number[]): number => rows.filter((r) => predictedClass(served, r) === labels[r]).length / rows.length;
  return { fit: acc(splits.fit), feedback: acc(splits.feedback), test: acc(splits.test) };
}

/** Loads a .mjs model the way the js wrapper does and runs every row through it in one batch. */
async function jsModelProbabilities(file: string, rawRows: readonly Float32Array[]): Promise<Served> {
  const mod = (await import(pathToFileURL(file).href)) as { predict: (inputs: Float32Array[]) => ArrayLike<number>[] | Promise<ArrayLike<number>[]> };
  const outputs = await mod.predict(rawRows.map((row) => Float32Array.from(row)));
  if (outputs.length !== rawRows.length) throw new EnsembleVerificationError(`${basename(file)} returned ${outputs.length} outputs for ${rawRows.length} inputs`);
  const out = new Float32Array(rawRows.length * DIGITS_CLASSES);
  outputs.forEach((o, r) => out.set(o, r * DIGITS_CLASSES));
  return out;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

/** Loads, splits, trains the four members on FIT, writes and verifies them, and measures them on every split. */
export async function trainEnsemble(overrides: Partial<TrainEnsembleOptions> = {}): Promise<TrainEnsembleResult> {
  const o: TrainEnsembleOptions = { ...defaultTrainEnsembleOptions(), ...overrides };
  const digits = defaultTrainDigitsOptions();
  if (digits.splitSeed !== TEST_SPLIT_SEED || digits.testFraction !== TEST_FRACTION) {
    throw new Error('ensemble-splits.ts and train-digits.ts no longer share the test split');
  }
  const data = await loadDigits(o.dataPath);
  const n = data.pixels.length;
  const scaled = data.pixels.map(scalePixels);
  const splits = ensembleSplits(data.labels);
  const fitX = (rows: readonly Row[]): Row[] => splits.fit.map((i) => rows[i]!);
  const fitY = Int32Array.from(splits.fit, (i) => data.labels[i]!);
  o.log(`digits: ${n} rows; fit ${splits.fit.length}, feedback ${splits.feedback.length}, test ${splits.test.length}`);
  await mkdir(o.outDir, { recursive: true });
  const written: Record<string, string> = {};
  const write = async (name: string, bytes: Uint8Array | string): Promise<void> => {
    await writeFile(join(o.outDir, name), bytes);
    written[name] = sha256(bytes);
    o.log(`wrote ${join(o.outDir, name)} (${typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length} bytes)`);
  };
  const metadata = (member: string, trainedAs: string): Record<string, string> => ({
    dataset: DATASET,
    member,
    trained_on: `FIT split of infra/models/ensemble-splits.ts (${splits.fit.length} rows)`,
    trained_as: trainedAs,
  });

  // Softmax regression.
  const logreg = trainLogreg({
    xs: fitX(scaled),
    ys: fitY,
    classes: DIGITS_CLASSES,
    ...o.logreg,
    onEpoch: (epoch, loss) => {
      if (epoch % 20 === 0) o.log(`logreg epoch ${String(epoch).padStart(3)}/${o.logreg.epochs}  loss ${loss.toFixed(4)}`);
    },
  });
  const logregOnnx = logregToOnnx(
    logreg,
    { inputScale: DIGITS_PIXEL_SCALE, graphName: 'digits-logreg', docString: 'Softmax regression digits classifier; input raw pixel counts 0..16' },
    { metadata: metadata('digits-logreg', 'multinomial logistic regression, L2, mini-batch Adam') },
  );
  await write('digits-logreg.onnx', logregOnnx);

  // The MLP trainer, smaller.
  const mlp = trainMlp({
    xs: fitX(scaled),
    ys: fitY,
    classes: DIGITS_CLASSES,
    ...o.mlp,
    onEpoch: (p) => {
      if (p.epoch % 10 === 0) o.log(`mlp epoch ${String(p.epoch).padStart(3)}/${p.epochs}  loss ${p.loss.toFixed(4)}  train-acc ${p.trainAccuracy.toFixed(4)}`);
    },
  });
  const mlpOnnx = mlpToOnnx(
    mlp,
    { inputScale: DIGITS_PIXEL_SCALE, graphName: 'digits-mlp-fit', docString: `MLP (${o.mlp.hidden} hidden ReLU units) digits classifier; input raw pixel counts 0..16` },
    { metadata: metadata('digits-mlp-fit', `MLP ${DIGITS_FEATURES}-${o.mlp.hidden}-${DIGITS_CLASSES}, mini-batch Adam`) },
  );
  await write('digits-mlp-fit.onnx', mlpOnnx);

  // k nearest neighbours over the raw FIT rows.
  const knn: KnnModel = { ...o.knn, classes: DIGITS_CLASSES, rows: fitX(data.pixels), labels: fitY };
  await write('digits-knn.json', knnFileJson(knnToFile(knn)));

  // Random forest over the raw FIT rows.
  const forest = trainForest({
    xs: fitX(data.pixels),
    ys: fitY,
    classes: DIGITS_CLASSES,
    maxValue: DIGITS_PIXEL_MAX,
    ...o.forest,
    onTree: (t, nodes) => {
      if ((t + 1) % 5 === 0) o.log(`forest tree ${t + 1}/${o.forest.trees}  ${nodes} nodes`);
    },
  });
  await write('digits-forest.json', forestJson(forest));

  // Every row as the serving system would answer it: ORT for ONNX, the TS twin (float32) for JS.
  const served: Record<MemberName, Served> = {
    'digits-logreg': await ortProbabilities(logregOnnx, data.pixels),
    'digits-mlp-fit': await ortProbabilities(mlpOnnx, data.pixels),
    'digits-knn': tsProbabilities(n, (r) => knnPredictProba(knn, data.pixels[r]!)),
    'digits-forest': tsProbabilities(n, (r) => forestPredictProba(forest, data.pixels[r]!)),
  };
  const diffs = {
    logreg: maxAbsDiff(served['digits-logreg'], (r) => logregPredictProba(logreg, scaled[r]!), n),
    mlp: maxAbsDiff(served['digits-mlp-fit'], (r) => predictProba(mlp, scaled[r]!), n),
  };
  o.log(`onnxruntime vs TS: logreg max |Δp| ${diffs.logreg.toExponential(2)}, mlp max |Δp| ${diffs.mlp.toExponential(2)}`);
  if (!(diffs.logreg <= PROBABILITY_TOLERANCE) || !(diffs.mlp <= PROBABILITY_TOLERANCE)) {
    throw new EnsembleVerificationError(`ONNX model disagrees with TS model: max |Δp| logreg ${diffs.logreg}, mlp ${diffs.mlp} > ${PROBABILITY_TOLERANCE}`);
  }

  // The .mjs models read their data from their own folder, so they can only be checked when we wrote there.
  const jsModelsChecked = resolve(o.outDir) === resolve(defaultEnsembleDir());
  if (jsModelsChecked) {
    const modelsDir = dirname(defaultEnsembleDir());
    for (const name of ['digits-knn', 'digits-forest'] as const) {
      const js = await jsModelProbabilities(join(modelsDir, `${name}.mjs`), data.pixels);
      const diff = maxAbsDiff(js, (r) => served[name].subarray(r * DIGITS_CLASSES, (r + 1) * DIGITS_CLASSES), n);
      o.log(`${name}.mjs vs TS: max |Δp| ${diff.toExponential(2)}`);
      if (!(diff <= JS_TWIN_TOLERANCE)) throw new EnsembleVerificationError(`${name}.mjs disagrees with its TS twin: max |Δp| ${diff} > ${JS_TWIN_TOLERANCE}`);
    }
  } else {
    o.log(`--out is not ${defaultEnsembleDir()}: the .mjs models cannot see these files, not checking them`);
  }

  const accuracy = Object.fromEntries(MEMBER_NAMES.map((m) => [m, splitAccuracy(served[m], data.labels, splits)])) as Record<MemberName, SplitAccuracy>;
  for (const m of MEMBER_NAMES) {
    const a = accuracy[m];
    o.log(`${m.padEnd(15)} fit ${a.fit.toFixed(4)}  feedback ${a.feedback.toFixed(4)}  test ${a.test.toFixed(4)}`);
  }
  const wrong = (m: MemberName, r: number): boolean => predictedClass(served[m], r) !== data.labels[r];
  const exactlyOneWrong: Record<string, number> = {};
  MEMBER_NAMES.forEach((a, i) =>
    MEMBER_NAMES.slice(i + 1).forEach((b) => {
      exactlyOneWrong[`${a}|${b}`] = splits.test.filter((r) => wrong(a, r) !== wrong(b, r)).length;
    }),
  );
  const average = new Float64Array(DIGITS_CLASSES);
  const averageCorrect = splits.test.filter((r) => {
    average.fill(0);
    for (const m of MEMBER_NAMES) for (let c = 0; c < DIGITS_CLASSES; c++) average[c] = average[c]! + served[m][r * DIGITS_CLASSES + c]! / MEMBER_NAMES.length;
    return argmax(average) === data.labels[r];
  }).length;
  const averageTestAccuracy = averageCorrect / splits.test.length;
  o.log(`plain average of ${MEMBER_NAMES.length} members: test ${averageTestAccuracy.toFixed(4)}`);

  const sizes = { fit: splits.fit.length, feedback: splits.feedback.length, test: splits.test.length };
  const description = {
    created_by: 'infra/train-ensemble.ts',
    dataset: { name: DATASET, rows: n, file: 'infra/models/data/digits.csv.gz' },
    splits: {
      module: 'infra/models/ensemble-splits.ts',
      test: { fraction: TEST_FRACTION, seed: TEST_SPLIT_SEED, note: 'identical to the held-out split of infra/train-digits.ts (digits-mlp)' },
      feedback: { fraction_of_rest: FEEDBACK_FRACTION, seed: FEEDBACK_SPLIT_SEED },
      sizes,
    },
    input: { name: MLP_INPUT_NAME, dtype: 'float32', shape: ['N', DIGITS_FEATURES], value_range: [0, DIGITS_PIXEL_MAX] },
    output: { name: MLP_OUTPUT_NAME, dtype: 'float32', shape: ['N', DIGITS_CLASSES] },
    members: {
      'digits-logreg': { kind: 'onnx', file: 'ensemble/digits-logreg.onnx', trained_as: 'softmax regression, L2', options: o.logreg, accuracy: accuracy['digits-logreg'] },
      'digits-mlp-fit': { kind: 'onnx', file: 'ensemble/digits-mlp-fit.onnx', trained_as: 'MLP, one ReLU hidden layer', options: o.mlp, accuracy: accuracy['digits-mlp-fit'] },
      'digits-knn': { kind: 'js', file: 'digits-knn.mjs', data: 'ensemble/digits-knn.json', format: KNN_FORMAT, options: o.knn, accuracy: accuracy['digits-knn'] },
      'digits-forest': { kind: 'js', file: 'digits-forest.mjs', data: 'ensemble/digits-forest.json', format: FOREST_FORMAT, options: o.forest, accuracy: accuracy['digits-forest'] },
    },
    test_exactly_one_wrong: exactlyOneWrong,
    test_accuracy_of_average: averageTestAccuracy,
    sha256: written,
  };
  await write('ensemble.json', `${JSON.stringify(description, null, 2)}\n`);

  const totalBytes = await folderBytes(o.outDir);
  o.log(`${o.outDir}: ${totalBytes} bytes`);
  if (totalBytes > MAX_ENSEMBLE_BYTES) throw new EnsembleVerificationError(`${o.outDir} holds ${totalBytes} bytes, more than ${MAX_ENSEMBLE_BYTES}`);

  return { outDir: o.outDir, sizes, accuracy, averageTestAccuracy, exactlyOneWrong, maxAbsProbabilityDiff: diffs, jsModelsChecked, totalBytes };
}

function optionsFromArgv(argv: readonly string[]): Partial<TrainEnsembleOptions> {
  const { values } = parseArgs({ args: [...argv], options: { out: { type: 'string' }, data: { type: 'string' } }, strict: true });
  return {
    ...(values.out === undefined ? {} : { outDir: resolve(values.out) }),
    ...(values.data === undefined ? {} : { dataPath: resolve(values.data) }),
  };
}

async function main(): Promise<void> {
  try {
    const r = await trainEnsemble(optionsFromArgv(process.argv.slice(2)));
    const summary = {
      sizes: r.sizes,
      accuracy: r.accuracy,
      test_accuracy_of_average: r.averageTestAccuracy,
      test_exactly_one_wrong: r.exactlyOneWrong,
      max_abs_probability_diff: r.maxAbsProbabilityDiff,
      js_models_checked: r.jsModelsChecked,
      out: r.outDir,
      total_bytes: r.totalBytes,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (err) {
    process.stderr.write(`train-ensemble: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
