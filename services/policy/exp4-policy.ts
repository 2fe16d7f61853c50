/**
 * Exp4 (Clipper §5.2; Auer et al. 2002) with the models as experts: every linked model is asked,
 * their outputs are combined by softmax(log w), and since every model answered the feedback gives
 * full information: each model's log-weight falls by η times its own loss (exponentiated weights,
 * no importance weighting needed). Graceful degradation drops the lowest-weight models first.
 *
 * As in Exp3, log-weights stay within `maxSpread` of the leader so that a model that becomes the best
 * regains the lead in a bounded number of updates, and are re-centred on the leader.
 */
import type { Tensor } from '../../shared/tensor.js';
import { combineOutputs } from './combine.js';
import { boundSpread, checkOption, contextLogWeights, putWeight, type LogWeightState } from './exp3-policy.js';
import { checkRegressionScale, predictionLoss } from './losses.js';
import { modelKey, type Combined, type CorrectionPolicy, type ExpectedOutputs, type ModelRef, type Observation, type PolicyContext } from './types.js';

export type Exp4State = LogWeightState;

export interface Exp4Options {
  /** Learning rate η of the log-weights. */
  eta?: number;
  /** Largest gap between the leader's log-weight and any other's. */
  maxSpread?: number;
  /** See LossOptions and CombineOptions. */
  regressionScale?: number;
  /** How class-probability outputs are scored (LossOptions.classificationLoss; default zero-one). */
  classificationLoss?: 'zero-one' | 'probability';
}

/*
 * Defaults: with full information the gap between two models drifts by η·(ℓ_j − ℓ_i) per update.
 * η = 0.1 (close to Hedge's √(8 ln K / T) for K = 4 models and a few hundred observations) lets
 * the weights follow accuracy without collapsing onto the leader at once: the ensemble keeps the
 * other models' votes for the inputs where the leader is unsure, which is where an ensemble beats
 * its best member (on the digits bench: 2-3 held-out errors against the best model's 4, with
 * η = 0.5 the ensemble was the best model alone). A model whose loss turns to 1 still falls behind
 * by 0.1 per update: below a tenth of the leader's weight within ~25 updates, at the floor after
 * maxSpread/η ≈ 70. maxSpread = ln 1000 lets a clearly worse model fall to 0.1 % of the ensemble.
 */
export const EXP4_DEFAULTS = { eta: 0.1, maxSpread: Math.log(1000) } as const;

export class Exp4Policy implements CorrectionPolicy<Exp4State> {
  readonly name = 'exp4';
  readonly stateless = false;
  readonly eta: number;
  readonly maxSpread: number;
  private readonly regressionScale: number;
  private readonly classificationLoss: 'zero-one' | 'probability';

  constructor(opts: Exp4Options = {}) {
    this.eta = checkOption('eta', opts.eta ?? EXP4_DEFAULTS.eta);
    this.maxSpread = checkOption('maxSpread', opts.maxSpread ?? EXP4_DEFAULTS.maxSpread, Infinity);
    this.regressionScale = checkRegressionScale(opts.regressionScale);
    this.classificationLoss = opts.classificationLoss ?? 'zero-one';
  }

  initialState(): Exp4State {
    return { weights: {}, n: 0 };
  }

  /** The ensemble weight softmax(log w) of each of `models`, in their order. */
  weightsOf(models: readonly ModelRef[], state: Exp4State): number[] {
    const logw = contextLogWeights(models, state.weights);
    const top = Math.max(...logw);
    const e = logw.map((x) => Math.exp(x - top));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / total);
  }

  /** All linked models, heaviest first (ties in link order). */
  select(ctx: PolicyContext, state: Exp4State): ModelRef[] {
    const logw = contextLogWeights(ctx.models, state.weights);
    return ctx.models.map((_, i) => i).sort((a, b) => logw[b]! - logw[a]! || a - b).map((i) => ctx.models[i]!);
  }

  /** The weighted ensemble of the selected models' outputs, expected outputs standing in for the missing. */
  combine(_ctx: PolicyContext, state: Exp4State, selected: readonly ModelRef[], outputs: ReadonlyMap<string, Tensor>, expected?: ExpectedOutputs): Combined | undefined {
    return combineOutputs(selected, this.weightsOf(selected, state), outputs, expected, { regressionScale: this.regressionScale });
  }

  /** log w_i −= η·ℓ_i for every model that answered; models that did not are left as they are. */
  update(ctx: PolicyContext, state: Exp4State, obs: Observation, _rng?: () => number): Exp4State {
    const logw = contextLogWeights(ctx.models, state.weights);
    ctx.models.forEach((m, i) => {
      const output = obs.outputs.get(modelKey(m));
      const loss = output ? predictionLoss(output, obs.label, { regressionScale: this.regressionScale, classificationLoss: this.classificationLoss }) : 0;
      putWeight(state.weights, m.name, logw[i]! - this.eta * loss);
    });
    boundSpread(state.weights, this.maxSpread);
    state.n += 1;
    return state;
  }
}
