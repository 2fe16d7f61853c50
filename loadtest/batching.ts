/**
 * `npm run bench -- batching`: what adaptive batching buys under a latency objective. The
 * 784-2048-2048-10 MLP (infra/build-bench-model.ts) is served three ways: through the system with
 * adaptive batching (app `aimd`, model `batch_size: -1`, `delay_ms` AIMD_DELAY_MS), through the
 * system one query per batch (app `batch1`, `batch_size: 1`), and by the single-process baseline
 * peer. For each, over HTTP with the same open-loop generator and body, and for `aimd` also over
 * NATS, the highest rate whose P99 stays within the 20 ms SLO (loadtest/sweep.ts).
 */
import { Packr } from 'msgpackr';
import { ensureBenchModel } from '../infra/build-bench-model.js';
import { mulberry32 } from '../infra/models/mlp.js';
import { schedPolicyInEffect } from '../shared/process.js';
import { cleanupOnce, loadBeforeBench, machineSpeed, progress, startPeer, startSystem, waitForApp, type BenchSystem } from './harness.js';
import { round1, round2 } from './round.js';
import { remoteGenerator, type GeneratorTarget } from './step-runner.js';
import type { PlotSpec } from './plot.js';
import { findMaxRates, type SweepResult } from './sweep.js';

export const MLP_INPUT_LENGTH = 784;
export const BATCHING_SLO_MS = 20;
/** Pause between two steps: queues drain and the processes' garbage collection settles. */
const STEP_PAUSE_MS = 2_000;

export interface BatchingOptions {
  stepS: number;
  startRate: number;
  /** Which sweeps to run, of peer, batch1, aimd, aimd-nats. */
  targets: readonly string[];
  /** Keep-alive connections of the HTTP client. */
  sockets: number;
}

/** The same pseudo-random image for every request: 784 values in [0, 1), 3 decimals. */
export function mlpInput(seed = 7): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: MLP_INPUT_LENGTH }, () => Math.round(rng() * 1000) / 1000);
}

/** The HTTP body and the NATS msgpack payload (`{input: FP32 tensor}`) of one query. */
export function mlpPayloads(input = mlpInput()): { body: string; natsPayload: Uint8Array } {
  const data = new Uint8Array(Float32Array.from(input).buffer);
  const natsPayload = new Packr({ useRecords: false }).pack({ input: { dtype: 'FP32', shape: [MLP_INPUT_LENGTH], data } });
  return { body: JSON.stringify({ input }), natsPayload };
}

/**
 * The adaptive model's delayed-batching wait (`batching.delay_ms`), ms: Clipper's 2 ms. Without it, a
 * replica takes whatever is queued the moment it is free, so at moderate load it runs small batches,
 * each paying the model's fixed cost: at 1500 queries/s (AMD VM, 2026-11-29) batches of ~3, and the
 * worker used 64 % of a vCPU; waiting up to 2 ms, 51 % (median 6.1 ms instead of 5.1); 3 ms, batches
 * of ~6 and 40 % (median 6.3 ms), on a machine whose other actors and load generator need that CPU.
 * In full batching runs there, AIMD over HTTP reached 2226, 2256 and 1511/s with 2 ms, 1777–1815/s
 * with 3 ms and 1884–2007/s with none; over NATS 2245–2292, 2534–2773 and 2271–2272/s.
 */
export const AIMD_DELAY_MS = 2;

/**
 * Registers model `name` v1 on the bench model and an app of the same SLO linked to it. An adaptive
 * model (batch size -1) waits AIMD_DELAY_MS for a fuller batch.
 */
export async function deployMlpApp(system: BenchSystem, modelFile: string, app: string, model: string, batchSize: number, sloMs = BATCHING_SLO_MS): Promise<void> {
  const batching = batchSize < 0 ? { batching: { delay_ms: AIMD_DELAY_MS } } : {};
  await system.admin.call('add_model', { model_name: model, model_version: '1', input_type: 'floats', wrapper: 'onnx', model_data_path: modelFile, batch_size: batchSize, ...batching });
  await system.admin.call('add_app', { name: app, input_type: 'floats', input_shape: [MLP_INPUT_LENGTH], latency_slo_micros: sloMs * 1000, candidate_model_names: [model] });
}


export async function runBatching(opts: BatchingOptions): Promise<{ result: Record<string, unknown>; plot: PlotSpec }> {
  const loadAvg = loadBeforeBench();
  const modelFile = await ensureBenchModel();
  const speed = await machineSpeed(modelFile);
  const { body, natsPayload } = mlpPayloads();
  const sloMs = BATCHING_SLO_MS;
  let system: BenchSystem | undefined;
  const closers: (() => unknown)[] = [];
  const cleanup = cleanupOnce(async () => {
    for (const c of closers.reverse()) await c();
    await system?.close();
  });
  try {
    system = await startSystem();
    progress('starting the baseline peer (one process, onnxruntime, no batching)');
    const peer = await startPeer(modelFile, 'onnx', MLP_INPUT_LENGTH);
    closers.push(() => peer.close());
    await deployMlpApp(system, modelFile, 'aimd', 'mlp', -1);
    await deployMlpApp(system, modelFile, 'batch1', 'mlp1', 1);
    progress('waiting for both models to load');
    await waitForApp(system, 'aimd', body);
    await waitForApp(system, 'batch1', body);

    // Each target's load generator runs in a process of its own (step-runner.ts).
    const generatorTargets: Record<string, GeneratorTarget> = {
      batch1: { kind: 'http', baseUrl: system.stack.ingressUrl, path: '/batch1/predict', body, sockets: opts.sockets },
      aimd: { kind: 'http', baseUrl: system.stack.ingressUrl, path: '/aimd/predict', body, sockets: opts.sockets },
      peer: { kind: 'http', baseUrl: peer.url, path: '/predict', body, sockets: opts.sockets },
      'aimd-nats': { kind: 'nats', natsUrl: system.stack.natsUrl, subject: 'clipper.predict.aimd', payload: natsPayload },
    };
    // The targets' steps take turns, so the machine's slow spells fall on all of them alike.
    const labels = Object.keys(generatorTargets).filter((t) => opts.targets.includes(t));
    progress(`${labels.join(', ')}: looking for the highest rate with P99 ≤ ${sloMs} ms, one step of each in turn`);
    const generators = await Promise.all(labels.map((label) => remoteGenerator(generatorTargets[label]!)));
    for (const g of generators) closers.push(() => g.close());
    const found = await findMaxRates(labels.map((label, i) => {
      const g = generators[i]!;
      return { runStep: (step) => g.runStep(step), afterStep: () => g.release(), sloMs, startRate: opts.startRate, stepDurationS: opts.stepS, pauseMs: STEP_PAUSE_MS, label };
    }));
    const results = new Map(labels.map((label, i) => [label, found[i]!]));
    for (const [label, r] of results) progress(`${label}: ${Math.round(r.max_qps)}/s at P99 ${r.p99_ms_at_max} ms`);
    const skipped: SweepResult = { max_qps: 0, rate_at_max: 0, p99_ms_at_max: 0, steps: [] };
    const peerRes = results.get('peer') ?? skipped;
    const batch1 = results.get('batch1') ?? skipped;
    const aimd = results.get('aimd') ?? skipped;
    const aimdNats = results.get('aimd-nats');

    // The targets: aimd ≥ 3 × batch1, aimd ≥ 2 × peer, aimd over NATS ≥ 3 × peer.
    const targets = { aimd_over_batch1: 3, aimd_over_peer: 2, aimd_nats_over_peer: 3, p99_ms: sloMs };
    // Targets are checked on the exact ratios; the result shows them to two decimals.
    const aimdOverBatch1 = batch1.max_qps > 0 ? aimd.max_qps / batch1.max_qps : null;
    const aimdOverPeer = peerRes.max_qps > 0 ? aimd.max_qps / peerRes.max_qps : null;
    const aimdNatsOverPeer = aimdNats && peerRes.max_qps > 0 ? aimdNats.max_qps / peerRes.max_qps : null;
    const met = {
      aimd_over_batch1: aimdOverBatch1 !== null && aimdOverBatch1 >= targets.aimd_over_batch1,
      aimd_over_peer: aimdOverPeer !== null && aimdOverPeer >= targets.aimd_over_peer,
      aimd_nats_over_peer: aimdNatsOverPeer !== null && aimdNatsOverPeer >= targets.aimd_nats_over_peer,
      p99_ms: aimd.max_qps > 0 && aimd.p99_ms_at_max <= sloMs,
    };
    const result: Record<string, unknown> = {
      bench: 'batching',
      aimd_qps: round1(aimd.max_qps),
      batch1_qps: round1(batch1.max_qps),
      peer_qps: round1(peerRes.max_qps),
      aimd_nats_qps: aimdNats ? round1(aimdNats.max_qps) : null,
      aimd_p99_ms: aimd.p99_ms_at_max,
      batch1_p99_ms: batch1.p99_ms_at_max,
      peer_p99_ms: peerRes.p99_ms_at_max,
      aimd_nats_p99_ms: aimdNats?.p99_ms_at_max ?? null,
      aimd_over_batch1: aimdOverBatch1 === null ? null : round2(aimdOverBatch1),
      aimd_over_peer: aimdOverPeer === null ? null : round2(aimdOverPeer),
      aimd_nats_over_peer: aimdNatsOverPeer === null ? null : round2(aimdNatsOverPeer),
      slo_ms: sloMs,
      load_avg_1m_at_start: loadAvg,
      sched_policy: schedPolicyInEffect(),
      model: 'MLP 784-2048-2048-10 (ONNX, 1 intra-op thread per process)',
      aimd_delay_ms: AIMD_DELAY_MS,
      step_duration_s: opts.stepS,
      targets,
      met: { ...met, all: Object.values(met).every(Boolean) },
      steps: { aimd: aimd.steps, batch1: batch1.steps, peer: peerRes.steps, ...(aimdNats ? { aimd_nats: aimdNats.steps } : {}) },
    };
    const plot: PlotSpec = {
      title: `Adaptive batching: MLP 784-2048-2048-10, P99 SLO ${sloMs} ms`,
      sloMs,
      series: [
        { name: 'aimd (batch_size -1, HTTP)', steps: aimd.steps },
        ...(aimdNats ? [{ name: 'aimd over NATS', steps: aimdNats.steps }] : []),
        { name: 'batch1 (batch_size 1, HTTP)', steps: batch1.steps },
        { name: 'peer (one process, HTTP)', steps: peerRes.steps },
      ],
    };
    result.model_batch1_ms = await speed.atEnd();
    return { result, plot };
  } finally {
    await cleanup();
  }
}
