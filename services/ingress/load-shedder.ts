/**
 * Load shedding at the edge. When an app's models refuse work (queue full, or backlogged), every
 * query the ingress still parses, validates and forwards costs CPU that the models' replicas need.
 * The shedder refuses a share p of an app's new queries before their body is parsed, and sets p
 * once per window from what happened to the queries it let through: if a share f of them was
 * refused downstream, the models took (1 − f)(1 − p) of the arrivals, so letting through
 * (1 − f)(1 − p) / (1 − target) of them would leave about `target` to be refused downstream. The
 * pass share 1 − p moves half the way there (in log terms), at most halving in one window; after a
 * window with fewer refusals than the target it grows by at least a quarter, though p at most
 * halves (`roll`).
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

/** How much the pass share grows at least after a window with fewer refusals than the target. */
const OPEN_STEP = 1.25;

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
    // Shedding everything would forward nothing to learn from: the share could never come down.
    if (!(this.maxShed >= 0 && this.maxShed < 1)) throw new RangeError(`maxShed must be in [0, 1), got ${this.maxShed}`);
  }

  /** Current shed share of an app (0 when not overloaded). */
  probability(app: string): number {
    const w = this.apps.get(app);
    return w ? (this.roll(app, w)?.p ?? 0) : 0;
  }

  /** True when this query should be refused at once. */
  shouldShed(app: string): boolean {
    const p = this.probability(app);
    return p > 0 && this.random() < p;
  }

  /** A query that got through was refused downstream because the model is overloaded. */
  refused(app: string): void {
    // A window that rolled back to normal is gone: the refusal opens a new one.
    (this.roll(app, this.window(app)) ?? this.window(app)).refused++;
  }

  /** A query that got through was answered. */
  answered(app: string): void {
    const w = this.apps.get(app);
    if (!w) return; // never refused: nothing to track
    const live = this.roll(app, w);
    if (live) live.answered++;
  }

  private window(app: string): AppWindow {
    let w = this.apps.get(app);
    if (!w) {
      w = { p: 0, startMs: this.now(), answered: 0, refused: 0 };
      this.apps.set(app, w);
    }
    return w;
  }

  /**
   * Closes the window when its time is up and sets the next share from its counts, in terms of the
   * pass share q = 1 − p. With refusals at or over the target: half the way (in log terms) toward the
   * q that leaves `target` refused downstream, at most halving q (one window's refusals overstate the
   * load after a flood and understate it after a cut: the full step made p swing between ~0.45 and
   * ~0.92 every three windows at 2× capacity, and a window of nothing but refusals would have sent p to
   * its cap at once). Under the target the models could take more, how much more is unknown: q grows
   * to the balance, or by OPEN_STEP if that is more, but p at most halves (at a small p a quarter more
   * would stop shedding at once, and the next window would bring the whole excess). A quiet window
   * doubles q: the arrivals have dropped. Returns the app's window, or undefined once it is back to
   * normal and forgotten.
   */
  private roll(app: string, w: AppWindow): AppWindow | undefined {
    const now = this.now();
    if (now - w.startMs < this.windowMs) return w;
    const n = w.answered + w.refused;
    let q = 1 - w.p;
    if (n >= this.minSamples) {
      const f = w.refused / n;
      const balanced = (q * (1 - f)) / (1 - this.target);
      q = w.refused > 0 && f >= this.target
        ? Math.sqrt(q * Math.max(balanced, q / 4))
        : Math.min(Math.max(balanced, q * OPEN_STEP), 1 - w.p / 2);
    } else {
      q *= 2 ** Math.min(10, Math.floor((now - w.startMs) / this.windowMs));
    }
    w.p = Math.min(this.maxShed, Math.max(0, 1 - q));
    if (w.p < 1e-3) {
      this.apps.delete(app); // back to normal; the next refusal starts a new window
      return undefined;
    }
    w.startMs = now;
    w.answered = 0;
    w.refused = 0;
    return w;
  }
}
