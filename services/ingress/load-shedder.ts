/**
 * Load shedding at the edge. When an app's models refuse work (queue full), every query the ingress
 * still parses, validates and forwards costs CPU that the models' replicas need. The shedder keeps a
 * refusal probability per app, raised by each refusal and lowered by each answer (AIMD on the
 * admitted share), and refuses that share of new queries before their body is parsed.
 */
export interface LoadShedderOptions {
  /** Added to the shed probability on each refusal from downstream. */
  increase?: number;
  /** Subtracted on each answered query. */
  decrease?: number;
  /** Never shed more than this share. */
  maxShed?: number;
  /** Random source in [0, 1) (tests pass their own). */
  random?: () => number;
}

export class LoadShedder {
  private readonly shed = new Map<string, number>();
  private readonly increase: number;
  private readonly decrease: number;
  private readonly maxShed: number;
  private readonly random: () => number;

  constructor(opts: LoadShedderOptions = {}) {
    this.increase = opts.increase ?? 0.02;
    this.decrease = opts.decrease ?? 0.002;
    this.maxShed = opts.maxShed ?? 0.95;
    this.random = opts.random ?? Math.random;
  }

  /** True when this query should be refused at once. */
  shouldShed(app: string): boolean {
    const p = this.shed.get(app);
    return p !== undefined && this.random() < p;
  }

  /** The query was refused downstream because the model is overloaded. */
  refused(app: string): void {
    this.shed.set(app, Math.min(this.maxShed, (this.shed.get(app) ?? 0) + this.increase));
  }

  /** The query was answered. */
  answered(app: string): void {
    const p = this.shed.get(app);
    if (p === undefined) return;
    const next = p - this.decrease;
    if (next <= 1e-9) this.shed.delete(app);
    else this.shed.set(app, next);
  }

  /** Current shed probability of an app (0 when not overloaded). */
  probability(app: string): number {
    return this.shed.get(app) ?? 0;
  }
}
