// Writes the model of the adaptive-batching benchmarks: an MLP 784 → 2048 → 2048 → 10 in ONNX
//   input [N, 784] → Gemm → Relu → Gemm → Relu → Gemm → Softmax(axis=1) → probabilities [N, 10]
// with He-scaled normal weights from a fixed seed (untrained: only the compute matters). About
// 23 MB of float32 weights, large enough that one row per run is memory-bound and batching pays.
//
//   node dist/infra/build-bench-model.js [--out FILE] [--verify]
//
// Idempotent: a file that already exists with the expected size is kept. `--verify` loads the file
// in onnxruntime-node (1 intra-op thread) and prints batch-1 and batch-16 throughput.

import fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { attr, encodeModel, type GraphSpec } from './onnx/onnx-writer.js';
import { gaussian, mulberry32 } from './models/mlp.js';
import { MLP_BATCH_DIM, MLP_INPUT_NAME, MLP_OUTPUT_NAME } from './models/mlp-onnx.js';

/** Layer widths: input, two hidden layers, classes. */
export const BENCH_MODEL_LAYERS = [784, 2048, 2048, 10] as const;
export const BENCH_MODEL_SEED = 20170327;
export const BENCH_MODEL_FILE = 'mlp-784-2048-2048-10.onnx';

const log = (line: string): void => void process.stderr.write(`[bench-model] ${line}\n`);

/** Works both from dist/infra (compiled) and infra/ (run from source). */
function projectRoot(): string {
  const above = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return basename(above) === 'dist' ? resolve(above, '..') : above;
}

export function defaultBenchModelPath(): string {
  return join(projectRoot(), 'data', 'models', BENCH_MODEL_FILE);
}

/** He initialisation: N(0, 2 / fan_in), the scale that keeps ReLU activations from vanishing. */
function heNormal(rng: () => number, fanIn: number, fanOut: number): Float32Array {
  const w = new Float32Array(fanIn * fanOut);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < w.length; i++) w[i] = gaussian(rng) * std;
  return w;
}

/** The graph; with `zeros` the weights are all zero (same encoded size, no sampling). */
export function benchModelGraph(seed = BENCH_MODEL_SEED, zeros = false): GraphSpec {
  const rng = mulberry32(seed);
  const layers = BENCH_MODEL_LAYERS;
  const initializers: GraphSpec['initializers'][number][] = [];
  const nodes: GraphSpec['nodes'][number][] = [];
  let x: string = MLP_INPUT_NAME;
  for (let l = 0; l + 1 < layers.length; l++) {
    const fanIn = layers[l]!;
    const fanOut = layers[l + 1]!;
    const last = l + 2 === layers.length;
    // W stored [in, out] (transB = 0), as mlp-onnx.ts does.
    initializers.push({ name: `W${l + 1}`, dims: [fanIn, fanOut], values: zeros ? new Float32Array(fanIn * fanOut) : heNormal(rng, fanIn, fanOut) });
    initializers.push({ name: `b${l + 1}`, dims: [fanOut], values: new Float32Array(fanOut) });
    const pre = last ? 'logits' : `dense${l + 1}`;
    nodes.push({ opType: 'Gemm', name: `dense${l + 1}`, inputs: [x, `W${l + 1}`, `b${l + 1}`], outputs: [pre], attributes: { transB: attr.int(0) } });
    if (!last) {
      nodes.push({ opType: 'Relu', name: `relu${l + 1}`, inputs: [pre], outputs: [`hidden${l + 1}`] });
      x = `hidden${l + 1}`;
    }
  }
  nodes.push({ opType: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: [MLP_OUTPUT_NAME], attributes: { axis: attr.int(1) } });
  return {
    name: 'bench_mlp',
    docString: `benchmark MLP ${layers.join('-')}, He-normal weights from seed ${seed}, untrained`,
    inputs: [{ name: MLP_INPUT_NAME, dims: [MLP_BATCH_DIM, layers[0]] }],
    outputs: [{ name: MLP_OUTPUT_NAME, dims: [MLP_BATCH_DIM, layers[layers.length - 1]!] }],
    initializers,
    nodes,
  };
}

/** The ONNX bytes of the model (all-zero weights with `zeros`). */
export function encodeBenchModel(zeros = false): Uint8Array {
  const spec = benchModelGraph(BENCH_MODEL_SEED, zeros);
  return encodeModel(spec, { docString: spec.docString, metadata: { layers: BENCH_MODEL_LAYERS.join(','), seed: String(BENCH_MODEL_SEED) } });
}

/** Encoded size of the model; weights do not change it (raw_data has a fixed length). */
export function expectedBenchModelBytes(): number {
  return encodeBenchModel(true).byteLength;
}

/**
 * Returns the path of the benchmark model, writing it first unless a file of the expected size is
 * already there. Written to a temporary file and renamed, so a half-written file never looks done.
 */
export async function ensureBenchModel(file = defaultBenchModelPath()): Promise<string> {
  const expected = expectedBenchModelBytes();
  const existing = fs.statSync(file, { throwIfNoEntry: false });
  if (existing?.isFile() && existing.size === expected) {
    log(`${file} is up to date (${(expected / 1e6).toFixed(1)} MB)`);
    return file;
  }
  const started = Date.now();
  log(`sampling ${BENCH_MODEL_LAYERS.join('→')} weights (seed ${BENCH_MODEL_SEED}) and encoding ONNX`);
  const bytes = encodeBenchModel();
  if (bytes.byteLength !== expected) throw new Error(`encoded ${bytes.byteLength} bytes, expected ${expected}`);
  fs.mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
  log(`wrote ${file} (${(bytes.byteLength / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return file;
}

export interface ThroughputReport {
  batch: number;
  runs: number;
  ms_per_run: number;
  rows_per_s: number;
}

/** Loads the file in onnxruntime-node and measures rows per second at each batch size. */
export async function measureBenchModel(file: string, batches: readonly number[] = [1, 16], seconds = 2, threads = 1): Promise<ThroughputReport[]> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const inputSize = BENCH_MODEL_LAYERS[0];
  const classes = BENCH_MODEL_LAYERS[BENCH_MODEL_LAYERS.length - 1]!;
  const rng = mulberry32(1);
  const reports: ThroughputReport[] = [];
  try {
    for (const batch of batches) {
      const data = Float32Array.from({ length: batch * inputSize }, () => rng());
      const feed = { [MLP_INPUT_NAME]: new ort.Tensor('float32', data, [batch, inputSize]) };
      const first = await session.run(feed);
      const out = first[MLP_OUTPUT_NAME];
      if (!out || out.dims.join(',') !== `${batch},${classes}`) throw new Error(`unexpected output shape [${out?.dims.join(', ')}]`);
      const row0 = (out.data as Float32Array).subarray(0, classes);
      const sum = row0.reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-3) throw new Error(`softmax row sums to ${sum}`);
      for (let i = 0; i < 5; i++) await session.run(feed); // warm-up
      let runs = 0;
      const start = performance.now();
      while (performance.now() - start < seconds * 1000) {
        await session.run(feed);
        runs++;
      }
      const ms = (performance.now() - start) / runs;
      reports.push({ batch, runs, ms_per_run: Math.round(ms * 1000) / 1000, rows_per_s: Math.round((batch * 1000) / ms) });
    }
  } finally {
    await session.release();
  }
  return reports;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, verify: { type: 'boolean', default: false }, threads: { type: 'string', default: '1' } } });
  try {
    const file = await ensureBenchModel(values.out ? resolve(values.out) : undefined);
    const summary: Record<string, unknown> = { file, bytes: fs.statSync(file).size };
    if (values.verify) {
      const threads = Number(values.threads);
      log(`loading in onnxruntime-node (${threads} intra-op thread${threads === 1 ? '' : 's'}) and timing batches of 1 and 16`);
      const reports = await measureBenchModel(file, [1, 16], 2, threads);
      for (const r of reports) log(`batch ${r.batch}: ${r.ms_per_run} ms per run, ${r.rows_per_s} rows/s`);
      summary.threads = threads;
      summary.throughput = reports;
    }
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (err) {
    process.stderr.write(`build-bench-model: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}
