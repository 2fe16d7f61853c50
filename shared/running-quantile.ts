/**
 * A running estimate of a quantile of what it observes, in ms, by stochastic approximation: up by
 * `stepMs`·q when a value is over the current estimate, down by `stepMs`·(1 − q) otherwise (each
 * scaled by the value's weight: 1/n for the n values of a batch), so that about a share 1 − q of the
 * values end up over it. Never below 0. The step sets how fast it follows a change, and it jitters
 * by about one step. With `startAtFirst` it starts at the first value instead of 0, and is undefined
 * before it, so that it need not climb from 0. Pure logic, unit-tested
 * (test/unit/running-quantile.test.ts).
 *
 * Kept by the scheduler (its lateness margin and the usual trip to it: scheduler.ts) and the ingress
 * (how soon a model answers: services/ingress/answer-times.ts).
 */
export class RunningQuantile {
  private value: number | undefined;
  private observed = 0;

  constructor(private readonly q: number, private readonly stepMs: number, opts: { startAtFirst?: boolean } = {}) {
    if (!(q > 0 && q < 1)) throw new RangeError(`q must be in (0, 1), got ${q}`);
    if (!(stepMs > 0)) throw new RangeError(`stepMs must be positive, got ${stepMs}`);
    if (!opts.startAtFirst) this.value = 0;
  }

  /** Current estimate, ms (≥ 0; 0 before any observation). */
  get ms(): number {
    return this.value ?? 0;
  }

  /** The estimate, or undefined while a `startAtFirst` one has seen nothing. */
  get known(): number | undefined {
    return this.value;
  }

  /** Finite values observed so far. */
  get count(): number {
    return this.observed;
  }

  /** One value, ms (the scheduler's lateness margin: how late a task finished against its prediction; negative: early). */
  observe(valueMs: number): void {
    this.move(valueMs, 1);
  }

  /**
   * The tasks of one batch, each weighing 1/n: a batch moves the estimate by at most one step. Tasks of
   * a batch are late together (one stall delays the whole batch and the queue behind it), so counted
   * one by one, a single 15 ms stall of a 30-task batch raised the margin by 14 ms; admission then
   * refused every task that found a queue, far under capacity, until ~400 on-time tasks brought it
   * down (measured: margin 11.8–13.1 ms at 1000–1500/s where the models serve 2000/s).
   */
  observeBatch(valuesMs: readonly number[]): void {
    const w = 1 / valuesMs.length;
    for (const v of valuesMs) this.move(v, w);
  }

  private move(valueMs: number, weight: number): void {
    if (!Number.isFinite(valueMs)) return;
    this.observed++;
    if (this.value === undefined) {
      this.value = Math.max(0, valueMs);
      return;
    }
    this.value = Math.max(0, this.value + weight * (valueMs > this.value ? this.stepMs * this.q : -this.stepMs * (1 - this.q)));
  }
}
