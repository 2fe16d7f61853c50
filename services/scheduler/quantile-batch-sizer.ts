/**
 * Quantile-regression batch sizing (Clipper, NSDI'17 §4.3, the alternative to AIMD): estimate the
 * P99 latency of a batch as a line latency_q(size) = a + b·size and send the largest batch whose
 * estimate fits the budget. The line is fitted online by stochastic subgradient descent on the
 * pinball (check) loss for quantile q, whose minimiser is the conditional q-quantile.
 *
 * Scaling, so that one learning rate works for latencies from ~100 µs to ~100 ms: the step is
 * multiplied by a running mean of the observed latencies, and the gradient is taken in centred,
 * standardised size coordinates z = (size − mean) / sd (clipped to ±2), a diagonal preconditioner
 * that decouples the intercept from the slope, then mapped back to (a, b). Both stay ≥ 0.
 *
 * The pinball loss moves the line up fast (by q) and down slowly (by 1 − q), so an over-estimate
 * takes long to undo; the sizer is built to approach from below. The line starts flat through the
 * first observation, and during warm-up (the first 10 observations) only the intercept is fitted
 * while the size explores like AIMD (+1 after a full on-budget batch, halve after an over-budget
 * one). Afterwards batchSize() follows the line, but never beyond twice the largest batch seen to
 * meet the budget (a trust region against wild extrapolation), and a fraction `explore` of batches
 * is sent at half the fitted size so that the slope stays identified. The slope's step ramps up over
 * the 30 observations after warm-up (slopes from a few small batches are mostly noise), and no step
 * moves the prediction past the observation it came from (the proximal step of the pinball loss).
 */
import type { BatchSizer } from './batch-sizer.js';

export interface QuantileBatchSizerOptions {
  /** Latency a batch must fit in, µs (> 0). */
  budgetUs: number;
  /** Upper cap on the batch size (integer ≥ 1, default 256). */
  maxBatchSize?: number;
  /** The latency quantile that must fit the budget (in (0, 1), default 0.99). */
  quantile?: number;
  /** Base SGD step, relative to the latency scale (in (0, 1], default 0.02). */
  learningRate?: number;
  /** Batch size during the initial exploration (integer in [1, maxBatchSize], default 1). */
  initialBatchSize?: number;
  /** Fraction of batches (after warm-up) sent at half the fitted size to keep probing the slope ([0, 0.5], default 0.1). */
  explore?: number;
}

/** Observations before batchSize() follows the fitted line. */
export const QUANTILE_WARMUP = 10;

/** Standardised sizes are clipped to ±Z_CLIP so that a jump to a new size cannot blow up the slope. */
const Z_CLIP = 2;
/** Observations after warm-up over which the slope's step ramps from 0 to full. */
const SLOPE_RAMP = 30;

/** Clipper's quantile-regression batch sizer. */
export class QuantileBatchSizer implements BatchSizer {
  private budgetUs: number;
  private readonly maxBatchSize: number;
  private readonly q: number;
  private readonly lr: number;
  private readonly explore: number;
  private warmSize: number;
  private n = 0;
  // the fitted line
  private a = 0;
  private b = 0;
  // running scales: latency mean, size mean and variance
  private yScale = 0;
  private xMean = 0;
  private xVar = 0;
  /** Largest batch seen to meet the budget. */
  private largestOk = 0;

  constructor(opts: QuantileBatchSizerOptions) {
    checkBudget(opts.budgetUs);
    const max = opts.maxBatchSize ?? 256;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxBatchSize must be an integer ≥ 1, got ${max}`);
    const q = opts.quantile ?? 0.99;
    if (!(q > 0 && q < 1)) throw new RangeError(`quantile must be in (0, 1), got ${q}`);
    const lr = opts.learningRate ?? 0.02;
    if (!(lr > 0 && lr <= 1)) throw new RangeError(`learningRate must be in (0, 1], got ${lr}`);
    const initial = opts.initialBatchSize ?? 1;
    if (!Number.isInteger(initial) || initial < 1 || initial > max) {
      throw new RangeError(`initialBatchSize must be an integer in [1, ${max}], got ${initial}`);
    }
    const explore = opts.explore ?? 0.1;
    if (!(explore >= 0 && explore <= 0.5)) throw new RangeError(`explore must be in [0, 0.5], got ${explore}`);
    this.budgetUs = opts.budgetUs;
    this.maxBatchSize = max;
    this.q = q;
    this.lr = lr;
    this.warmSize = initial;
    this.explore = explore;
  }

  /** Observations so far. */
  get observations(): number {
    return this.n;
  }

  /** The fitted [a, b] of latency_q(size) = a + b·size, once past warm-up. */
  line(): [number, number] | undefined {
    return this.n >= QUANTILE_WARMUP ? [this.a, this.b] : undefined;
  }

  batchSize(): number {
    if (this.n < QUANTILE_WARMUP) return this.warmSize;
    const fitted = Math.min(this.largestFitting(), Math.max(1, Math.floor(2 * this.largestOk)));
    // Every 1/explore-th batch (by observation count) probes at half size.
    const probe = this.explore > 0 && Math.floor((this.n + 1) * this.explore) > Math.floor(this.n * this.explore);
    return probe ? Math.max(1, Math.floor(fitted / 2)) : fitted;
  }

  /** Explores from `size` (clamped to [1, maxBatchSize]) instead of the initial size, if nothing was observed yet. */
  startAt(size: number): void {
    if (this.n === 0 && Number.isFinite(size)) this.warmSize = Math.max(1, Math.min(this.maxBatchSize, Math.floor(size)));
  }

  /** Invalid observations (size < 1, latency negative or not finite) are ignored. */
  observe(size: number, latencyUs: number): void {
    if (!(Number.isFinite(size) && size >= 1 && Number.isFinite(latencyUs) && latencyUs >= 0)) return;
    if (this.n < QUANTILE_WARMUP) {
      if (latencyUs > this.budgetUs) this.warmSize = Math.max(1, Math.floor(this.warmSize / 2));
      else if (size >= this.warmSize) this.warmSize = Math.min(this.maxBatchSize, this.warmSize + 1);
    }
    if (latencyUs <= this.budgetUs) this.largestOk = Math.max(this.largestOk, size);
    if (this.n === 0) {
      this.a = latencyUs; // flat through the first point: optimistic, so the fit approaches from below
      this.b = 0;
    }
    this.n++;
    // Running scales: plain means while few observations, then exponentially weighted.
    const w = Math.max(1 / this.n, 0.05);
    this.yScale += w * (latencyUs - this.yScale);
    const dx = size - this.xMean;
    this.xMean += w * dx;
    this.xVar = (1 - w) * (this.xVar + w * dx * dx);
    this.step(size, latencyUs);
  }

  estimateLatencyUs(size: number): number | undefined {
    return this.n >= QUANTILE_WARMUP ? this.a + this.b * size : undefined;
  }

  setBudgetUs(budgetUs: number): void {
    checkBudget(budgetUs);
    this.budgetUs = budgetUs; // batchSize() follows the line, so it adapts at once
  }

  /** One subgradient step on the pinball loss ρ_q(y − (a + b·x)). */
  private step(x: number, y: number): void {
    const r = y - (this.a + this.b * x);
    // −∂ρ/∂prediction: move up by q when under-predicting, down by (1 − q) when over-predicting.
    const g = r > 0 ? this.q : r < 0 ? this.q - 1 : 0;
    if (g === 0) return;
    const eta = this.lr * Math.max(this.yScale, 1e-9);
    if (this.n <= QUANTILE_WARMUP) {
      // Warm-up sizes are small and climbing: fit the level only, a slope from them would overshoot.
      this.a = Math.max(0, this.a + Math.sign(g) * Math.min(eta * Math.abs(g), Math.abs(r)));
      return;
    }
    const sd = Math.max(Math.sqrt(this.xVar), 0.1 * Math.max(1, this.xMean));
    const zRaw = (x - this.xMean) / sd;
    const z = Math.max(-Z_CLIP, Math.min(Z_CLIP, zRaw));
    // Step in centred coordinates (c = a + b·mean, d = b·sd), mapped back to (a, b). It moves the
    // prediction at x by eta·g·(1 + z·zRaw); never move it past the observation (the implicit,
    // proximal step for the pinball loss), so that one outlier cannot throw the line beyond itself.
    const move = Math.abs(eta * g * (1 + z * zRaw));
    const k = move > Math.abs(r) ? Math.abs(r) / move : 1;
    const db = (Math.min(1, (this.n - QUANTILE_WARMUP) / SLOPE_RAMP) * k * eta * g * z) / sd;
    const da = k * eta * g - db * this.xMean;
    const a = this.a + da;
    const b = this.b + db;
    if (!Number.isFinite(a) || !Number.isFinite(b)) return;
    this.a = Math.max(0, a);
    this.b = Math.max(0, b);
  }

  /** The largest size in [1, maxBatchSize] with a + b·size ≤ budget (1 when even that does not fit). */
  private largestFitting(): number {
    if (this.b <= 0) return this.a <= this.budgetUs ? this.maxBatchSize : 1;
    const s = Math.floor((this.budgetUs - this.a) / this.b);
    if (!Number.isFinite(s)) return s > 0 ? this.maxBatchSize : 1;
    return Math.max(1, Math.min(this.maxBatchSize, s));
  }
}

function checkBudget(budgetUs: number): void {
  if (!(Number.isFinite(budgetUs) && budgetUs > 0)) throw new RangeError(`budgetUs must be a positive number, got ${budgetUs}`);
}
