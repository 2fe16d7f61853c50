/**
 * AIMD adaptive batching (Clipper, NSDI'17 §4.3): probe for the largest batch that still meets the
 * latency budget by additive increase while full batches fit, and back off multiplicatively (by
 * 10% by default) when one does not. Pure logic: the scheduler calls batchSize() before each
 * dispatch and observe() when a batch finishes.
 *
 * Latency estimates (estimateLatencyUs) come from an exponentially weighted least-squares fit of
 * latency ≈ a + b·size over recent batches (a: fixed per-batch overhead, b: per-task cost, both
 * kept ≥ 0); the AIMD sawtooth spreads the observed sizes enough for the fit to see the slope.
 */
import type { BatchSizer } from './batch-sizer.js';

export interface AimdBatchSizerOptions {
  /** Latency a batch must fit in, µs (> 0). */
  budgetUs: number;
  /** Upper cap on the batch size (integer ≥ 1, default 256). */
  maxBatchSize?: number;
  /** Starting batch size (integer in [1, maxBatchSize], default 1). */
  initialBatchSize?: number;
  /** Additive increase after a full batch that met the budget (integer ≥ 1, default 1). */
  additiveStep?: number;
  /** Multiplicative decrease factor after an over-budget batch (in (0, 1), default 0.9). */
  backoff?: number;
}

/**
 * Exponentially weighted least squares for y ≈ a + b·x with a, b ≥ 0. Each new observation
 * has weight 1 and older ones decay by `decay` per observation (an effective window of about
 * 1 / (1 − decay) batches).
 */
export class EwlsLine {
  private n = 0;
  private sw = 0;
  private sx = 0;
  private sy = 0;
  private sxx = 0;
  private sxy = 0;

  constructor(private readonly decay = 0.98) {}

  /** Observations seen so far (not decayed). */
  get count(): number {
    return this.n;
  }

  add(x: number, y: number): void {
    const d = this.decay;
    this.sw = d * this.sw + 1;
    this.sx = d * this.sx + x;
    this.sy = d * this.sy + y;
    this.sxx = d * this.sxx + x * x;
    this.sxy = d * this.sxy + x * y;
    this.n++;
  }

  /** The fitted [a, b] (both ≥ 0), or undefined before any observation. */
  fit(): [number, number] | undefined {
    if (this.n === 0 || this.sw <= 0) return undefined;
    const meanX = this.sx / this.sw;
    const meanY = this.sy / this.sw;
    const varX = this.sxx / this.sw - meanX * meanX;
    // Sizes all (nearly) equal: the slope is not identified; assume no fixed overhead.
    if (!(varX > 1e-9 * Math.max(1, meanX * meanX))) return meanX > 0 ? [0, meanY / meanX] : [meanY, 0];
    const b = (this.sxy / this.sw - meanX * meanY) / varX;
    const a = meanY - b * meanX;
    if (b < 0) return [Math.max(0, meanY), 0]; // latency falling with size: a flat line at the mean
    if (a < 0) return [0, this.sxx > 0 ? Math.max(0, this.sxy / this.sxx) : 0]; // through the origin
    return [a, b];
  }
}

/** Clipper's AIMD batch sizer (§4.3). */
export class AimdBatchSizer implements BatchSizer {
  private size: number;
  private budgetUs: number;
  private readonly maxBatchSize: number;
  private readonly additiveStep: number;
  private readonly backoff: number;
  private readonly line = new EwlsLine();

  constructor(opts: AimdBatchSizerOptions) {
    checkBudget(opts.budgetUs);
    const max = opts.maxBatchSize ?? 256;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxBatchSize must be an integer ≥ 1, got ${max}`);
    const initial = opts.initialBatchSize ?? 1;
    if (!Number.isInteger(initial) || initial < 1 || initial > max) {
      throw new RangeError(`initialBatchSize must be an integer in [1, ${max}], got ${initial}`);
    }
    const step = opts.additiveStep ?? 1;
    if (!Number.isInteger(step) || step < 1) throw new RangeError(`additiveStep must be an integer ≥ 1, got ${step}`);
    const backoff = opts.backoff ?? 0.9;
    if (!(backoff > 0 && backoff < 1)) throw new RangeError(`backoff must be in (0, 1), got ${backoff}`);
    this.budgetUs = opts.budgetUs;
    this.maxBatchSize = max;
    this.size = initial;
    this.additiveStep = step;
    this.backoff = backoff;
  }

  batchSize(): number {
    return this.size;
  }

  /** Starts from `size` (clamped to [1, maxBatchSize]) instead of the initial size, if no batch was observed yet. */
  startAt(size: number): void {
    if (this.line.count === 0 && Number.isFinite(size)) this.size = Math.max(1, Math.min(this.maxBatchSize, Math.floor(size)));
  }

  /**
   * Invalid observations (size < 1, latency negative or not finite) are ignored. An on-budget batch
   * grows the size only if it was full (size ≥ the current limit); an over-budget batch cuts the
   * size unless it was larger than the current limit, i.e. sent before an earlier cut took effect.
   */
  observe(size: number, latencyUs: number): void {
    if (!(Number.isFinite(size) && size >= 1 && Number.isFinite(latencyUs) && latencyUs >= 0)) return;
    this.line.add(size, latencyUs);
    if (latencyUs <= this.budgetUs) {
      if (size >= this.size) this.size = Math.min(this.maxBatchSize, this.size + this.additiveStep);
    } else if (size <= this.size) {
      this.size = Math.max(1, Math.floor(this.size * this.backoff));
    }
  }

  /** a + b·size from the weighted least-squares fit; undefined before 3 observations. */
  estimateLatencyUs(size: number): number | undefined {
    if (this.line.count < 3) return undefined;
    const fit = this.line.fit();
    return fit === undefined ? undefined : fit[0] + fit[1] * size;
  }

  /**
   * A new budget. When the estimate says the current size no longer fits, cut straight to the
   * largest size whose estimate fits (at least 1); otherwise (a looser budget, or no estimate yet)
   * AIMD finds the new limit by itself.
   */
  setBudgetUs(budgetUs: number): void {
    checkBudget(budgetUs);
    this.budgetUs = budgetUs;
    const est = this.estimateLatencyUs(this.size);
    if (est === undefined || est <= budgetUs) return;
    const [a, b] = this.line.fit()!;
    const fits = b > 0 ? Math.floor((budgetUs - a) / b) : 0;
    this.size = Math.max(1, Math.min(this.size, fits));
  }
}

function checkBudget(budgetUs: number): void {
  if (!(Number.isFinite(budgetUs) && budgetUs > 0)) throw new RangeError(`budgetUs must be a positive number, got ${budgetUs}`);
}
