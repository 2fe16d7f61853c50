/**
 * Exp3 (Clipper §5.1; Auer et al. 2002): a bandit over the linked models. Each query asks ONE model,
 * drawn with probability p_i = (1 − γ)·softmax(log w)_i + γ/K; feedback on the drawn arm updates its
 * weight with the importance-weighted loss ℓ_i / p_i, an unbiased estimate of every arm's loss.
 *
 * Clipper's feedback can switch which model is best (a model degrades), and plain Exp3 forgets
 * slowly: an arm far behind needs the leader to lose as much as the gap. So the log-weights are kept
 * within `maxSpread` of the leader (a floor, as in fixed-share), which bounds how long a model that
 * becomes best needs to win back the lead. Log-weights are re-centred on the leader (max = 0).
 */
import type { Tensor } from '../../shared/tensor.js';
import { checkRegressionScale, predictionLoss } from './losses.js';
import { modelKey, type Combined, type CorrectionPolicy, type ExpectedOutputs, type ModelRef, type Observation, type PolicyContext } from './types.js';

/** Log-weights per model NAME (so new versions keep what was learned) and the number of updates. */
export interface LogWeightState {
  weights: Record<string, number>;
  n: number;
}

export type Exp3State = LogWeightState;

export interface Exp3Options {
  /** Exploration γ: the share of draws spread evenly over the models. */
  gamma?: number;
  /** Learning rate η of the log-weights. */
  eta?: number;
  /** Largest gap between the leader's log-weight and any other's. */
  maxSpread?: number;
  /** See LossOptions. */
  regressionScale?: number;
  /** How class-probability outputs are scored (LossOptions.classificationLoss; default zero-one). */
  classificationLoss?: 'zero-one' | 'probability';
}

/*
 * Defaults, tuned with the simulation in test/unit/exp3-policy.test.ts (4 arms, Bernoulli losses
 * 3/5/7/10%, the best arm turning to loss 1 after 2000 updates; goals: the best arm drawn > 60% of
 * the time while stable, the next best > 50% within 400 updates after the switch). About 80% of
 * seeds meet both (γ = η = 0.1, maxSpread = ln 50: about 65%); the misses are seeds where 3% and 5%,
 * or 5% and 7%, loss were not told apart in time, which bandit feedback cannot do reliably:
 * - γ = 0.05: each arm keeps ≥ γ/K of the draws (enough to notice a model getting better), while
 *   the leader can reach 1 − γ(1 − 1/K) ≈ 0.96 of them; γ = 0.1 cost about a point of accuracy
 *   after the switch (the broken model keeps γ/K of the draws) for no gain in recovery.
 * - η = 0.2: the leader's log-weight falls by η per update in expectation once its loss is 1, so it
 *   reaches the floor within ~maxSpread/η ≈ 35 updates (drawn < 10% after ≤ 47 in the simulation); smaller η separated 5% from 7% loss too slowly,
 *   larger η made the leader's share noisy when stable (losses of 3% vs 5% differ by η·0.02 per update).
 * - maxSpread = ln 1000: the floor costs the leader e^-maxSpread per trailing model (ln 50 gave 6%
 *   of the softmax mass to three models at the floor), while recovery only waits maxSpread/η.
 */
export const EXP3_DEFAULTS = { gamma: 0.05, eta: 0.2, maxSpread: Math.log(1000) } as const;

export class Exp3Policy implements CorrectionPolicy<Exp3State> {
  readonly name = 'exp3';
  readonly stateless = false;
  readonly gamma: number;
  readonly eta: number;
  readonly maxSpread: number;
  private readonly regressionScale: number;
  private readonly classificationLoss: 'zero-one' | 'probability';

  constructor(opts: Exp3Options = {}) {
    this.gamma = checkOption('gamma', opts.gamma ?? EXP3_DEFAULTS.gamma, 1);
    this.eta = checkOption('eta', opts.eta ?? EXP3_DEFAULTS.eta);
    this.maxSpread = checkOption('maxSpread', opts.maxSpread ?? EXP3_DEFAULTS.maxSpread, Infinity);
    this.regressionScale = checkRegressionScale(opts.regressionScale);
    this.classificationLoss = opts.classificationLoss ?? 'zero-one';
  }

  initialState(): Exp3State {
    return { weights: {}, n: 0 };
  }

  /** p_i for each of ctx.models, in link order. */
  probabilities(ctx: PolicyContext, state: Exp3State): number[] {
    const k = ctx.models.length;
    return softmax(contextLogWeights(ctx.models, state.weights)).map((s) => (1 - this.gamma) * s + this.gamma / k);
  }

  /** The one drawn model: each query costs one evaluation. */
  select(ctx: PolicyContext, state: Exp3State, rng: () => number): ModelRef[] {
    const drawn = sample(this.probabilities(ctx, state), rng);
    return drawn < 0 ? [] : [ctx.models[drawn]!];
  }

  /** The first selected model's output, else its expected output; no ensemble. */
  combine(_ctx: PolicyContext, _state: Exp3State, selected: readonly ModelRef[], outputs: ReadonlyMap<string, Tensor>, expected?: ExpectedOutputs): Combined | undefined {
    const chosen = selected[0];
    if (!chosen) return undefined;
    const key = modelKey(chosen);
    const output = outputs.get(key);
    if (output) return { output, models: [key], confidence: 1 };
    const substitute = expected?.(chosen);
    return substitute ? { output: substitute, models: [], missing: [key], confidence: 0 } : undefined;
  }

  /** One Exp3 step: draw an arm i ~ p, log w_i −= η·ℓ_i/p_i (ℓ_i = 1 when it did not answer). */
  update(ctx: PolicyContext, state: Exp3State, obs: Observation, rng: () => number): Exp3State {
    const p = this.probabilities(ctx, state);
    const i = sample(p, rng);
    if (i < 0) return state;
    const logw = contextLogWeights(ctx.models, state.weights);
    const arm = ctx.models[i]!;
    const loss = predictionLoss(obs.outputs.get(modelKey(arm)), obs.label, { regressionScale: this.regressionScale, classificationLoss: this.classificationLoss });
    logw[i]! -= (this.eta * loss) / p[i]!;
    ctx.models.forEach((m, j) => putWeight(state.weights, m.name, logw[j]!));
    boundSpread(state.weights, this.maxSpread);
    state.n += 1;
    return state;
  }
}

/**
 * The log-weights of `models`: a model not in `weights` yet starts at the mean of the known ones
 * (0 when none is known), so a newly linked model is neither favoured nor shut out.
 */
export function contextLogWeights(models: readonly ModelRef[], weights: Record<string, number>): number[] {
  const logw = new Array<number>(models.length);
  let sum = 0;
  let seen = 0;
  for (let i = 0; i < models.length; i++) {
    const w = readWeight(weights, models[i]!.name);
    if (w === undefined) {
      logw[i] = NaN;
    } else {
      logw[i] = w;
      sum += w;
      seen++;
    }
  }
  if (seen < models.length) {
    const start = seen > 0 ? sum / seen : 0;
    for (let i = 0; i < logw.length; i++) if (Number.isNaN(logw[i])) logw[i] = start;
  }
  return logw;
}

/** Raises every log-weight to at least max − maxSpread, then subtracts the max (in place; drops non-finite ones). */
export function boundSpread(weights: Record<string, number>, maxSpread: number): void {
  const names = Object.keys(weights);
  let top = -Infinity;
  for (const k of names) {
    const w = weights[k]!;
    if (!Number.isFinite(w)) delete weights[k];
    else if (w > top) top = w;
  }
  if (top === -Infinity) return;
  for (const k of names) if (Object.hasOwn(weights, k)) putWeight(weights, k, Math.max(weights[k]! - top, -maxSpread));
}

/** softmax of log-weights, computed from the max for stability. */
export function softmax(logw: readonly number[]): number[] {
  if (logw.length === 0) return [];
  const top = Math.max(...logw);
  const e = logw.map((x) => Math.exp(x - top));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / total);
}

/** An index drawn with probability p[i] using one rng() value; -1 when p is empty. */
export function sample(p: readonly number[], rng: () => number): number {
  let u = rng();
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i]! > 0)) continue;
    last = i;
    u -= p[i]!;
    if (u < 0) return i;
  }
  return last;
}

/** The own log-weight of `name` (model names may be any token, `__proto__` included). */
export function readWeight(weights: Record<string, number>, name: string): number | undefined {
  return Object.hasOwn(weights, name) && Number.isFinite(weights[name]) ? weights[name] : undefined;
}

/** Sets an own property even for names such as `__proto__`. */
export function putWeight(weights: Record<string, number>, name: string, value: number): void {
  if (name === '__proto__') Object.defineProperty(weights, name, { value, writable: true, enumerable: true, configurable: true });
  else weights[name] = value;
}

/** Throws unless 0 ≤ value ≤ max (a finite value unless max is Infinity); returns it. */
export function checkOption(what: string, value: number, max = Number.MAX_VALUE): number {
  if (!(value >= 0 && value <= max)) throw new RangeError(`${what} must be in [0, ${max}], got ${value}`);
  return value;
}
