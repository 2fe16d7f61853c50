/**
 * Finding the highest load a target sustains within a latency objective: open-loop steps at rising
 * rates (×1.5 while the step is good), then a bisection between the last good and the first bad
 * rate. A step is good when the P99 of model answers is within the SLO and at least 95 % of the
 * step's arrivals got a model answer (goodput ≥ 95 % of the offered rate). A short unrecorded
 * warm-up comes first, and the first bad step is run once more before it is believed: on a small,
 * busy machine one noisy tail would otherwise end the search early; a bad start rate also gets one
 * step above it before the search goes down (rateSearch). Several targets can be searched
 * side by side (findMaxRates), their steps taking turns.
 */
import { sleep } from '../shared/actor.js';
import { progress, stealMeter } from './harness.js';
import { runOpenLoop, type OpenLoopResult, type Send } from './open-loop.js';
import type { StepRequest } from './step-runner.js';

export interface SweepStep {
  rate_offered: number;
  goodput_qps: number;
  p50_ms: number;
  p99_ms: number;
  accepted_p99_ms: number;
  sent: number;
  ok: number;
  rejected: number;
  defaults: number;
  errors: number;
  timeouts: number;
  dropped: number;
  send_lag_p99_ms: number;
  /** CPU time the hypervisor gave to other machines during the step, % (null where unknown). */
  steal_pct?: number | null;
  /** Run again because of steal: neither the search nor the result uses it. */
  discarded?: boolean;
  good: boolean;
}

/** Where a target's steps run: here, with `send` for each query, or elsewhere (`runStep`: a generator process of its own, step-runner.ts). */
export type StepSource = { send: Send; runStep?: never } | { runStep: (step: StepRequest) => Promise<OpenLoopResult>; send?: never };

export type SweepOptions = SearchOptions & StepSource;

/** How a search goes, whatever runs its steps. */
export interface SearchOptions {
  sloMs: number;
  startRate: number;
  maxRate?: number;
  stepDurationS: number;
  /** Rate multiplier of the rising phase. */
  growth?: number;
  /** Bisection steps after the first bad rate. */
  bisectSteps?: number;
  /** Goodput must reach this fraction of the offered rate. */
  minGoodputFraction?: number;
  /** Pause between steps, so queues left by one step do not spill into the next. */
  pauseMs?: number;
  /** Unrecorded load at the start rate first (JIT, connections, batch sizers), seconds; 0 for none. */
  warmupS?: number;
  /** Times the rising phase re-runs a bad step before believing it (one noisy tail is not a limit). */
  retries?: number;
  /** Prefixes the progress lines, e.g. the target's name. */
  label?: string;
  /**
   * A step during which the hypervisor took more than this share of the machine's CPU (steal, %) is
   * run again, up to `stealRetries` times: its figures say more about the neighbours than about the
   * target (measured here: 25 % steal during a step turned the baseline's P99 from 9 ms into 1.5 s).
   * Default 1 (a 4 s step at 1 % steal on two cores lost 80 ms of CPU: enough, in one burst, to fail
   * a 20 ms P99); Infinity keeps every step.
   */
  maxStealPct?: number;
  stealRetries?: number;
  seed?: number;
  onStep?: (step: SweepStep, result: OpenLoopResult) => void;
  /**
   * Called when each of this target's steps (and its warm-up) is over, e.g. to close idle keep-alive
   * sockets: otherwise the server closes them on its idle timer in the middle of another target's step.
   */
  afterStep?: () => void;
}

export interface SweepResult {
  /** Best goodput of a good step (0 when no step was good). */
  max_qps: number;
  /** Offered rate of that step. */
  rate_at_max: number;
  p99_ms_at_max: number;
  steps: SweepStep[];
}

export function toStep(r: OpenLoopResult, sloMs: number, minGoodputFraction = 0.95): SweepStep {
  return {
    rate_offered: Math.round(r.rate_offered),
    goodput_qps: r.goodput_qps,
    p50_ms: r.latency.p50_ms,
    p99_ms: r.latency.p99_ms,
    accepted_p99_ms: r.accepted_p99_ms,
    sent: r.sent,
    ok: r.ok,
    rejected: r.rejected,
    defaults: r.defaults,
    errors: r.errors,
    timeouts: r.timeouts,
    dropped: r.dropped,
    send_lag_p99_ms: r.send_lag_p99_ms,
    // Against the arrivals of this step (not rate × duration), so Poisson noise does not decide.
    good: r.ok > 0 && r.latency.p99_ms <= sloMs && r.ok >= minGoodputFraction * (r.sent + r.dropped),
  };
}

export function describeStep(s: SweepStep, label?: string): string {
  const extra = [s.defaults && `defaults ${s.defaults}`, s.rejected && `rejected ${s.rejected}`, s.errors && `errors ${s.errors}`, s.dropped && `dropped ${s.dropped}`, (s.steal_pct ?? 0) >= 1 && `steal ${s.steal_pct}%`].filter(Boolean).join(', ');
  return `${label ? `${label}: ` : ''}rate ${s.rate_offered}/s: goodput ${Math.round(s.goodput_qps)}/s p50 ${s.p50_ms.toFixed(1)} ms p99 ${s.p99_ms.toFixed(1)} ms${extra ? ` (${extra})` : ''} ${s.good ? 'ok' : 'over'}`;
}

/**
 * The next rate to try after a long hold at `rate` that was not good (the overload bench's
 * capacity): 95 % of what it served, when that fell short, and at most 90 % of `rate` (a hold that
 * served enough failed on its P99).
 */
export function holdBelow(rate: number, servedQps: number): number {
  return Math.min(0.9 * rate, 0.95 * servedQps);
}

/**
 * The capacity from the overload bench's 1× holds: what the first good hold served (verified); with
 * none good, what the last (least loaded) hold served, unverified. (The most any hold served within
 * the SLO instead took the search's rate, which had refused 17 % of its queries: a rate past capacity,
 * and 2× that got 0.74 of it; the run of 22:58 on 2026-11-29.)
 */
export function capacityFromHolds(holds: readonly SweepStep[]): { qps: number; verified: boolean } {
  const good = holds.find((h) => h.good);
  return good ? { qps: good.goodput_qps, verified: true } : { qps: holds.at(-1)?.goodput_qps ?? 0, verified: false };
}

/** Steps (retries and the step up included) after which a search that found no good rate gives up. */
const MAX_STEPS_WITHOUT_GOOD = 5;

/**
 * The search itself, as a generator: it yields the next rate to run and is given that step's result;
 * it returns when the limit is found. Rising phase: ×growth while good, a bad step run once more
 * before it is believed, then bisection between the last good and the first bad rate. If the very
 * first rate is bad, the next one up is tried once before halving until a rate is good: latency need
 * not grow with load at the bottom, where idle processes wake slowly (measured on a 2-core VM: the
 * full path's P99 was 20–28 ms at 200 queries/s and 15–19 ms at 300–675/s in the same run).
 */
export function* rateSearch(opts: SearchOptions): Generator<number, void, SweepStep> {
  const growth = opts.growth ?? 1.5;
  const bisectSteps = opts.bisectSteps ?? 3;
  const maxRate = opts.maxRate ?? Infinity;
  const startRate = Math.min(opts.startRate, maxRate);
  let rate = startRate;
  let good: number | undefined;
  let bad: number | undefined;
  let retries = opts.retries ?? 1;
  let probedUp = false;
  let steps = 0;
  for (;;) {
    const s: SweepStep = yield rate;
    steps++;
    if (!s.good && bad === undefined && retries > 0) {
      retries--;
      continue;
    }
    if (s.good) {
      // Good one step over a bad start: that was the bottom's slowness, not a limit; the first bad
      // step of the rise gets its second run after all.
      if (good === undefined && probedUp && rate > startRate) retries = opts.retries ?? 1;
      good = rate;
      if (bad !== undefined || rate >= maxRate) break;
      rate = Math.min(Math.round(rate * growth), maxRate);
    } else if (good === undefined && !probedUp && rate < maxRate) {
      // The start rate is bad: one step up before believing that the limit is below it.
      probedUp = true;
      rate = Math.min(Math.round(rate * growth), maxRate);
    } else {
      bad = good === undefined ? Math.min(rate, startRate) : rate;
      if (good !== undefined || bad <= 1 || steps >= MAX_STEPS_WITHOUT_GOOD) break;
      rate = Math.max(1, Math.round(bad / 2));
    }
  }
  if (good === undefined || bad === undefined) return;
  let lo = good;
  let hi = bad;
  for (let i = 0; i < bisectSteps && hi / lo > 1.04; i++) {
    const mid = Math.round((lo + hi) / 2);
    if ((yield mid).good) lo = mid;
    else hi = mid;
  }
}

function stepOf(opts: StepSource, step: StepRequest): Promise<OpenLoopResult> {
  return opts.runStep ? opts.runStep(step) : runOpenLoop({ send: opts.send, ...step });
}

function bestOf(steps: SweepStep[]): SweepResult {
  let best: SweepStep | undefined;
  for (const s of steps) if (s.good && !s.discarded && (!best || s.goodput_qps > best.goodput_qps)) best = s;
  return { max_qps: best?.goodput_qps ?? 0, rate_at_max: best?.rate_offered ?? 0, p99_ms_at_max: best?.p99_ms ?? 0, steps };
}

/** The highest rate one target sustains within the SLO. */
export async function findMaxRate(opts: SweepOptions): Promise<SweepResult> {
  const [result] = await findMaxRates([opts]);
  return result!;
}

/**
 * Several targets searched side by side: their steps take turns (one step of each target per round),
 * so a slow spell of a shared, noisy machine falls on all of them alike instead of on whichever
 * target happened to be measured then. Results in the order of `searches`.
 */
export async function findMaxRates(searches: readonly SweepOptions[]): Promise<SweepResult[]> {
  const state = searches.map((opts) => ({ opts, search: rateSearch(opts), steps: [] as SweepStep[], seed: opts.seed ?? 1, next: undefined as IteratorResult<number, void> | undefined }));
  let ran = 0;
  const run = async (st: (typeof state)[number], rate: number): Promise<SweepStep> => {
    const { opts } = st;
    if (ran++ > 0) await sleep(opts.pauseMs ?? 1_000);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(opts.pauseMs ?? 1_000);
      const steal = stealMeter();
      const result = await stepOf(opts, { rate, durationS: opts.stepDurationS, seed: st.seed++, drainTimeoutMs: Math.max(5_000, opts.sloMs * 10) });
      opts.afterStep?.();
      const step: SweepStep = { ...toStep(result, opts.sloMs, opts.minGoodputFraction ?? 0.95), steal_pct: steal() };
      st.steps.push(step);
      if ((step.steal_pct ?? 0) > (opts.maxStealPct ?? 1) && attempt < (opts.stealRetries ?? 3)) {
        step.discarded = true;
        progress(`${describeStep(step, opts.label)}: steal over ${opts.maxStealPct ?? 1}%, running it again`);
        continue;
      }
      progress(describeStep(step, opts.label));
      opts.onStep?.(step, result);
      return step;
    }
  };
  for (const st of state) {
    const { opts } = st;
    const warmupS = opts.warmupS ?? Math.min(3, opts.stepDurationS);
    if (warmupS <= 0) continue;
    const rate = Math.min(opts.startRate, opts.maxRate ?? Infinity);
    const w = toStep(await stepOf(opts, { rate, durationS: warmupS, seed: 999, drainTimeoutMs: Math.max(5_000, opts.sloMs * 10) }), opts.sloMs, opts.minGoodputFraction ?? 0.95);
    opts.afterStep?.();
    progress(`${describeStep(w, opts.label)} (warm-up, not counted)`);
  }
  for (const st of state) st.next = st.search.next();
  for (;;) {
    const active = state.filter((st) => st.next && !st.next.done);
    if (active.length === 0) break;
    for (const st of active) {
      const rate = st.next!.value as number;
      const step = await run(st, rate);
      st.next = st.search.next(step);
      if (!step.good && st.next.value === rate) progress(`${st.opts.label ? `${st.opts.label}: ` : ''}rate ${rate}/s over the limit; trying it once more`);
    }
  }
  return state.map((st) => bestOf(st.steps));
}
