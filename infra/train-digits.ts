// Trains the digits MLP, writes digits-mlp.onnx + digits-mlp.json, and checks
// the .onnx in onnxruntime against the TypeScript forward pass.
//
//   node dist/infra/train-digits.js [--out DIR] [--data FILE] [--epochs N] [--seed N] [--hidden N]
//
// Progress goes to stderr; the last stdout line is a JSON summary. Exits 1 if
// the ONNX model disagrees with the TypeScript model. The outputs contain no
// timestamps, so re-running with the same options reproduces them byte for byte.

import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

import { IR_VERSION, OPSET_VERSION } from './onnx/onnx-writer.js';
import {
  DIGITS_CLASSES,
  DIGITS_FEATURES,
  DIGITS_PIXEL_MAX,
  DIGITS_PIXEL_SCALE,
  loadDigits,
  scalePixels,
} from './models/digits-data.js';
import { accuracy, argmax, predictProba, splitTrainTest, trainMlp, type MlpModel, type Row } from './models/mlp.js';
import { MLP_BATCH_DIM, MLP_INPUT_NAME, MLP_OUTPUT_NAME, mlpToOnnx } from './models/mlp-onnx.js';

export const MODEL_NAME = 'digits-mlp';
/** How far ORT's float32 probabilities may drift from the float64 TS forward pass. */
export const PROBABILITY_TOLERANCE = 1e-4;

/** Works both from dist/infra (compiled) and infra/ (run from source). */
function projectRoot(): string {
  const above = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return basename(above) === 'dist' ? resolve(above, '..') : above;
}

export interface TrainDigitsOptions {
  readonly outDir: string;
  readonly dataPath: string;
  readonly hidden: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly l2: number;
  /** Seeds weight init and batch order. */
  readonly seed: number;
  /** Seeds the (stratified) test split; fixed so the held-out rows never change. */
  readonly splitSeed: number;
  readonly testFraction: number;
  /** Receives one progress line per epoch (and a few more); stderr by default. */
  readonly log: (line: string) => void;
}

export function defaultTrainDigitsOptions(): TrainDigitsOptions {
  const root = projectRoot();
  return {
    outDir: join(root, 'infra', 'models'),
    dataPath: join(root, 'infra', 'models', 'data', 'digits.csv.gz'),
    hidden: 32,
    epochs: 60,
    batchSize: 32,
    learningRate: 0.005,
    l2: 1e-4,
    seed: 1,
    splitSeed: 2024,
    testFraction: 0.2,
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

export interface Accuracies {
  readonly train: number;
  readonly test: number;
  readonly all: number;
}

export interface OrtCheck {
  readonly testAccuracy: number;
  readonly allAccuracy: number;
  readonly maxAbsProbabilityDiff: number;
  readonly argmaxDisagreements: number;
}

export interface TrainDigitsResult {
  readonly onnxPath: string;
  readonly metadataPath: string;
  readonly onnxBytes: number;
  readonly trainSeconds: number;
  readonly trainSize: number;
  readonly testSize: number;
  readonly accuracy: Accuracies;
  readonly ort: OrtCheck;
}

export class OnnxVerificationError extends Error {
  constructor(
    message: string,
    readonly check: OrtCheck,
  ) {
    super(message);
    this.name = 'OnnxVerificationError';
  }
}

const pick = <T>(items: ArrayLike<T>, indices: readonly number[]): T[] => indices.map((i) => items[i]!);

// A JSON number or a string without commas/brackets: what a flat, one-line array may hold.
const FLAT_ITEM = String.raw`(?:-?[\d.eE+-]+|"[^"\n,\[\]]*")`;
const FLAT_ARRAY = new RegExp(String.raw`\[\s+(${FLAT_ITEM}(?:,\s+${FLAT_ITEM})*)\s+\]`, 'g');

/** Pretty JSON, but flat arrays of scalars stay on one line (keeps test_indices readable). */
function toJson(value: unknown): string {
  const pretty = JSON.stringify(value, null, 2);
  return `${pretty.replace(FLAT_ARRAY, (_m, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`)}\n`;
}

/** Runs every raw-pixel row through the ONNX model; returns [rows × classes] probabilities. */
async function ortProbabilities(onnx: Uint8Array, rawRows: readonly Row[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx);
  try {
    const input = new Float32Array(rawRows.length * DIGITS_FEATURES);
    rawRows.forEach((row, r) => input.set(row, r * DIGITS_FEATURES));
    const feeds = { [MLP_INPUT_NAME]: new ort.Tensor('float32', input, [rawRows.length, DIGITS_FEATURES]) };
    const output = (await session.run(feeds))[MLP_OUTPUT_NAME];
    if (output === undefined || !(output.data instanceof Float32Array)) throw new Error(`ONNX model has no float32 "${MLP_OUTPUT_NAME}" output`);
    const expectedDims = [rawRows.length, DIGITS_CLASSES];
    if (output.dims.join(',') !== expectedDims.join(',')) {
      throw new Error(`ONNX output dims [${output.dims.join(', ')}], expected [${expectedDims.join(', ')}]`);
    }
    return output.data;
  } finally {
    await session.release();
  }
}

/** Compares ORT (fed raw pixels) with the TS model (fed scaled pixels) on every row. */
export async function verifyWithOrt(
  onnx: Uint8Array,
  model: MlpModel,
  rawRows: readonly Row[],
  labels: ArrayLike<number>,
  testIndices: readonly number[],
): Promise<OrtCheck> {
  const ortProbs = await ortProbabilities(onnx, rawRows);
  const ortPredictions: number[] = [];
  let maxDiff = 0;
  let disagreements = 0;
  rawRows.forEach((row, r) => {
    const row32 = ortProbs.subarray(r * DIGITS_CLASSES, (r + 1) * DIGITS_CLASSES);
    const ts = predictProba(model, scalePixels(row));
    for (let k = 0; k < DIGITS_CLASSES; k++) maxDiff = Math.max(maxDiff, Math.abs(ts[k]! - row32[k]!));
    ortPredictions.push(argmax(row32));
    if (ortPredictions[r] !== argmax(ts)) disagreements++;
  });
  const correct = (rows: readonly number[]): number => rows.filter((i) => ortPredictions[i] === labels[i]).length / rows.length;
  return {
    testAccuracy: correct(testIndices),
    allAccuracy: correct(rawRows.map((_, i) => i)),
    maxAbsProbabilityDiff: maxDiff,
    argmaxDisagreements: disagreements,
  };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Loads, splits, trains, writes the .onnx and .json, then verifies the .onnx with onnxruntime. */
export async function trainDigits(overrides: Partial<TrainDigitsOptions> = {}): Promise<TrainDigitsResult> {
  const o: TrainDigitsOptions = { ...defaultTrainDigitsOptions(), ...overrides };
  const data = await loadDigits(o.dataPath);
  const features = data.pixels.map(scalePixels);
  const split = splitTrainTest(features.length, o.testFraction, o.splitSeed, data.labels);
  o.log(`digits: ${features.length} rows, train ${split.train.length}, test ${split.test.length}; hidden ${o.hidden}, ${o.epochs} epochs`);

  const started = performance.now();
  const model = trainMlp({
    xs: pick(features, split.train),
    ys: pick(data.labels, split.train),
    classes: DIGITS_CLASSES,
    hidden: o.hidden,
    epochs: o.epochs,
    batchSize: o.batchSize,
    learningRate: o.learningRate,
    l2: o.l2,
    seed: o.seed,
    onEpoch: (p) =>
      o.log(
        `epoch ${String(p.epoch).padStart(3)}/${p.epochs}  loss ${p.loss.toFixed(4)}  train-acc ${p.trainAccuracy.toFixed(4)}  ` +
          `(${((performance.now() - started) / 1000).toFixed(2)}s)`,
      ),
  });
  const trainSeconds = (performance.now() - started) / 1000;

  const acc: Accuracies = {
    train: accuracy(model, features, data.labels, split.train),
    test: accuracy(model, features, data.labels, split.test),
    all: accuracy(model, features, data.labels),
  };
  o.log(`trained in ${trainSeconds.toFixed(2)}s: train ${acc.train.toFixed(4)}, test ${acc.test.toFixed(4)}, all ${acc.all.toFixed(4)}`);

  const onnx = mlpToOnnx(
    model,
    { inputScale: DIGITS_PIXEL_SCALE, graphName: MODEL_NAME, docString: 'UCI optdigits 8x8 classifier; input raw pixel counts 0..16' },
    { metadata: { dataset: 'UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), CC BY 4.0' } },
  );
  await mkdir(o.outDir, { recursive: true });
  const onnxPath = join(o.outDir, `${MODEL_NAME}.onnx`);
  const metadataPath = join(o.outDir, `${MODEL_NAME}.json`);
  await writeFile(onnxPath, onnx);
  const metadata = {
    name: MODEL_NAME,
    created_by: 'infra/train-digits.ts',
    dataset: {
      name: 'UCI Optical Recognition of Handwritten Digits (scikit-learn copy)',
      authors: 'E. Alpaydin, C. Kaynak (1998)',
      license: 'CC BY 4.0',
      rows: features.length,
    },
    onnx: {
      file: basename(onnxPath),
      bytes: onnx.length,
      sha256: sha256(onnx),
      ir_version: IR_VERSION,
      opset: OPSET_VERSION,
      input: { name: MLP_INPUT_NAME, dtype: 'float32', shape: [MLP_BATCH_DIM, DIGITS_FEATURES], value_range: [0, DIGITS_PIXEL_MAX] },
      output: { name: MLP_OUTPUT_NAME, dtype: 'float32', shape: [MLP_BATCH_DIM, DIGITS_CLASSES] },
    },
    hidden: o.hidden,
    seed: o.seed,
    split_seed: o.splitSeed,
    epochs: o.epochs,
    batch_size: o.batchSize,
    learning_rate: o.learningRate,
    l2: o.l2,
    test_fraction: o.testFraction,
    train_size: split.train.length,
    test_size: split.test.length,
    accuracy: acc,
    test_indices: split.test,
  };
  await writeFile(metadataPath, toJson(metadata));
  o.log(`wrote ${onnxPath} (${onnx.length} bytes) and ${metadataPath}`);

  const check = await verifyWithOrt(onnx, model, data.pixels, data.labels, split.test);
  o.log(
    `onnxruntime: test ${check.testAccuracy.toFixed(4)}, all ${check.allAccuracy.toFixed(4)}, ` +
      `max |Δp| ${check.maxAbsProbabilityDiff.toExponential(2)}, argmax disagreements ${check.argmaxDisagreements}`,
  );
  const problems = [
    check.testAccuracy !== acc.test && `test accuracy ${check.testAccuracy} != TS ${acc.test}`,
    check.allAccuracy !== acc.all && `all-rows accuracy ${check.allAccuracy} != TS ${acc.all}`,
    !(check.maxAbsProbabilityDiff <= PROBABILITY_TOLERANCE) && `max |Δp| ${check.maxAbsProbabilityDiff} > ${PROBABILITY_TOLERANCE}`,
  ].filter((p): p is string => typeof p === 'string');
  if (problems.length > 0) throw new OnnxVerificationError(`ONNX model disagrees with TS model: ${problems.join('; ')}`, check);

  return {
    onnxPath,
    metadataPath,
    onnxBytes: onnx.length,
    trainSeconds,
    trainSize: split.train.length,
    testSize: split.test.length,
    accuracy: acc,
    ort: check,
  };
}

function intArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function optionsFromArgv(argv: readonly string[]): Partial<TrainDigitsOptions> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      data: { type: 'string' },
      epochs: { type: 'string' },
      seed: { type: 'string' },
      hidden: { type: 'string' },
    },
    strict: true,
  });
  const overrides: { -readonly [K in keyof TrainDigitsOptions]?: TrainDigitsOptions[K] } = {};
  if (values.out !== undefined) overrides.outDir = resolve(values.out);
  if (values.data !== undefined) overrides.dataPath = resolve(values.data);
  const epochs = intArg(values.epochs, 'epochs');
  const seed = intArg(values.seed, 'seed');
  const hidden = intArg(values.hidden, 'hidden');
  if (epochs !== undefined) overrides.epochs = epochs;
  if (seed !== undefined) overrides.seed = seed;
  if (hidden !== undefined) overrides.hidden = hidden;
  return overrides;
}

async function main(): Promise<void> {
  try {
    const result = await trainDigits(optionsFromArgv(process.argv.slice(2)));
    const summary = {
      train_accuracy: result.accuracy.train,
      test_accuracy: result.accuracy.test,
      all_accuracy: result.accuracy.all,
      ort_test_accuracy: result.ort.testAccuracy,
      ort_all_accuracy: result.ort.allAccuracy,
      max_abs_probability_diff: result.ort.maxAbsProbabilityDiff,
      train_seconds: Number(result.trainSeconds.toFixed(3)),
      onnx: result.onnxPath,
      onnx_bytes: result.onnxBytes,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (err) {
    process.stderr.write(`train-digits: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
