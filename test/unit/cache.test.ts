import { expect } from 'chai';
import fc from 'fast-check';
import { ClockCache } from '../../services/cache/clock-cache.js';
import { distance, LshSignature } from '../../services/cache/lsh-signature.js';
import { gaussian, mulberry32 } from '../../shared/random.js';

const shareBucket = (a: string[], b: string[]): boolean => a.some((k, i) => k === b[i]);

describe('lsh signature', () => {
  it('lsh signature - cosine: near inputs share a bucket far more often than unrelated ones, over many seeds', () => {
    let near = 0;
    let far = 0;
    const seeds = 200;
    for (let seed = 1; seed <= seeds; seed++) {
      const rng = mulberry32(10_000 + seed);
      const lsh = new LshSignature({ metric: 'cosine', dim: 64, bits: 16, tables: 4, seed });
      const x = Array.from({ length: 64 }, () => gaussian(rng));
      const close = x.map((v) => v + 0.05 * gaussian(rng));
      const other = Array.from({ length: 64 }, () => gaussian(rng));
      if (shareBucket(lsh.keys(x), lsh.keys(close))) near++;
      if (shareBucket(lsh.keys(x), lsh.keys(other))) far++;
    }
    expect(near / seeds).to.be.at.least(0.9);
    expect(far / seeds).to.be.at.most(0.05);
  });

  it('lsh signature - l2: digits-scale inputs with σ = 0.5 noise share a bucket far more often than other inputs', () => {
    let near = 0;
    let far = 0;
    const seeds = 200;
    for (let seed = 1; seed <= seeds; seed++) {
      const rng = mulberry32(20_000 + seed);
      const lsh = new LshSignature({ metric: 'l2', dim: 64, bits: 4, tables: 8, seed, bucketWidth: 16 });
      const x = Array.from({ length: 64 }, () => rng() * 16);
      const noisy = x.map((v) => v + 0.5 * gaussian(rng));
      const other = Array.from({ length: 64 }, () => rng() * 16);
      if (shareBucket(lsh.keys(x), lsh.keys(noisy))) near++;
      if (shareBucket(lsh.keys(x), lsh.keys(other))) far++;
    }
    expect(near / seeds).to.be.at.least(0.9);
    expect(far / seeds).to.be.at.most(0.05);
  });

  it('lsh signature - keys are deterministic for a seed, one per table, and differ across seeds', () => {
    const x = Array.from({ length: 8 }, (_, i) => i - 3.5);
    const a = new LshSignature({ metric: 'cosine', dim: 8, bits: 40, tables: 3, seed: 7 });
    const b = new LshSignature({ metric: 'cosine', dim: 8, bits: 40, tables: 3, seed: 7 });
    const c = new LshSignature({ metric: 'cosine', dim: 8, bits: 40, tables: 3, seed: 8 });
    expect(a.keys(x)).to.deep.equal(b.keys(x));
    expect(a.keys(x)).to.have.length(3);
    expect(new Set(a.keys(x).map((k) => k.split(':')[0])).size).to.equal(3);
    expect(a.keys(x)).to.not.deep.equal(c.keys(x));
  });

  it('lsh signature - refuses bad options and inputs of the wrong length', () => {
    expect(() => new LshSignature({ metric: 'l2', dim: 0, bits: 4, tables: 2, seed: 1 })).to.throw(RangeError);
    expect(() => new LshSignature({ metric: 'l2', dim: 4, bits: 65, tables: 2, seed: 1 })).to.throw(RangeError);
    expect(() => new LshSignature({ metric: 'l2', dim: 4, bits: 4, tables: 2, seed: 1, bucketWidth: 0 })).to.throw(RangeError);
    expect(() => new LshSignature({ metric: 'l2', dim: 4, bits: 4, tables: 2, seed: 1 }).keys([1, 2, 3])).to.throw(RangeError);
  });

  it('lsh signature - distance is 0 for identical inputs, symmetric, and cosine ignores scale', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 16 }), (xs) => {
      const ys = xs.map((v) => v + 1);
      expect(distance('l2', xs, xs)).to.equal(0);
      expect(distance('l2', xs, ys)).to.be.closeTo(distance('l2', ys, xs), 1e-9);
      expect(distance('l2', xs, ys)).to.be.closeTo(Math.sqrt(xs.length), 1e-9);
    }));
    expect(distance('cosine', [1, 2, 3], [2, 4, 6])).to.be.closeTo(0, 1e-12);
    expect(distance('cosine', [1, 0], [0, 1])).to.be.closeTo(1, 1e-12);
    expect(distance('l2', [1, 2], [1])).to.equal(Infinity);
  });
});

describe('clock cache', () => {
  it('clock cache - never holds more bytes than its budget', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 60 }), fc.boolean()), { maxLength: 200 }), (ops) => {
      const c = new ClockCache<number>(100);
      for (const [k, bytes, read] of ops) {
        if (read) c.get(String(k));
        else c.set(String(k), k, bytes);
        expect(c.bytes).to.be.at.most(100);
      }
    }));
  });

  it('clock cache - evicts entries not used since the last sweep before used ones', () => {
    const c = new ClockCache<string>(30);
    c.set('a', 'A', 10);
    c.set('b', 'B', 10);
    c.set('c', 'C', 10);
    expect(c.get('a')).to.equal('A'); // a is referenced
    c.set('d', 'D', 10); // needs room: b (unreferenced) goes, a survives
    expect(c.has('a')).to.equal(true);
    expect(c.has('b')).to.equal(false);
    expect(c.evictions).to.equal(1);
    expect(c.bytes).to.equal(30);
  });

  it('clock cache - replacing an entry updates its bytes; an entry larger than the budget is refused', () => {
    const c = new ClockCache<string>(50);
    c.set('a', 'x', 10);
    c.set('a', 'y', 40);
    expect(c.get('a')).to.equal('y');
    expect(c.bytes).to.equal(40);
    expect(c.set('big', 'z', 51)).to.equal(false);
    expect(c.has('big')).to.equal(false);
    expect(c.delete('a')).to.equal(true);
    expect(c.bytes).to.equal(0);
    expect(c.size).to.equal(0);
  });

  it('clock cache - stays consistent over many inserts and deletes (ring compaction)', () => {
    const c = new ClockCache<number>(1000);
    for (let i = 0; i < 5000; i++) {
      c.set(`k${i}`, i, 10);
      if (i % 3 === 0) c.delete(`k${i - 1}`);
    }
    expect(c.bytes).to.be.at.most(1000);
    expect(c.bytes).to.equal(c.size * 10);
    expect(c.get('k4999')).to.equal(4999);
  });
});
