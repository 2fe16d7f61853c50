/**
 * `npm run bench -- ensemble`: what the correction policies buy (Clipper §5), through the serving path.
 *
 * Four digits models of different families, trained on the FIT split (infra/train-ensemble.ts):
 * 1. Ensemble: feedback on the FEEDBACK split teaches an `exp4` app its weights; then every row of
 *    the held-out TEST split is queried through each model alone (`single` apps) and through the
 *    `exp4` app: `best_single_error`, `exp4_error`, `exp4_relative_reduction`.
 * 2. Recovery: an `exp3` app gets a stream of query-then-feedback steps; halfway, the best model is
 *    switched to a new version that returns garbage (a bad deploy). `exp3_recovery_queries`: queries
 *    after the switch until Exp3's rolling accuracy is back within 2 points of the next-best model.
 * 3. Stragglers: the same open-loop load against an `exp4` app with a 20 ms SLO whose fourth model
 *    stalls 100 ms on 10 % of its batches (anytime: answer at the deadline with what has arrived)
 *    and against the same models with a policy that waits for all of them: P99 of both, accuracy lost.
 * 4. Feedback: the acknowledgement latency of `POST /<app>/update` (stored in JetStream), and the
 *    rate at which `clipper feedback replay` rebuilds policy state from the stored outcomes.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'nats';
import { ensembleSplits } from '../infra/models/ensemble-splits.js';
import { loadDigits } from '../infra/models/digits-data.js';
import { argmax, mulberry32, shuffleInPlace } from '../infra/models/mlp.js';
import { decode, encode } from '../shared/codec.js';
import { countMessages } from '../shared/feedback-stream.js';
import { DIST_ROOT, PROJECT_ROOT } from '../shared/process.js';
import { outcomeRecordMessage, type OutcomeRecord } from '../shared/protocol.js';
import { Subjects } from '../shared/subjects.js';
import { cleanupOnce, pool, progress, startSystem, type BenchSystem } from './harness.js';
import { JsonPoster } from './http-client.js';
import { LatencyRecorder } from './latency.js';
import { runOpenLoop, type Outcome } from './open-loop.js';

const MODELS_DIR = path.join(PROJECT_ROOT, 'infra', 'models');
/** The ensemble members: name → how the serving system loads it. */
const MEMBERS: Record<string, { wrapper: 'onnx' | 'js'; file: string }> = {
  mlp: { wrapper: 'onnx', file: path.join(MODELS_DIR, 'ensemble', 'digits-mlp-fit.onnx') },
  knn: { wrapper: 'js', file: path.join(MODELS_DIR, 'digits-knn.mjs') },
  forest: { wrapper: 'js', file: path.join(MODELS_DIR, 'digits-forest.mjs') },
  logreg: { wrapper: 'onnx', file: path.join(MODELS_DIR, 'ensemble', 'digits-logreg.onnx') },
};
const execFileAsync = promisify(execFile);
const STRAGGLER_SLO_MS = 20;
/** Roomy SLO for the accuracy phases: they measure what the policies learn, not latency. */
const ACCURACY_SLO_MS = 1_000;

export interface EnsembleBenchOptions {
  /** Passes over the FEEDBACK split for the exp4 app. */
  feedbackPasses: number;
  /** Query-then-feedback steps before (and after) the bad deploy in the Exp3 run. */
  recoverySteps: number;
  /** Rolling-accuracy window of the Exp3 run. */
  window: number;
  stragglerRate: number;
  stragglerS: number;
  /** Outcome records stored for the replay-rate measurement. */
  replayCopies: number;
}

interface Row { x: number[]; y: number }

interface PredictReply { output?: unknown; default?: boolean; missing_models?: string[]; confidence?: number }

const round = (v: number, digits = 4): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** The predicted class of a JSON answer (a probability vector), or -1 for a default/invalid one. */
function predictedClass(reply: PredictReply): number {
  if (reply.default || !Array.isArray(reply.output)) return -1;
  return argmax(reply.output as number[]);
}

export async function runEnsemble(opts: EnsembleBenchOptions): Promise<{ result: Record<string, unknown> }> {
  const digits = await loadDigits(path.join(MODELS_DIR, 'data', 'digits.csv.gz'));
  const splits = ensembleSplits(digits.labels);
  const rows = (idx: readonly number[]): Row[] => idx.map((i) => ({ x: Array.from(digits.pixels[i]!), y: digits.labels[i]! }));
  const feedbackRows = rows(splits.feedback);
  const testRows = rows(splits.test);

  const system: BenchSystem = await startSystem();
  const http = new JsonPoster(system.stack.ingressUrl, 16);
  const cleanup = cleanupOnce(async () => {
    http.close();
    await system.close();
  });
  const predict = async (app: string, x: number[]): Promise<PredictReply> => {
    const res = await http.post(`/${app}/predict`, JSON.stringify({ input: x }));
    if (res.status !== 200) throw new Error(`${app}: HTTP ${res.status} ${res.body}`);
    return JSON.parse(res.body) as PredictReply;
  };
  const feedback = async (app: string, r: Row, uid = '0'): Promise<void> => {
    const res = await http.post(`/${app}/update`, JSON.stringify({ uid, input: r.x, label: r.y }));
    if (res.status !== 200) throw new Error(`${app}: feedback HTTP ${res.status} ${res.body}`);
  };
  const addApp = (name: string, policy: string, models: string[], sloMs = ACCURACY_SLO_MS): Promise<unknown> =>
    system.admin.call('add_app', { name, input_type: 'floats', input_shape: [64], latency_slo_micros: sloMs * 1000, policy, default_output: '-1', candidate_model_names: models });
  const addModel = (name: string, wrapper: 'onnx' | 'js', file: string, version = '1'): Promise<unknown> =>
    system.admin.call('add_model', { model_name: name, model_version: version, input_type: 'floats', wrapper, model_data_path: file, batch_size: -1 });
  const waitForApp = async (app: string): Promise<void> => {
    const until = Date.now() + 60_000;
    for (;;) {
      const r = await predict(app, testRows[0]!.x).catch(() => ({ default: true }) as PredictReply);
      if (!r.default && !r.missing_models?.length) return;
      if (Date.now() > until) throw new Error(`${app} does not answer from its models`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  try {
    const names = Object.keys(MEMBERS);
    progress(`registering ${names.join(', ')} and their apps`);
    for (const [name, m] of Object.entries(MEMBERS)) await addModel(name, m.wrapper, m.file);
    for (const name of names) await addApp(`only-${name}`, 'single', [name]);
    await addApp('ens', 'exp4', names);
    for (const app of [...names.map((n) => `only-${n}`), 'ens']) await waitForApp(app);

    // ---- 1. ensemble ------------------------------------------------------------------------------
    const ack = new LatencyRecorder();
    progress(`exp4: ${opts.feedbackPasses} × ${feedbackRows.length} feedback observations`);
    for (let pass = 0; pass < opts.feedbackPasses; pass++) {
      await pool(feedbackRows, 4, async (r) => {
        const t0 = performance.now();
        await feedback('ens', r);
        ack.recordUs((performance.now() - t0) * 1000);
      });
    }
    await waitForApplied(system, 'ens', opts.feedbackPasses * feedbackRows.length);

    progress(`querying the ${testRows.length} held-out rows through each model alone and through exp4`);
    const errors: Record<string, number> = {};
    for (const app of [...names.map((n) => `only-${n}`), 'ens']) {
      let wrong = 0;
      await pool(testRows, 4, async (r) => {
        if (predictedClass(await predict(app, r.x)) !== r.y) wrong++;
      });
      errors[app] = wrong / testRows.length;
      progress(`${app}: error ${(100 * errors[app]!).toFixed(2)} % (${wrong}/${testRows.length})`);
    }
    const singles = names.map((n) => ({ name: n, error: errors[`only-${n}`]! })).sort((a, b) => a.error - b.error);
    const best = singles[0]!;
    const nextBest = singles[1]!;
    const exp4Error = errors['ens']!;
    const reduction = best.error > 0 ? (best.error - exp4Error) / best.error : 0;

    // ---- 2. exp3 recovery after a bad deploy -------------------------------------------------------
    progress(`exp3: ${2 * opts.recoverySteps} query-then-feedback steps; ${best.name} turns to garbage after ${opts.recoverySteps}`);
    await addApp('bandit', 'exp3', names);
    await waitForApp('bandit');
    const stream = shuffleInPlace([...feedbackRows, ...testRows], mulberry32(7));
    const correct: boolean[] = [];
    let recovery: number | undefined;
    const target = 1 - nextBest.error - 0.02;
    for (let step = 0; step < 2 * opts.recoverySteps; step++) {
      if (step === opts.recoverySteps) {
        await addModel(best.name, 'js', path.join(MODELS_DIR, 'garbage.mjs'), 'garbage');
        await system.admin.call('set_model_version', { model_name: best.name, model_version: 'garbage' });
        progress(`step ${step}: ${best.name} now answers garbage`);
      }
      const r = stream[step % stream.length]!;
      correct.push(predictedClass(await predict('bandit', r.x)) === r.y);
      await feedback('bandit', r);
      const since = step + 1 - opts.recoverySteps;
      if (recovery === undefined && since >= opts.window) {
        const recent = correct.slice(-opts.window).filter(Boolean).length / opts.window;
        if (recent >= target) recovery = since;
      }
      if ((step + 1) % 250 === 0) progress(`exp3: step ${step + 1}, rolling accuracy ${(100 * correct.slice(-opts.window).filter(Boolean).length / Math.min(opts.window, correct.length)).toFixed(1)} %`);
    }
    const accBefore = correct.slice(opts.recoverySteps - opts.window, opts.recoverySteps).filter(Boolean).length / opts.window;

    // ---- 3. stragglers ---------------------------------------------------------------------------
    progress(`stragglers: ${opts.stragglerRate}/s for ${opts.stragglerS} s, SLO ${STRAGGLER_SLO_MS} ms, anytime vs waiting for every model`);
    const stragglerModels = ['mlp', 'forest', 'logreg', 'slowknn'];
    await addModel('slowknn', 'js', path.join(MODELS_DIR, 'straggler-knn.mjs'));
    await addApp('anytime', 'exp4', stragglerModels, STRAGGLER_SLO_MS);
    await addApp('waitall', 'exp4', stragglerModels, 10_000);
    await waitForApp('anytime');
    await waitForApp('waitall');
    const straggle = async (app: string): Promise<{ p99_ms: number; accuracy: number; missing: number; answered: number }> => {
      const pick = mulberry32(11);
      let right = 0;
      let answered = 0;
      let missing = 0;
      const send = async (): Promise<Outcome> => {
        const r = testRows[Math.floor(pick() * testRows.length)]!;
        try {
          const reply = await predict(app, r.x);
          if (reply.default) return 'default';
          answered++;
          if (reply.missing_models?.length) missing++;
          if (predictedClass(reply) === r.y) right++;
          return 'ok';
        } catch {
          return 'error';
        }
      };
      const res = await runOpenLoop({ send, rate: opts.stragglerRate, durationS: opts.stragglerS, seed: 5, drainTimeoutMs: 30_000 });
      return { p99_ms: res.accepted_p99_ms, accuracy: answered > 0 ? right / answered : 0, missing, answered };
    };
    const anytime = await straggle('anytime');
    progress(`anytime: P99 ${anytime.p99_ms} ms, accuracy ${(100 * anytime.accuracy).toFixed(2)} %, ${anytime.missing} answers with a model missing`);
    const waitAll = await straggle('waitall');
    progress(`wait for all: P99 ${waitAll.p99_ms} ms, accuracy ${(100 * waitAll.accuracy).toFixed(2)} %`);

    // ---- 4. replay ---------------------------------------------------------------------------------
    await addApp('replayed', 'exp4', names);
    const replay = await measureReplay(system, 'ens', 'replayed', opts.replayCopies);

    const targets = { exp4_relative_reduction: 0.1, exp3_recovery_queries: 500, straggler_p99_ms: 22, straggler_accuracy_loss_pp: 1, replay_obs_per_s: 50_000 };
    const lossPp = round(100 * (waitAll.accuracy - anytime.accuracy), 2);
    const met = {
      exp4_relative_reduction: reduction >= targets.exp4_relative_reduction,
      exp3_recovery_queries: recovery !== undefined && recovery <= targets.exp3_recovery_queries,
      straggler_p99_ms: anytime.p99_ms <= targets.straggler_p99_ms,
      straggler_accuracy_loss_pp: lossPp <= targets.straggler_accuracy_loss_pp,
      replay_obs_per_s: replay.obs_per_s >= targets.replay_obs_per_s,
    };
    return {
      result: {
        bench: 'ensemble',
        best_single_error: round(best.error),
        best_single_model: best.name,
        single_errors: Object.fromEntries(singles.map((s) => [s.name, round(s.error)])),
        exp4_error: round(exp4Error),
        exp4_relative_reduction: round(reduction, 3),
        test_rows: testRows.length,
        feedback_observations: opts.feedbackPasses * feedbackRows.length,
        exp3_recovery_queries: recovery ?? null,
        exp3_accuracy_before_switch: round(accBefore, 3),
        exp3_recovery_target_accuracy: round(target, 3),
        straggler_p99_ms: anytime.p99_ms,
        wait_all_p99_ms: waitAll.p99_ms,
        straggler_accuracy: round(anytime.accuracy),
        wait_all_accuracy: round(waitAll.accuracy),
        straggler_accuracy_loss_pp: lossPp,
        straggler_answers_with_missing_model: anytime.missing,
        feedback_ack_p50_ms: ack.summary().p50_ms,
        feedback_ack_p99_ms: ack.summary().p99_ms,
        replay_obs_per_s: replay.obs_per_s,
        replayed: replay.replayed,
        replay_s: replay.seconds,
        slo_ms: STRAGGLER_SLO_MS,
        targets,
        met: { ...met, all: Object.values(met).every(Boolean) },
      },
    };
  } finally {
    await cleanup();
  }
}

/** Runs the `clipper` CLI against the bench's NATS and returns its last stdout line, parsed. */
async function clipperCli(system: BenchSystem, args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await execFileAsync(process.execPath, [path.join(DIST_ROOT, 'cli', 'clipper.js'), ...args, '--nats', system.stack.natsUrl], { maxBuffer: 64 << 20 });
  const text = stdout.trim();
  // `feedback stats` prints one indented JSON document; `feedback replay` ends with a JSON line.
  return JSON.parse(text.startsWith('{') && !text.includes('\n{') ? text : text.slice(text.lastIndexOf('\n{') + 1)) as Record<string, unknown>;
}

/** Waits until the policy shards have applied `count` observations of `app`. */
async function waitForApplied(system: BenchSystem, app: string, count: number, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const stats = await clipperCli(system, ['feedback', 'stats', '--app', app]);
    if (Number(stats.applied) >= count) return;
    if (Date.now() > until) throw new Error(`${app}: ${String(stats.applied)} of ${count} observations applied after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Replay rate: `copies` outcome records, made from the app's real ones (same model outputs and
 * labels, spread over 100 users), are stored for a fresh app with the same models and policy; then
 * `clipper feedback replay` rebuilds its state from them, as after a loss of every snapshot.
 */
async function measureReplay(system: BenchSystem, from: string, app: string, copies: number): Promise<{ replayed: number; obs_per_s: number; seconds: number }> {
  const nc = await connect({ servers: system.stack.natsUrl, noAsyncTraces: true });
  try {
    const subjects = new Subjects('clipper');
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const originals: OutcomeRecord[] = [];
    const consumer = await js.consumers.get(subjects.outcomeStream(), { filterSubjects: subjects.outcomes(undefined, from) });
    const total = await countMessages(jsm, subjects.outcomeStream(), subjects.outcomes(undefined, from));
    const iter = await consumer.consume();
    for await (const m of iter) {
      originals.push(outcomeRecordMessage.parse(decode(m.data)));
      if (originals.length >= total) break;
    }
    progress(`replay: storing ${copies} outcomes for ${app} (copies of ${from}'s ${originals.length})`);
    let pending: Promise<unknown>[] = [];
    for (let i = 0; i < copies; i++) {
      const o = originals[i % originals.length]!;
      const uid = String(i % 100);
      // the bench stack runs one policy shard
      pending.push(js.publish(subjects.outcome(app, 0), encode({ ...o, app, uid, feedback_seq: i + 1, ts_unix_ms: Date.now() } satisfies OutcomeRecord)));
      if (pending.length >= 1000) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
  } finally {
    await nc.close();
  }
  progress(`replay: clipper feedback replay --app ${app}`);
  const r = await clipperCli(system, ['feedback', 'replay', '--app', app]);
  return { replayed: Number(r.replayed), obs_per_s: Number(r.obs_per_s), seconds: Number(r.seconds) };
}
