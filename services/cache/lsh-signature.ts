/**
 * Locality-sensitive hashing for the approximate prediction cache ("coarsening": f(x) ≈ f(z) for z
 * near x). `tables` independent signatures of `bits` hash functions each: for cosine, random
 * hyperplanes (bit = sign(r·x), Charikar 2002); for L2, p-stable projections
 * (h = floor((a·x + b) / w) with Gaussian a, Datar et al. 2004). Two inputs that agree on any table's
 * signature are candidates; the cache still checks the real distance before it answers.
 */
import { gaussian, mulberry32 } from '../../shared/random.js';

export type LshMetric = 'cosine' | 'l2';

export interface LshOptions {
  metric: LshMetric;
  /** Input length. */
  dim: number;
  /** Hash functions per table (more: fewer, closer candidates). */
  bits: number;
  /** Independent tables (more: more candidates, higher recall). */
  tables: number;
  seed: number;
  /** Bucket width w of the L2 projections, in input units. */
  bucketWidth?: number;
}

export class LshSignature {
  readonly options: Readonly<Required<LshOptions>>;
  /** tables × bits projection vectors of length dim, row-major. */
  private readonly projections: Float64Array;
  private readonly offsets: Float64Array;

  constructor(options: LshOptions) {
    const { dim, bits, tables } = options;
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw new RangeError(`bits must be in 1..64, got ${bits}`);
    if (!Number.isInteger(tables) || tables < 1 || tables > 64) throw new RangeError(`tables must be in 1..64, got ${tables}`);
    const bucketWidth = options.bucketWidth ?? 4;
    if (!(bucketWidth > 0)) throw new RangeError(`bucketWidth must be positive, got ${bucketWidth}`);
    this.options = Object.freeze({ ...options, bucketWidth });
    const rng = mulberry32(options.seed);
    this.projections = new Float64Array(tables * bits * dim);
    for (let i = 0; i < this.projections.length; i++) this.projections[i] = gaussian(rng);
    this.offsets = new Float64Array(tables * bits);
    for (let i = 0; i < this.offsets.length; i++) this.offsets[i] = rng() * bucketWidth;
  }

  /** One bucket key per table for input `x` (keys of different tables never collide). */
  keys(x: ArrayLike<number>): string[] {
    const { dim, bits, tables, metric, bucketWidth } = this.options;
    if (x.length !== dim) throw new RangeError(`input has ${x.length} values, the signature expects ${dim}`);
    const out: string[] = [];
    for (let t = 0; t < tables; t++) {
      const parts: (number | string)[] = [t];
      let word = 0;
      for (let b = 0; b < bits; b++) {
        const row = (t * bits + b) * dim;
        let dot = 0;
        for (let i = 0; i < dim; i++) dot += this.projections[row + i]! * x[i]!;
        if (metric === 'cosine') {
          word = word * 2 + (dot >= 0 ? 1 : 0);
          if ((b + 1) % 32 === 0) {
            parts.push(word);
            word = 0;
          }
        } else {
          parts.push(Math.floor((dot + this.offsets[t * bits + b]!) / bucketWidth));
        }
      }
      if (metric === 'cosine' && bits % 32 !== 0) parts.push(word);
      out.push(parts.join(':'));
    }
    return out;
  }
}

/** Distance between two inputs under a metric (cosine distance is 1 − cos θ). */
export function distance(metric: LshMetric, a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  if (metric === 'l2') {
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
    return Math.sqrt(sum);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 || nb === 0) return na === nb ? 0 : 1;
  return 1 - dot / Math.sqrt(na * nb);
}
