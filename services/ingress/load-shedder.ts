/**
 * Load shedding at the edge. When an app's models refuse work (queue full), every query the ingress
 * still parses, validates and forwards costs CPU that the models' replicas need. The shedder refuses
 * a share p of an app's new queries before their body is parsed, and sets p once per window from what
 * happened to the queries it let through: if a share f of them was refused downstream, the models took
 * (1 − f)(1 − p) of the arrivals, so letting through (1 − f)(1 − p) / (1 − target) of them leaves about
 * `target` to be refused downstream. A window with fewer refusals than that at least halves p, so
 * the share follows the load down as fast as up.
 *
 * *Why per window and not per refusal:* on a busy machine refusals come in bursts (a replica stalls for
 * a few ms, a dozen tasks are refused); raising p on each refusal turned one such burst into shedding
 * a large share for a while, and at 1.5× capacity the ingress shed far more than the excess
 * (measured: goodput 1304/s at 2300/s offered, where the models serve 2000/s).
 */
export interface LoadShedderOptions {
  /** Share of the forwarded queries the models may refuse before the edge sheds more (default 0.05). */
  target?: number;
  /** Length of a window, ms (default 200). */
  windowMs?: number;
  /** Answers and refusals a window needs before it moves p; quieter windows just age (default 20). */
  minSamples?: number;
  /** Never shed more than this share (default 0.95). */
  maxShed?: number;
  /** Random source in [0, 1) and clock (tests pass their own). */
  random?: () => number;
  now?: () => number;
}

interface AppWindow {
  /** Current shed share. */
  p: number;
  startMs: number;
  answered: number;
  refused: number;
}

export class LoadShedder {
  private readonly apps = new Map<string, AppWindow>();
  private readonly target: number;
  private readonly windowMs: number;
  private readonly minSamples: number;
  private readonly maxShed: number;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(opts: LoadShedderOptions = {}) {
    this.target = opts.target ?? 0.05;
    this.windowMs = opts.windowMs ?? 200;
    this.minSamples = opts.minSamples ?? 20;
    this.maxShed = opts.maxShed ?? 0.95;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    if (!(this.target >= 0 && this.target < 1)) throw new RangeError(`target must be in [0, 1), got ${this.target}`);
  }

  /** Current shed share of an app (0 when not overloaded). */
  probability(app: string): number {
    const w = this.apps.get(app);
    if (!w) return 0;
    this.roll(app, w);
    return w.p;
  }

  /** True when this query should be refused at once. */
  shouldShed(app: string): boolean {
    const p = this.probability(app);
    return p > 0 && this.random() < p;
  }

  /** A query that got through was refused downstream because the model is overloaded. */
  refused(app: string): void {
    const w = this.window(app);
    this.roll(app, w);
    w.refused++;
  }

  /** A query that got through was answered. */
  answered(app: string): void {
    const w = this.apps.get(app);
    if (!w) return; // never refused: nothing to track
    this.roll(app, w);
    w.answered++;
  }

  private window(app: string): AppWindow {
    let w = this.apps.get(app);
    if (!w) {
      w = { p: 0, startMs: this.now(), answered: 0, refused: 0 };
      this.apps.set(app, w);
    }
    return w;
  }

  /** Closes the window when its time is up: a new p from its counts, or halved when it was too quiet. */
  private roll(app: string, w: AppWindow): void {
    const now = this.now();
    if (now - w.startMs < this.windowMs) return;
    const n = w.answered + w.refused;
    if (n >= this.minSamples) {
      const f = w.refused / n;
      const next = 1 - ((1 - w.p) * (1 - f)) / (1 - this.target);
      // Below the target the models could take more than they got, how much more is unknown: at
      // least halve the share, so the edge opens up within a second or two once the overload ends.
      w.p = Math.min(this.maxShed, Math.max(0, f < this.target ? Math.min(next, w.p / 2) : next));
    } else {
      w.p *= 0.5 ** Math.floor((now - w.startMs) / this.windowMs);
    }
    if (w.p < 1e-3) {
      this.apps.delete(app); // back to normal; the next refusal starts a new window
      return;
    }
    w.startMs = now;
    w.answered = 0;
    w.refused = 0;
  }
}
