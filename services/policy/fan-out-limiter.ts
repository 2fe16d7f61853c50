/**
 * Graceful degradation for policies that ask several models (Clipper §5: the correction layer decides
 * what to drop under overload). Per app, a fan-out limit k over the policy's selection, which comes
 * most valuable first: when the lowest-weight model asked refuses a query as overloaded (its
 * scheduler refuses to take the task on: CLIPPER_ERR_QUEUE_FULL), k shrinks by one, so that model is
 * no longer asked; after `recoverAfter` queries in a row without overload it grows by one again,
 * probing whether the dropped model can be afforded.
 * The app keeps answering within its SLO, from fewer models, at somewhat lower accuracy.
 */
import type { ClipperError } from '../../shared/errors.js';
import { modelKey, type ModelRef } from './types.js';

/**
 * Whether a model's failure counts as its refusing to take the task on, for the fan-out limit: a
 * CLIPPER_ERR_QUEUE_FULL that less traffic to it would have prevented. Not BACKLOGGED, which can befall a
 * model slower than the gap between two queries at light load; not a refusal its scheduler marked
 * `sheddable: false` (a short queue: the model's latency varying), which asking it less would not prevent.
 */
export function countsForFanOut(err: ClipperError): boolean {
  return err.code === 'CLIPPER_ERR_QUEUE_FULL' && err.sheddable !== false;
}

export interface FanOutLimiterOptions {
  /** Clean queries in a row before one more model is asked again (default 200). */
  recoverAfter?: number;
}

interface AppLimit {
  /** Models asked at most; Infinity when unlimited. */
  k: number;
  clean: number;
}

export class FanOutLimiter {
  private readonly apps = new Map<string, AppLimit>();
  private readonly recoverAfter: number;

  constructor(opts: FanOutLimiterOptions = {}) {
    this.recoverAfter = opts.recoverAfter ?? 200;
  }

  /** The prefix of `selected` to ask now (always at least the first model). */
  limit(app: string, selected: ModelRef[]): ModelRef[] {
    const k = this.apps.get(app)?.k ?? Infinity;
    return selected.length > k ? selected.slice(0, Math.max(1, k)) : selected;
  }

  /**
   * Records how a query went: the models `asked` (a prefix of the `wanted` selection) and those of
   * them that refused as overloaded. Only a refusal by the last model asked (the lowest weight)
   * shrinks the limit: dropping a lighter model does not relieve a heavier one that is overloaded,
   * which stands in by its expected output instead. Queries already in flight under a higher limit
   * shrink it once, not once each.
   */
  record(app: string, asked: readonly ModelRef[], wanted: number, refused: ReadonlySet<string>): void {
    const last = asked[asked.length - 1];
    const overloaded = asked.length > 1 && last !== undefined && refused.has(modelKey(last));
    let a = this.apps.get(app);
    if (!a) {
      if (!overloaded) return;
      a = { k: Infinity, clean: 0 };
      this.apps.set(app, a);
    }
    if (overloaded) {
      a.k = Math.max(1, Math.min(a.k, asked.length - 1));
      a.clean = 0;
      return;
    }
    if (refused.size > 0) return;
    if (++a.clean >= this.recoverAfter) {
      a.clean = 0;
      a.k = a.k + 1;
      if (a.k >= wanted) this.apps.delete(app);
    }
  }

  /** The current limit for an app (Infinity when unlimited). */
  current(app: string): number {
    return this.apps.get(app)?.k ?? Infinity;
  }
}
