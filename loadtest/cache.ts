/**
 * `npm run bench -- cache`: what the prediction cache buys.
 * Part 1, exact mode, the big MLP under a 20 ms SLO over NATS (msgpack tensors): the highest
 * sustained rate with P99 ≤ SLO when no query repeats (`qps_hit0`) and when 90 % repeat one of 100
 * inputs (`qps_hit90`), and the median latency of a hit and of a miss at light load.
 * Part 2, the noisy digits workload: every digits row queried 5 times with independent Gaussian noise
 * (σ = 0.5 on the 0..16 scale), in random order, against the digits MLP with approximate caching; the
 * hit rate, the accuracy with and without the cache (same queries), and the exact-mode hit rate. The
 * trade-off curve over tolerances is computed by replaying the same queries through the same LSH and
 * distance code with the model's real outputs (onnxruntime-node in this process).
 */
import path from 'node:path';
import { Packr } from 'msgpackr';
import { connect, type NatsConnection } from 'nats';
import * as ort from 'onnxruntime-node';
import { ensureBenchModel } from '../infra/build-bench-model.js';
import { loadDigits } from '../infra/models/digits-data.js';
import { argmax } from '../infra/models/mlp.js';
import { distance, LshSignature } from '../services/cache/lsh-signature.js';
import { serviceStats } from '../shared/nats.js';
import { PROJECT_ROOT } from '../shared/process.js';
import { gaussian, mulberry32 } from '../shared/random.js';
import { cleanupOnce, pool, progress, startSystem, type BenchSystem } from './harness.js';
import { elapsedUs, LatencyRecorder } from './latency.js';
import { natsSender } from './open-loop.js';
import { round1, round2, round3 } from './round.js';
import { findMaxRates, type SweepResult } from './sweep.js';
import type { XyPlotSpec } from './xy-plot.js';

const msgpack = new Packr({ useRecords: false });
const SLO_MS = 20;
const NEAR_CACHE_BYTES = 32 * 1024 * 1024;

export interface CacheBenchOptions {
  stepS: number;
  startRate: number;
  /** Approximate-cache tolerance (L2 distance on the 0..16 pixel scale). */
  tolerance: number;
}

interface Stats { lookups: number; hits: number; approx_hits: number }

async function cacheStats(nc: NatsConnection, key: string): Promise<Stats> {
  const data = await serviceStats<{ models?: Record<string, Stats> }>(nc, 'clipper-cache');
  return data?.models?.[key] ?? { lookups: 0, hits: 0, approx_hits: 0 };
}

const tensorPayload = (values: Float32Array, extra: Record<string, unknown> = {}): Uint8Array =>
  msgpack.pack({ input: { dtype: 'FP32', shape: [values.length], data: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) }, ...extra });

async function answer(nc: NatsConnection, subject: string, payload: Uint8Array): Promise<Float32Array> {
  const msg = await nc.request(subject, payload, { timeout: 10_000 });
  const res = msgpack.unpack(msg.data) as { output?: { data: Uint8Array }; default?: boolean; code?: string };
  if (!res.output || res.default) throw new Error(`no model answer: ${JSON.stringify({ default: res.default, code: res.code })}`);
  return new Float32Array(new Uint8Array(res.output.data).buffer);
}

export async function runCache(opts: CacheBenchOptions): Promise<{ result: Record<string, unknown>; plot: XyPlotSpec }> {
  const mlpFile = await ensureBenchModel();
  const digitsFile = path.join(PROJECT_ROOT, 'infra', 'models', 'digits-mlp.onnx');
  // The ingress keeps a near cache of exact-mode predictions in front of the cache shards.
  const system: BenchSystem = await startSystem({ CLIPPER_NEAR_CACHE_BYTES: String(NEAR_CACHE_BYTES) });
  const stopAll = cleanupOnce(() => system.close());
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: system.stack.natsUrl, noAsyncTraces: true });
    const admin = system.admin;
    await admin.call('add_model', { model_name: 'mlpc', model_version: '1', input_type: 'floats', wrapper: 'onnx', model_data_path: mlpFile, batch_size: -1, cache: { mode: 'exact' } });
    await admin.call('add_app', { name: 'cached', input_type: 'floats', input_shape: [784], latency_slo_micros: SLO_MS * 1000, candidate_model_names: ['mlpc'] });
    const approx = { mode: 'approx', metric: 'l2', tolerance: opts.tolerance, bits: 4, tables: 12 };
    await admin.call('add_model', { model_name: 'digits-approx', model_version: '1', input_type: 'floats', wrapper: 'onnx', model_data_path: digitsFile, cache: approx });
    await admin.call('add_model', { model_name: 'digits-exact', model_version: '1', input_type: 'floats', wrapper: 'onnx', model_data_path: digitsFile, cache: { mode: 'exact' } });
    await admin.call('add_app', { name: 'dapprox', input_type: 'floats', input_shape: [64], latency_slo_micros: 1_000_000, candidate_model_names: ['digits-approx'] });
    await admin.call('add_app', { name: 'dexact', input_type: 'floats', input_shape: [64], latency_slo_micros: 1_000_000, candidate_model_names: ['digits-exact'] });

    // ---- part 1: exact repeats on the big MLP ---------------------------------------------------
    const rng = mulberry32(42);
    const base = Float32Array.from({ length: 784 }, () => rng());
    let counter = 0;
    const unique = (): Uint8Array => {
      const x = base.slice();
      x[0] = ++counter; // every query differs
      return tensorPayload(x);
    };
    const popular = Array.from({ length: 100 }, (_, i) => {
      const x = base.slice();
      x[1] = -1 - i;
      return tensorPayload(x);
    });
    progress('waiting for the models to load');
    for (const subject of ['clipper.predict.cached', 'clipper.predict.dapprox', 'clipper.predict.dexact']) {
      const until = Date.now() + 60_000;
      for (;;) {
        try {
          await answer(nc, subject, subject.endsWith('cached') ? unique() : tensorPayload(new Float32Array(64)));
          break;
        } catch (err) {
          if (Date.now() > until) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    for (const p of popular) await answer(nc, 'clipper.predict.cached', p); // the popular inputs are cached
    const hitRng = mulberry32(7);
    const target = (label: string, payload: () => Uint8Array) => ({ send: natsSender(nc!, 'clipper.predict.cached', payload), sloMs: SLO_MS, startRate: opts.startRate, stepDurationS: opts.stepS, label });
    // The two sweeps take turns, so the machine's slow spells fall on both alike.
    const [hit0, hit90] = await findMaxRates([
      target('hit0', unique),
      target('hit90', () => (hitRng() < 0.9 ? popular[Math.floor(hitRng() * popular.length)]! : unique())),
    ]) as [SweepResult, SweepResult];
    const hits = new LatencyRecorder();
    const misses = new LatencyRecorder();
    // Light load, one query at a time, after the last sweep's queues have drained. A query the model
    // did not answer in time (a stall of the machine) is counted, not timed, and does not end the bench.
    await new Promise((r) => setTimeout(r, 2_000));
    let unanswered = 0;
    const timed = async (recorder: LatencyRecorder, payload: Uint8Array): Promise<void> => {
      const t = process.hrtime.bigint();
      try {
        await answer(nc!, 'clipper.predict.cached', payload);
        recorder.recordUs(elapsedUs(t));
      } catch {
        unanswered++;
      }
    };
    for (let i = 0; i < 300; i++) {
      await timed(hits, popular[i % popular.length]!);
      await timed(misses, unique());
    }

    // ---- part 2: the noisy digits workload ------------------------------------------------------
    const digits = await loadDigits(path.join(PROJECT_ROOT, 'infra', 'models', 'data', 'digits.csv.gz'));
    const noise = mulberry32(2024);
    const queries: { row: number; x: Float32Array }[] = [];
    digits.pixels.forEach((p, row) => {
      for (let k = 0; k < 5; k++) queries.push({ row, x: Float32Array.from(p, (v) => v + 0.5 * gaussian(noise)) });
    });
    for (let i = queries.length - 1; i > 0; i--) {
      const j = Math.floor(noise() * (i + 1));
      [queries[i], queries[j]] = [queries[j]!, queries[i]!];
    }
    progress(`noisy digits: ${queries.length} queries, approximate cache (tolerance ${opts.tolerance})`);
    const approxBefore = await cacheStats(nc, 'digits-approx:1');
    const withCache = await pool(queries, 16, (q) => answer(nc!, 'clipper.predict.dapprox', tensorPayload(q.x)));
    const approxAfter = await cacheStats(nc, 'digits-approx:1');
    progress('noisy digits: the same queries without the cache');
    const without = await pool(queries, 16, (q) => answer(nc!, 'clipper.predict.dapprox', tensorPayload(q.x, { cache: false })));
    progress('noisy digits: the same queries with the exact cache');
    const exactBefore = await cacheStats(nc, 'digits-exact:1');
    await pool(queries, 16, (q) => answer(nc!, 'clipper.predict.dexact', tensorPayload(q.x)));
    const exactAfter = await cacheStats(nc, 'digits-exact:1');
    const acc = (outs: Float32Array[]): number => outs.filter((o, i) => argmax(o) === digits.labels[queries[i]!.row]).length / outs.length;
    const accuracyCached = acc(withCache);
    const accuracyModel = acc(without);
    const approxHitRate = (approxAfter.hits - approxBefore.hits) / Math.max(1, approxAfter.lookups - approxBefore.lookups);
    const exactHitRate = (exactAfter.hits - exactBefore.hits) / Math.max(1, exactAfter.lookups - exactBefore.lookups);

    // ---- the trade-off curve: the same queries through the same LSH and distance code -------------
    progress('trade-off curve over tolerances (replaying the queries with onnxruntime outputs)');
    const session = await ort.InferenceSession.create(digitsFile);
    const batch = new Float32Array(queries.length * 64);
    queries.forEach((q, i) => batch.set(q.x, i * 64));
    const run = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', batch, [queries.length, 64]) });
    const probs = run[session.outputNames[0]!]!.data as Float32Array;
    const modelClass = queries.map((_, i) => argmax(probs.subarray(i * 10, i * 10 + 10)));
    const curve: { tolerance: number; hit_rate: number; accuracy_loss_pp: number }[] = [];
    for (const tolerance of [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32]) {
      const lsh = new LshSignature({ metric: 'l2', dim: 64, bits: 4, tables: 12, seed: 1, bucketWidth: 4 * tolerance });
      const buckets = new Map<string, number[]>();
      let hitCount = 0;
      let correct = 0;
      queries.forEach((q, i) => {
        const keys = lsh.keys(q.x);
        let best = -1;
        let bestD = Infinity;
        for (const k of keys) for (const j of buckets.get(k) ?? []) {
          const d = distance('l2', q.x, queries[j]!.x);
          if (d <= tolerance && d < bestD) [best, bestD] = [j, d];
        }
        const cls = best >= 0 ? modelClass[best]! : modelClass[i]!;
        if (best >= 0) hitCount++;
        else for (const k of keys) (buckets.get(k) ?? buckets.set(k, []).get(k)!).push(i);
        if (cls === digits.labels[q.row]) correct++;
      });
      const modelCorrect = modelClass.filter((c, i) => c === digits.labels[queries[i]!.row]).length;
      curve.push({ tolerance, hit_rate: round3(hitCount / queries.length), accuracy_loss_pp: round2((100 * (modelCorrect - correct)) / queries.length) });
    }

    const h0 = hit0.max_qps;
    const h90 = hit90.max_qps;
    const result: Record<string, unknown> = {
      bench: 'cache',
      qps_hit0: round1(h0),
      qps_hit90: round1(h90),
      hit90_over_hit0: h0 > 0 ? round2(h90 / h0) : null,
      hit_p50_ms: hits.summary().p50_ms,
      miss_p50_ms: misses.summary().p50_ms,
      approx_hit_rate: round3(approxHitRate),
      approx_accuracy_loss_pp: round2(100 * (accuracyModel - accuracyCached)),
      exact_hit_rate: round3(exactHitRate),
      accuracy_without_cache: round3(accuracyModel),
      accuracy_with_cache: round3(accuracyCached),
      tolerance: opts.tolerance,
      slo_ms: SLO_MS,
      transport: 'NATS, msgpack tensors (part 1); NATS, 16 concurrent (part 2)',
      near_cache_bytes: NEAR_CACHE_BYTES,
      latency_probe_unanswered: unanswered,
      targets: { hit90_over_hit0: 5, approx_hit_rate: 0.6, approx_accuracy_loss_pp: 1 },
      met: {
        hit90_over_hit0: h0 > 0 && h90 / h0 >= 5,
        approx: approxHitRate >= 0.6 && 100 * (accuracyModel - accuracyCached) <= 1,
      },
      tradeoff: curve,
      steps: { hit0: hit0.steps, hit90: hit90.steps },
    };
    const plot: XyPlotSpec = {
      title: 'Approximate cache on noisy digits: hit rate and accuracy loss vs tolerance',
      xLabel: 'tolerance (L2 distance, 0..16 pixel scale)',
      yLabel: 'hit rate (%) / accuracy loss (points)',
      series: [
        { name: 'hit rate (%)', points: curve.map((c) => [c.tolerance, 100 * c.hit_rate]) },
        { name: 'accuracy loss (points)', points: curve.map((c) => [c.tolerance, c.accuracy_loss_pp]) },
      ],
    };
    return { result, plot };
  } finally {
    await nc?.close().catch(() => undefined);
    await stopAll();
  }
}
