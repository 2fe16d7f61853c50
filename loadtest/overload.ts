/**
 * `npm run bench -- overload`: behaviour past capacity. The `aimd` app of the batching bench (MLP
 * 784-2048-2048-10, adaptive batching, 20 ms SLO), or with `--model sim` an app of the simulated
 * accelerator (5 ms per batch spent waiting, not computing; `batch_size` 1; 20 ms SLO), whose
 * overload is the model's and not the CPU's: find its capacity, the highest rate it sustains
 * for 20 s with P99 within the SLO (a search in 4 s steps, then 20 s holds at 1× from the search's
 * best rate down until one is good: `capacity_holds`, `sustained_1x_qps`), then offer twice that for
 * 20 s, open loop. A system that degrades gracefully keeps its goodput near capacity and answers
 * everything else quickly, refused (retryable 429/503) or with the default output at the deadline,
 * instead of letting queues and latencies grow without bound. The hold's and the overload's requests
 * carry `X-Request-Start` (their scheduled send time), so the time a request waits in front of the
 * ingress counts against its SLO (`--no-stamp-start`: it does not).
 */
import { ensureBenchModel } from '../infra/build-bench-model.js';
import { sleep } from '../shared/actor.js';
import { schedPolicyInEffect } from '../shared/process.js';
import { AIMD_DELAY_MS, BATCHING_SLO_MS, deployMlpApp, mlpPayloads } from './batching.js';
import { cleanupOnce, loadBeforeBench, machineSpeed, progress, schedulerStats, startSystem, waitForApp, type BenchSystem } from './harness.js';
import { httpSender, runOpenLoop, type OpenLoopResult, type Send } from './open-loop.js';
import type { PlotSpec } from './plot.js';
import { round1, round2 } from './round.js';
import { addSimApp, addSimModel, SIM_BODY } from './sim-app.js';
import { capacityFromHolds, describeStep, findMaxRate, holdBelow, toStep, type SweepResult, type SweepStep } from './sweep.js';

/** The overloaded app: the MLP with adaptive batching (the CPU is what runs short), or the simulated accelerator. */
export const OVERLOAD_MODELS = ['mlp', 'sim'] as const;
export type OverloadModel = (typeof OVERLOAD_MODELS)[number];

/** The simulated accelerator's time per batch, ms. */
const SIM_BATCH_MS = 5;

export interface OverloadOptions {
  model: OverloadModel;
  stepS: number;
  startRate: number;
  /** Offered load as a multiple of the measured capacity. */
  factor: number;
  overloadS: number;
  sockets: number;
  /** Capacity to take as given instead of searching for it (comparing settings at one load). */
  capacity?: number;
  /** Stamp the overload's requests with X-Request-Start (their scheduled send time); the capacity search never does. */
  stampStart: boolean;
}

/** Holds at 1× before the capacity is taken as it stands (the search's rate and up to three lower ones). */
const MAX_HOLDS = 4;

/** Shows a run's model answers second by second: does a slow spell, or the jump to 2×, cost goodput? */
const progressPerSecond = (label: string, r: OpenLoopResult): void => progress(`${label}, model answers per second: ${r.per_second.map((c) => c.ok).join(' ')}`);

/** Holds `rate` (1×) for `durationS`, then lower rates (holdBelow) until a hold is good, `tries` holds at most. */
async function holdCapacity(send: Send, rate: number, durationS: number, sloMs: number, tries: number): Promise<{ holds: SweepStep[]; last: OpenLoopResult }> {
  const holds: SweepStep[] = [];
  for (let i = 1; ; i++) {
    progress(`holding ${Math.round(rate)}/s (1×) for ${durationS} s${tries > 1 ? `, hold ${i} of at most ${tries}` : ''}`);
    const held = await runOpenLoop({ send, rate, durationS, seed: 999 - i, drainTimeoutMs: 30_000 });
    const step = toStep(held, sloMs);
    holds.push(step);
    progress(describeStep(step, '1× held'));
    progressPerSecond('1× held', held);
    if (step.good || i >= tries) return { holds, last: held };
    rate = holdBelow(rate, held.goodput_qps);
    await sleep(1_000);
  }
}

/** A default answer's explanation without what differs from query to query (its id, times). */
const causeOf = (explanation: string): string => explanation.replace(/query \S+ /g, 'query … ').replace(/\d+(\.\d+)? ms/g, 'N ms');

const SCHEDULER_COUNTERS = ['tasks', 'batches', 'expired', 'rejected', 'requeued'] as const;

/** The scheduler's counters (and refusals by cause) between two of its stats, or null without both. */
function schedulerDelta(before: Record<string, unknown> | undefined, after: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (!before || !after) return null;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const diff = (a: Record<string, unknown>, b: Record<string, unknown>, keys: readonly string[]): Record<string, number> =>
    Object.fromEntries(keys.map((k) => [k, num(a[k]) - num(b[k])]));
  const byCause = (s: Record<string, unknown>): Record<string, unknown> => (s.rejected_by && typeof s.rejected_by === 'object' ? s.rejected_by as Record<string, unknown> : {});
  const [causesAfter, causesBefore] = [byCause(after), byCause(before)];
  return { ...diff(after, before, SCHEDULER_COUNTERS), rejected_by: diff(causesAfter, causesBefore, Object.keys(causesAfter)) };
}

/** What the bench overloads: the app, its model, a query's body, and how to start and deploy it. */
interface Workload {
  app: string;
  model: string;
  body: string;
  /** The model, in words, for the result. */
  description: string;
  /** Measures the machine's speed where that means anything for the model (the MLP's batch of 1). */
  speed?: Awaited<ReturnType<typeof machineSpeed>>;
  env: Record<string, string>;
  deploy(system: BenchSystem): Promise<void>;
}

async function workloadOf(model: OverloadModel): Promise<Workload> {
  if (model === 'sim') {
    return {
      app: 'sim', model: 'sim', body: SIM_BODY,
      description: `simulated accelerator, ${SIM_BATCH_MS} ms per batch, batch_size 1`,
      env: { SIM_BATCH_MS: String(SIM_BATCH_MS) },
      deploy: async (system) => {
        await addSimModel(system.admin, 'sim', 1);
        await addSimApp(system.admin, 'sim', 'sim', BATCHING_SLO_MS);
      },
    };
  }
  const modelFile = await ensureBenchModel();
  return {
    app: 'aimd', model: 'mlp', body: mlpPayloads().body,
    description: `MLP 784-2048-2048-10 (ONNX), adaptive batching, ${AIMD_DELAY_MS} ms batching delay`,
    speed: await machineSpeed(modelFile),
    env: {},
    deploy: (system) => deployMlpApp(system, modelFile, 'aimd', 'mlp', -1),
  };
}

export async function runOverload(opts: OverloadOptions): Promise<{ result: Record<string, unknown>; plot: PlotSpec }> {
  const loadAvg = loadBeforeBench();
  const work = await workloadOf(opts.model);
  const { body } = work;
  const sloMs = BATCHING_SLO_MS;
  let system: BenchSystem | undefined;
  let send: ReturnType<typeof httpSender> | undefined;
  const cleanup = cleanupOnce(async () => {
    send?.close();
    await system?.close();
  });
  try {
    system = await startSystem(work.env);
    await work.deploy(system);
    progress('waiting for the model to load');
    await waitForApp(system, work.app, body);
    send = httpSender(system.stack.ingressUrl, `/${work.app}/predict`, body, { agentSockets: opts.sockets });

    let sweep: SweepResult = { max_qps: opts.capacity ?? 0, rate_at_max: opts.capacity ?? 0, p99_ms_at_max: 0, steps: [] };
    if (opts.capacity === undefined) {
      progress(`finding capacity: highest rate with P99 ≤ ${sloMs} ms`);
      sweep = await findMaxRate({ send, sloMs, startRate: opts.startRate, stepDurationS: opts.stepS, label: 'capacity' });
    } else {
      // The search warms the system up (the batch sizer's limit, the latency estimates, the JIT); a
      // given capacity gets one step at that rate instead, not recorded. Without it the overload began
      // cold: about half the offered rate taken for its first ~5 s (measured at --capacity 2200).
      progress(`warming up: ${opts.capacity}/s for ${opts.stepS} s (not recorded)`);
      const warm = await runOpenLoop({ send, rate: opts.capacity, durationS: opts.stepS, seed: 999, drainTimeoutMs: 30_000 });
      progress(describeStep(toStep(warm, sloMs), 'warm-up'));
      progressPerSecond('warm-up', warm);
    }
    if (sweep.max_qps <= 0) throw new Error('no rate met the SLO; capacity unknown');
    // The search's requests are not stamped, as the batching bench's are not; the holds' and the
    // overload's carry X-Request-Start, as a load balancer would stamp them, so the ingress refuses
    // what waited too long in front of it.
    send.stampStart = opts.stampStart;
    // The search keeps its best 4 s step, which a longer run at that rate need not sustain (on two
    // shared vCPUs, 1× held for 20 s got 0.87–0.94 of it). The capacity is the rate sustained for as
    // long as the overload lasts, stamped alike: hold the search's rate; if that hold is not good (P99
    // over the SLO or goodput under 95 % of the offered rate), hold a lower one (holdBelow); the
    // capacity is then what the first good hold served (capacityFromHolds). A given capacity is held
    // once, as given.
    const { holds, last: held } = await holdCapacity(send, sweep.max_qps, opts.overloadS, sloMs, opts.capacity === undefined ? MAX_HOLDS : 1);
    const found = capacityFromHolds(holds);
    const verified = opts.capacity === undefined && found.verified;
    const capacity = opts.capacity ?? found.qps;
    const offered = Math.round(capacity * opts.factor);
    progress(`offering ${offered}/s (${opts.factor}×) for ${opts.overloadS} s`);
    // Why the overload's default answers came (none, if overload is all answered by refusals).
    const defaultCauses = new Map<string, number>();
    send.onDefault = (why) => {
      const cause = causeOf(why);
      defaultCauses.set(cause, (defaultCauses.get(cause) ?? 0) + 1);
    };
    const schedulerBefore = await schedulerStats(system, work.model);
    const r = await runOpenLoop({ send, rate: offered, durationS: opts.overloadS, seed: 1000, drainTimeoutMs: 30_000 });
    const step = toStep(r, sloMs);
    progress(describeStep(step, 'overload'));
    progressPerSecond('overload', r);

    const timedOut = r.defaults + r.timeouts;
    // The issue's targets: goodput ≥ 0.9 × capacity, accepted P99 ≤ 1.2 × SLO, nothing timed out.
    const targets = { goodput_fraction_of_capacity: 0.9, accepted_p99_ms: 1.2 * sloMs, timed_out: 0 };
    // Checked on the exact fraction; the result shows it to two decimals.
    const goodputFraction = r.goodput_qps / capacity;
    const met = {
      goodput_fraction_of_capacity: goodputFraction >= targets.goodput_fraction_of_capacity,
      accepted_p99_ms: r.accepted_p99_ms <= targets.accepted_p99_ms,
      timed_out: timedOut <= targets.timed_out,
    };
    const scheduler = schedulerDelta(schedulerBefore, await schedulerStats(system, work.model));
    const result: Record<string, unknown> = {
      bench: 'overload',
      model: work.description,
      capacity_qps: round1(capacity),
      capacity_given: opts.capacity !== undefined,
      capacity_verified: verified,
      capacity_search_qps: opts.capacity === undefined ? round1(sweep.max_qps) : null,
      stamp_start: opts.stampStart,
      capacity_p99_ms: opts.capacity === undefined ? sweep.p99_ms_at_max : null,
      offered_qps: offered,
      duration_s: opts.overloadS,
      goodput_qps: r.goodput_qps,
      goodput_fraction_of_capacity: round2(goodputFraction),
      sustained_1x_qps: held.goodput_qps,
      sustained_1x_p99_ms: held.latency.p99_ms,
      sustained_1x_timed_out: held.defaults + held.timeouts,
      goodput_fraction_of_sustained: held.goodput_qps > 0 ? round2(r.goodput_qps / held.goodput_qps) : null,
      // Each 20 s hold at 1×: the search's rate first, then lower ones until one was good.
      capacity_holds: holds,
      accepted_p99_ms: r.accepted_p99_ms,
      ok_p50_ms: r.latency.p50_ms,
      ok_p99_ms: r.latency.p99_ms,
      sent: r.sent,
      ok: r.ok,
      rejected: r.rejected,
      timed_out: timedOut,
      defaults: r.defaults,
      default_causes: Object.fromEntries([...defaultCauses].sort((a, b) => b[1] - a[1])),
      client_timeouts: r.timeouts,
      errors: r.errors - r.timeouts,
      dropped_by_generator: r.dropped,
      max_outstanding: r.max_outstanding,
      send_lag_p99_ms: r.send_lag_p99_ms,
      slo_ms: sloMs,
      aimd_delay_ms: opts.model === 'mlp' ? AIMD_DELAY_MS : null,
      load_avg_1m_at_start: loadAvg,
      sched_policy: schedPolicyInEffect(),
      targets,
      met: { ...met, all: Object.values(met).every(Boolean) },
      // What the model's scheduler did during the overload: the tasks it took and the refusals by cause.
      scheduler,
      capacity_steps: sweep.steps,
      // Second by second: does the overload lose goodput at the jump from capacity, or all along?
      per_second: {
        ok: r.per_second.map((c) => c.ok),
        rejected: r.per_second.map((c) => c.rejected),
        defaults: r.per_second.map((c) => c.defaults),
        errors: r.per_second.map((c) => c.errors),
        held_1x_ok: held.per_second.map((c) => c.ok),
      },
    };
    const plot: PlotSpec = {
      title: `Overload: ${work.app} app at ${opts.factor}× capacity, P99 SLO ${sloMs} ms`,
      sloMs,
      series: [
        ...(sweep.steps.length > 0 ? [{ name: 'capacity sweep', steps: sweep.steps }] : []),
        { name: `1× held (${opts.overloadS} s)`, steps: holds },
        { name: `${opts.factor}× capacity (${opts.overloadS} s)`, steps: [step] },
      ],
    };
    result.model_batch1_ms = work.speed ? await work.speed.atEnd() : null;
    return { result, plot };
  } finally {
    await cleanup();
  }
}
