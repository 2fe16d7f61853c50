/**
 * Load shedding at the edge. When an app's models refuse work (queue full), every query the ingress
 * still parses, validates and forwards costs CPU that the models' replicas need. The shedder keeps a
 * refusal probability per app, raised by each refusal and lowered by each answer (AIMD on the
 * admitted share), and refuses that share of new queries before their body is parsed. The share
 * also halves every `halfLifeMs` by itself, so a quiet app recovers even when few queries get through.
 */
export interface LoadShedderOptions {
  /** Added to the shed probability on each refusal from downstream. */
  increase?: number;
  /** Subtracted on each answered query. */
  decrease?: number;
  /** Never shed more than this share. */
  maxShed?: number;
  /** The share halves after this long without new refusals. */
  halfLifeMs?: number;
  /** Random source in [0, 1) and clock (tests pass their own). */
  random?: () => number;
  now?: () => number;
}

interface Share {
  p: number;
  atMs: number;
}

export class LoadShedder {
  private readonly shares = new Map<string, Share>();
  private readonly increase: number;
  private readonly decrease: number;
  private readonly maxShed: number;
  private readonly halfLifeMs: number;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(opts: LoadShedderOptions = {}) {
    this.increase = opts.increase ?? 0.02;
    this.decrease = opts.decrease ?? 0.002;
    this.maxShed = opts.maxShed ?? 0.95;
    this.halfLifeMs = opts.halfLifeMs ?? 500;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  /** Current shed probability of an app (0 when not overloaded). */
  probability(app: string): number {
    const s = this.shares.get(app);
    if (!s) return 0;
    const p = s.p * 0.5 ** ((this.now() - s.atMs) / this.halfLifeMs);
    return p < 1e-3 ? 0 : p;
  }

  /** True when this query should be refused at once. */
  shouldShed(app: string): boolean {
    const p = this.probability(app);
    return p > 0 && this.random() < p;
  }

  /** The query was refused downstream because the model is overloaded. */
  refused(app: string): void {
    this.set(app, Math.min(this.maxShed, this.probability(app) + this.increase));
  }

  /** The query was answered. */
  answered(app: string): void {
    if (this.shares.has(app)) this.set(app, this.probability(app) - this.decrease);
  }

  private set(app: string, p: number): void {
    if (p <= 1e-3) this.shares.delete(app);
    else this.shares.set(app, { p, atMs: this.now() });
  }
}
