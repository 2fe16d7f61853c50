/**
 * Anytime predictions (Clipper §5.2.2): when a model misses the deadline, the ensemble uses the
 * model's expected output instead. This tracks that expectation per (app, model name) as the mean of
 * the float outputs seen: the plain mean of the first `window` outputs, then an exponentially
 * weighted one with weight 1/window, so it follows a model that drifts. The mean of distributions is
 * a distribution, so a class-probability model's expected output stays valid.
 *
 * Outputs of another length than the current mean (a new version with other classes) are ignored,
 * unless `resetAfter` of them in a row agree on the new length: then their mean replaces the old one.
 */
import { elementCount, fromNumbers, type Tensor } from '../../shared/tensor.js';
import type { ExpectedOutputs, ModelRef } from './types.js';

export interface ExpectedOutputOptions {
  /** Outputs averaged equally before the mean turns exponential (default 500). */
  window?: number;
  /** Consecutive outputs of a new length that replace the mean (default 3). */
  resetAfter?: number;
}

type FloatDType = 'FP32' | 'FP64';

/** The running mean of one model's outputs for one app, as JSON. */
export interface ExpectedOutputEntry {
  dtype: FloatDType;
  shape: number[];
  mean: number[];
  count: number;
  /** Outputs of a new length seen in a row, with their mean. */
  pending?: { shape: number[]; mean: number[]; count: number };
}

/** The whole tracker as JSON: entries[app][model]. */
export interface ExpectedOutputsJSON {
  window: number;
  resetAfter: number;
  entries: Record<string, Record<string, ExpectedOutputEntry>>;
}

export class ExpectedOutputTracker {
  readonly window: number;
  readonly resetAfter: number;
  private readonly apps = new Map<string, Map<string, ExpectedOutputEntry>>();

  constructor(opts: ExpectedOutputOptions = {}) {
    this.window = checkCount('window', opts.window ?? 500);
    this.resetAfter = checkCount('resetAfter', opts.resetAfter ?? 3);
  }

  /** Folds one output of `model` (a name) for `app` into its mean; non-float or non-finite outputs are ignored. */
  observe(app: string, model: string, t: Tensor): void {
    if (t.dtype !== 'FP32' && t.dtype !== 'FP64') return;
    const values = floatValues(t);
    if (!values || values.length === 0) return;
    let models = this.apps.get(app);
    if (!models) this.apps.set(app, (models = new Map()));
    const entry = models.get(model);
    if (!entry) {
      models.set(model, { dtype: t.dtype, shape: shapeOf(t, values.length), mean: values, count: 1 });
      return;
    }
    if (values.length === entry.mean.length) {
      delete entry.pending;
      entry.count += 1;
      fold(entry.mean, values, 1 / Math.min(entry.count, this.window));
      entry.dtype = t.dtype;
      entry.shape = shapeOf(t, values.length);
      return;
    }
    const pending = entry.pending?.mean.length === values.length ? entry.pending : undefined;
    if (!pending) {
      entry.pending = { shape: shapeOf(t, values.length), mean: values, count: 1 };
    } else {
      pending.count += 1;
      fold(pending.mean, values, 1 / pending.count);
      pending.shape = shapeOf(t, values.length);
    }
    const next = entry.pending!;
    if (next.count >= this.resetAfter) {
      models.set(model, { dtype: t.dtype, shape: next.shape, mean: next.mean, count: next.count });
    }
  }

  /** The expected output of `model` (a name) for `app`, or undefined before any output was seen. */
  expected(app: string, model: string): Tensor | undefined {
    const entry = this.apps.get(app)?.get(model);
    return entry && fromNumbers(entry.dtype, entry.mean, [...entry.shape]);
  }

  /** How many outputs make up the current mean (0 when none). */
  count(app: string, model: string): number {
    return this.apps.get(app)?.get(model)?.count ?? 0;
  }

  /** The substitutes for one app, in the shape `CorrectionPolicy.combine` takes. */
  forApp(app: string): ExpectedOutputs {
    return (m: ModelRef) => this.expected(app, m.name);
  }

  /** Forgets an app (or one of its models). */
  forget(app: string, model?: string): void {
    if (model === undefined) this.apps.delete(app);
    else this.apps.get(app)?.delete(model);
  }

  toJSON(): ExpectedOutputsJSON {
    const entries: Record<string, Record<string, ExpectedOutputEntry>> = Object.create(null);
    for (const [app, models] of this.apps) {
      const out: Record<string, ExpectedOutputEntry> = Object.create(null);
      for (const [model, e] of models) out[model] = copyEntry(e);
      entries[app] = out;
    }
    return { window: this.window, resetAfter: this.resetAfter, entries };
  }

  /** A tracker from `toJSON()` output; malformed entries are skipped. */
  static fromJSON(json: ExpectedOutputsJSON): ExpectedOutputTracker {
    const tracker = new ExpectedOutputTracker({ window: json.window, resetAfter: json.resetAfter });
    for (const [app, models] of Object.entries(json.entries ?? {})) {
      const map = new Map<string, ExpectedOutputEntry>();
      for (const [model, e] of Object.entries(models ?? {})) if (isEntry(e)) map.set(model, copyEntry(e));
      if (map.size > 0) tracker.apps.set(app, map);
    }
    return tracker;
  }
}

/** mean += rate·(x − mean), in place. */
function fold(mean: number[], x: readonly number[], rate: number): void {
  for (let i = 0; i < mean.length; i++) mean[i]! += rate * (x[i]! - mean[i]!);
}

function floatValues(t: Tensor): number[] | undefined {
  const width = t.dtype === 'FP64' ? 8 : 4;
  if (t.data.byteLength % width !== 0) return undefined;
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const values: number[] = [];
  for (let off = 0; off < t.data.byteLength; off += width) {
    const v = width === 8 ? view.getFloat64(off, true) : view.getFloat32(off, true);
    if (!Number.isFinite(v)) return undefined;
    values.push(v);
  }
  return values;
}

/** The tensor's shape when it matches its `n` values, else a flat one. */
function shapeOf(t: Tensor, n: number): number[] {
  return elementCount(t.shape) === n ? [...t.shape] : [n];
}

function copyEntry(e: ExpectedOutputEntry): ExpectedOutputEntry {
  const copy: ExpectedOutputEntry = { dtype: e.dtype, shape: [...e.shape], mean: [...e.mean], count: e.count };
  if (e.pending) copy.pending = { shape: [...e.pending.shape], mean: [...e.pending.mean], count: e.pending.count };
  return copy;
}

function isNumbers(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number' && Number.isFinite(v));
}

function isEntry(e: unknown): e is ExpectedOutputEntry {
  const x = e as ExpectedOutputEntry | null;
  return typeof x === 'object' && x !== null && (x.dtype === 'FP32' || x.dtype === 'FP64') && isNumbers(x.shape) && isNumbers(x.mean)
    && x.mean.length > 0 && elementCount(x.shape) === x.mean.length && typeof x.count === 'number' && x.count >= 1
    && (x.pending === undefined || (isNumbers(x.pending.shape) && isNumbers(x.pending.mean)
      && elementCount(x.pending.shape) === x.pending.mean.length && typeof x.pending.count === 'number'));
}

function checkCount(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}
