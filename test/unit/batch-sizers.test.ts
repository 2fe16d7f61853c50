import { expect } from 'chai';
import fc from 'fast-check';

import { AimdBatchSizer } from '../../services/scheduler/aimd-batch-sizer.js';
import { FixedBatchSizer, type BatchSizer } from '../../services/scheduler/batch-sizer.js';
import { createBatchSizer, SIZER_KINDS, startingBatchSize } from '../../services/scheduler/batch-sizers.js';
import { QuantileBatchSizer, QUANTILE_WARMUP } from '../../services/scheduler/quantile-batch-sizer.js';

/** A small seeded PRNG (mulberry32) so that the simulations are reproducible. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A simulated replica: latency a + b·size plus noise. */
interface Replica {
  a: number;
  b: number;
  budgetUs: number;
}

/** Closed loop: ask the sizer, run a batch of exactly that size, report it. Returns the sizes sent. */
function simulate(sizer: BatchSizer, latencyOf: (size: number) => number, rounds: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const size = sizer.batchSize();
    sizer.observe(size, latencyOf(size));
    sizes.push(size);
  }
  return sizes;
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const relErr = (got: number, want: number): number => Math.abs(got / want - 1);

/** Feed `sizer` n observations of a full batch at its current size with the given latency. */
function feed(sizer: BatchSizer, n: number, latencyUs: number): void {
  for (let i = 0; i < n; i++) sizer.observe(sizer.batchSize(), latencyUs);
}

describe('batch sizers', () => {
  describe('aimd', () => {
    it('aimd batch sizer - starts at the initial size and grows by one while full batches fit the budget', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000 });
      expect(s.batchSize()).to.equal(1);
      for (let want = 2; want <= 20; want++) {
        s.observe(s.batchSize(), 500);
        expect(s.batchSize()).to.equal(want);
      }
      const t = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 7, additiveStep: 3 });
      t.observe(7, 999);
      expect(t.batchSize()).to.equal(10);
      t.observe(12, 1000); // larger than the limit and exactly on budget: still counts as full
      expect(t.batchSize()).to.equal(13);
    });

    it('aimd batch sizer - does not grow on short batches, which say nothing about the limit', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 10 });
      for (let i = 0; i < 50; i++) s.observe(1 + (i % 9), 100);
      expect(s.batchSize()).to.equal(10);
    });

    it('aimd batch sizer - cuts the size by 10% on an over-budget batch', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 50 });
      s.observe(50, 1001);
      expect(s.batchSize()).to.equal(45);
      s.observe(30, 5000); // a short batch over budget also cuts (it was sent under this limit)
      expect(s.batchSize()).to.equal(40); // floor(45 · 0.9)
      const half = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 50, backoff: 0.5 });
      half.observe(50, 2000);
      expect(half.batchSize()).to.equal(25);
    });

    it('aimd batch sizer - floors at 1 and caps at maxBatchSize', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 3 });
      for (let i = 0; i < 10; i++) s.observe(s.batchSize(), 1e6);
      expect(s.batchSize()).to.equal(1);
      s.observe(1, 1e6);
      expect(s.batchSize()).to.equal(1);
      const t = new AimdBatchSizer({ budgetUs: 1000, maxBatchSize: 16, initialBatchSize: 14, additiveStep: 4 });
      feed(t, 10, 10);
      expect(t.batchSize()).to.equal(16);
    });

    it('aimd batch sizer - ignores stale over-budget batches dispatched before a cut took effect', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 100 });
      // Four batches of 100 were in flight; all come back over budget.
      s.observe(100, 1500);
      expect(s.batchSize()).to.equal(90);
      s.observe(100, 1500);
      s.observe(100, 1500);
      s.observe(100, 1400);
      expect(s.batchSize()).to.equal(90);
      // A batch sent under the new limit that is still over budget cuts again.
      s.observe(90, 1200);
      expect(s.batchSize()).to.equal(81);
    });

    it('aimd batch sizer - ignores observations that are not a batch (size < 1, bad latency)', () => {
      const s = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 10 });
      for (const [size, lat] of [[0, 1e6], [-3, 1e6], [Number.NaN, 1e6], [10, Number.NaN], [10, Number.POSITIVE_INFINITY], [10, -1]]) {
        s.observe(size!, lat!);
      }
      expect(s.batchSize()).to.equal(10);
      expect(s.estimateLatencyUs(10)).to.equal(undefined);
    });

    it('aimd batch sizer - rejects nonsense options with a RangeError', () => {
      const bad = [
        { budgetUs: 0 },
        { budgetUs: -5 },
        { budgetUs: Number.NaN },
        { budgetUs: Number.POSITIVE_INFINITY },
        { budgetUs: 1000, maxBatchSize: 0 },
        { budgetUs: 1000, maxBatchSize: 2.5 },
        { budgetUs: 1000, initialBatchSize: 0 },
        { budgetUs: 1000, maxBatchSize: 8, initialBatchSize: 9 },
        { budgetUs: 1000, additiveStep: 0 },
        { budgetUs: 1000, additiveStep: 1.5 },
        { budgetUs: 1000, backoff: 0 },
        { budgetUs: 1000, backoff: 1 },
        { budgetUs: 1000, backoff: 1.2 },
      ];
      for (const opts of bad) expect(() => new AimdBatchSizer(opts), JSON.stringify(opts)).to.throw(RangeError);
      expect(() => new AimdBatchSizer({ budgetUs: 1000 }).setBudgetUs(0)).to.throw(RangeError);
    });

    // (a µs, b µs/task, budget µs) with the true largest fitting size floor((budget − a) / b) well below 256.
    const aimdCases: Replica[] = [
      { a: 1000, b: 100, budgetUs: 20000 }, // 190
      { a: 200, b: 5, budgetUs: 800 }, // 120
      { a: 5000, b: 800, budgetUs: 60000 }, // 68
      { a: 50, b: 2, budgetUs: 300 }, // 125
      { a: 2000, b: 30, budgetUs: 8000 }, // 200
    ];
    it('aimd batch sizer - converges to within 15% of the largest size that fits, for several replicas', () => {
      aimdCases.forEach((r, i) => {
        const rnd = prng(1000 + i);
        const trueN = Math.floor((r.budgetUs - r.a) / r.b);
        const s = new AimdBatchSizer({ budgetUs: r.budgetUs });
        // ±2% multiplicative noise
        const sizes = simulate(s, (n) => (r.a + r.b * n) * (1 + 0.04 * (rnd() - 0.5)), 2000);
        const tail = sizes.slice(1000);
        const label = JSON.stringify({ ...r, trueN });
        expect(relErr(mean(tail), trueN), label).to.be.below(0.15);
        expect(relErr(s.batchSize(), trueN), label).to.be.below(0.15);
        expect(Math.min(...tail) / trueN, label).to.be.above(0.85);
        expect(Math.max(...tail) / trueN, label).to.be.below(1.15);
        // and its latency estimate matches the replica near the operating point
        expect(relErr(s.estimateLatencyUs(trueN)!, r.a + r.b * trueN), label).to.be.below(0.05);
      });
    });

    it('aimd batch sizer - estimates nothing before 3 observations, then fits a + b·size', () => {
      const s = new AimdBatchSizer({ budgetUs: 1e6 });
      expect(s.estimateLatencyUs(10)).to.equal(undefined);
      s.observe(1, 150);
      s.observe(2, 200);
      expect(s.estimateLatencyUs(10)).to.equal(undefined);
      s.observe(3, 250);
      expect(s.estimateLatencyUs(10)).to.be.closeTo(600, 1e-6);
      expect(s.estimateLatencyUs(0)).to.be.closeTo(100, 1e-6);
      // one size only: a line through the origin
      const t = new AimdBatchSizer({ budgetUs: 1e6, initialBatchSize: 4 });
      for (let i = 0; i < 5; i++) t.observe(4, 400);
      expect(t.estimateLatencyUs(8)).to.be.closeTo(800, 1e-6);
      // latency falling with size is not believed: a, b stay ≥ 0
      const u = new AimdBatchSizer({ budgetUs: 1e6 });
      [[1, 500], [2, 400], [3, 300], [4, 200]].forEach(([n, l]) => u.observe(n!, l!));
      expect(u.estimateLatencyUs(1)).to.be.at.least(0);
      expect(u.estimateLatencyUs(100)).to.be.at.least(u.estimateLatencyUs(1)!);
    });

    it('aimd batch sizer - setBudgetUs shrinks the size to the largest the estimate fits', () => {
      const r = { a: 1000, b: 100 };
      const s = new AimdBatchSizer({ budgetUs: 20000 });
      simulate(s, (n) => r.a + r.b * n, 500);
      const before = s.batchSize();
      expect(before).to.be.above(150);
      s.setBudgetUs(20000 * 2); // looser: no jump, AIMD grows into it
      expect(s.batchSize()).to.equal(before);
      s.setBudgetUs(6000); // (6000 − 1000) / 100 = 50
      expect(s.batchSize()).to.be.within(48, 50);
      s.setBudgetUs(500); // not even one task fits: 1
      expect(s.batchSize()).to.equal(1);
      // without an estimate a new budget does not move the size
      const fresh = new AimdBatchSizer({ budgetUs: 1000, initialBatchSize: 30 });
      fresh.setBudgetUs(10);
      expect(fresh.batchSize()).to.equal(30);
    });
  });

  describe('quantile', () => {
    it('quantile batch sizer - explores like AIMD before it has 10 observations', () => {
      const s = new QuantileBatchSizer({ budgetUs: 1000, initialBatchSize: 4 });
      expect(s.batchSize()).to.equal(4);
      expect(s.estimateLatencyUs(4)).to.equal(undefined);
      expect(s.line()).to.equal(undefined);
      s.observe(4, 100);
      expect(s.batchSize()).to.equal(5);
      s.observe(2, 100); // short batch: no growth
      expect(s.batchSize()).to.equal(5);
      s.observe(5, 100);
      s.observe(6, 100);
      expect(s.batchSize()).to.equal(7);
      s.observe(7, 5000); // over budget: halve
      expect(s.batchSize()).to.equal(3);
      while (s.observations < QUANTILE_WARMUP - 1) s.observe(s.batchSize(), 100);
      expect(s.estimateLatencyUs(1)).to.equal(undefined);
      s.observe(s.batchSize(), 100);
      expect(s.observations).to.equal(QUANTILE_WARMUP);
      expect(s.estimateLatencyUs(1)).to.be.a('number');
    });

    it('quantile batch sizer - after warm-up sends every 10th batch at half size, unless explore is 0', () => {
      const run = (explore: number): number[] => {
        const s = new QuantileBatchSizer({ budgetUs: 10000, maxBatchSize: 64, explore });
        return simulate(s, () => 100, 60).slice(30);
      };
      const probing = run(0.1);
      expect(probing.filter((n) => n === 64)).to.have.length(27);
      expect(probing.filter((n) => n === 32)).to.have.length(3);
      expect(run(0)).to.deep.equal(new Array(30).fill(64));
    });

    it('quantile batch sizer - never sends more than twice the largest batch seen to meet the budget', () => {
      const s = new QuantileBatchSizer({ budgetUs: 10000, explore: 0 });
      const sizes = simulate(s, () => 100, 14); // flat latency: the line allows 256 at once
      expect(sizes.slice(9)).to.deep.equal([10, 20, 40, 80, 160]);
    });

    // exponential noise with mean m: the true P99 is a + b·size + m·ln(100)
    const quantileCases: Replica[] = [
      { a: 1000, b: 100, budgetUs: 20000 },
      { a: 200, b: 5, budgetUs: 800 },
      { a: 5000, b: 800, budgetUs: 60000 },
      { a: 50, b: 2, budgetUs: 300 },
      { a: 10000, b: 300, budgetUs: 100000 },
      { a: 2000, b: 20, budgetUs: 8000 },
    ];
    const p99Of = (r: Replica, noiseMean: number) => (n: number) => r.a + r.b * n + noiseMean * Math.log(100);

    it('quantile batch sizer - converges to within 15% of the largest size whose P99 fits, with a P99 line within 15%', () => {
      quantileCases.forEach((r, i) => {
        const rnd = prng(2000 + i);
        const noiseMean = 0.05 * r.budgetUs;
        const p99 = p99Of(r, noiseMean);
        const trueN = Math.floor((r.budgetUs - p99(0)) / r.b);
        const s = new QuantileBatchSizer({ budgetUs: r.budgetUs });
        let round = 0;
        let overLate = 0; // over-budget batches in the last 1000 rounds
        const sizes = simulate(
          s,
          (n) => {
            const lat = r.a + r.b * n - noiseMean * Math.log(1 - rnd());
            if (round++ >= 1000 && lat > r.budgetUs) overLate++;
            return lat;
          },
          2000,
        );
        const label = JSON.stringify({ ...r, trueN });
        expect(relErr(s.batchSize(), trueN), label).to.be.below(0.15);
        expect(relErr(mean(sizes.slice(1000).filter((n) => n > trueN * 0.75)), trueN), label).to.be.below(0.15);
        for (const f of [0.75, 0.9, 1]) {
          const n = Math.round(f * trueN);
          expect(relErr(s.estimateLatencyUs(n)!, p99(n)), `${label} at ${n}`).to.be.below(0.15);
        }
        // it aims at the 99th percentile: once settled, about 1% of batches miss the budget
        expect(overLate / 1000, label).to.be.below(0.025);
      });
    });

    it('quantile batch sizer - fits the P99 line within 15% when the batch sizes vary (short queues)', () => {
      quantileCases.forEach((r, i) => {
        const rnd = prng(3000 + i);
        const noiseMean = 0.05 * r.budgetUs;
        const p99 = p99Of(r, noiseMean);
        const trueN = Math.min(256, Math.floor((r.budgetUs - p99(0)) / r.b));
        const s = new QuantileBatchSizer({ budgetUs: r.budgetUs });
        for (let k = 0; k < 2000; k++) {
          const n = 1 + Math.floor(rnd() * Math.min(s.batchSize(), Math.round(1.2 * trueN)));
          s.observe(n, r.a + r.b * n - noiseMean * Math.log(1 - rnd()));
        }
        for (const f of [0.25, 0.5, 0.75, 1]) {
          const n = Math.round(f * trueN);
          expect(relErr(s.estimateLatencyUs(n)!, p99(n)), `${JSON.stringify(r)} at ${n}`).to.be.below(0.15);
        }
      });
    });

    it('quantile batch sizer - a tighter budget shrinks the size at once', () => {
      const r = { a: 1000, b: 100 };
      const rnd = prng(7);
      const s = new QuantileBatchSizer({ budgetUs: 20000, explore: 0 });
      simulate(s, (n) => r.a + r.b * n - 500 * Math.log(1 - rnd()), 1000);
      const before = s.batchSize();
      s.setBudgetUs(10000);
      const after = s.batchSize();
      expect(after).to.be.below(before * 0.6);
      expect(after).to.be.at.least(1);
      expect(s.estimateLatencyUs(after)!).to.be.at.most(10000);
    });

    it('quantile batch sizer - rejects nonsense options with a RangeError', () => {
      const bad = [
        { budgetUs: 0 },
        { budgetUs: Number.NaN },
        { budgetUs: 1000, maxBatchSize: 0 },
        { budgetUs: 1000, quantile: 0 },
        { budgetUs: 1000, quantile: 1 },
        { budgetUs: 1000, learningRate: 0 },
        { budgetUs: 1000, learningRate: 2 },
        { budgetUs: 1000, initialBatchSize: 0 },
        { budgetUs: 1000, maxBatchSize: 4, initialBatchSize: 5 },
        { budgetUs: 1000, explore: -0.1 },
        { budgetUs: 1000, explore: 0.9 },
      ];
      for (const opts of bad) expect(() => new QuantileBatchSizer(opts), JSON.stringify(opts)).to.throw(RangeError);
      expect(() => new QuantileBatchSizer({ budgetUs: 1000 }).setBudgetUs(-1)).to.throw(RangeError);
    });
  });

  it('batch sizers - for any observations, batchSize() stays an integer in [1, maxBatchSize]', () => {
    const size = fc.oneof(fc.integer({ min: -5, max: 400 }), fc.double());
    const latency = fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double());
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.double({ min: 1, max: 1e6, noNaN: true }),
        fc.array(fc.tuple(size, latency), { maxLength: 60 }),
        (maxBatchSize, budgetUs, obs) => {
          const sizers = [new AimdBatchSizer({ budgetUs, maxBatchSize }), new QuantileBatchSizer({ budgetUs, maxBatchSize })];
          for (const s of sizers) {
            for (const [n, l] of obs) {
              s.observe(n, l);
              const b = s.batchSize();
              if (!Number.isInteger(b) || b < 1 || b > maxBatchSize) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  describe('starting from a warm-up profile', () => {
    const profile = [
      { size: 1, compute_us: 1100 }, { size: 2, compute_us: 1150 }, { size: 4, compute_us: 1200 }, { size: 8, compute_us: 1450 },
      { size: 16, compute_us: 1800 }, { size: 32, compute_us: 3000 }, { size: 64, compute_us: 5400 }, { size: 128, compute_us: 10_000 },
    ];

    it('warm-up start - the largest profiled size that computes in half the budget, else 1', () => {
      expect(startingBatchSize(profile, 8000)).to.equal(32); // 64 takes 5.4 ms > 4 ms
      expect(startingBatchSize(profile, 20_000)).to.equal(128);
      expect(startingBatchSize(profile, 2000)).to.equal(1); // not even one task in 1 ms
      expect(startingBatchSize([], 8000)).to.equal(1);
    });

    it('warm-up start - AIMD and quantile sizers start there (clamped) until their first batch; a fixed size ignores it', () => {
      const aimd = new AimdBatchSizer({ budgetUs: 8000, maxBatchSize: 20 });
      aimd.startAt(32);
      expect(aimd.batchSize()).to.equal(20);
      aimd.startAt(0);
      expect(aimd.batchSize()).to.equal(1);
      aimd.startAt(12);
      expect(aimd.batchSize()).to.equal(12);
      aimd.observe(12, 3000); // full and on budget: +1
      expect(aimd.batchSize()).to.equal(13);
      aimd.startAt(4); // it has measured a batch: its own evidence wins
      expect(aimd.batchSize()).to.equal(13);

      const quantile = new QuantileBatchSizer({ budgetUs: 8000, maxBatchSize: 64 });
      quantile.startAt(32);
      expect(quantile.batchSize()).to.equal(32);
      quantile.observe(32, 3000);
      expect(quantile.batchSize()).to.equal(33);
      quantile.startAt(2);
      expect(quantile.batchSize()).to.equal(33);

      const fixed = new FixedBatchSizer(8);
      fixed.startAt();
      expect(fixed.batchSize()).to.equal(8);
    });
  });

  describe('factory', () => {
    it('batch sizer factory - builds each kind', () => {
      expect(SIZER_KINDS).to.deep.equal(['fixed', 'aimd', 'quantile']);
      const fixed = createBatchSizer({ kind: 'fixed', batchSize: 8, maxBatchSize: 256, budgetUs: 1000 });
      expect(fixed).to.be.instanceOf(FixedBatchSizer);
      expect(fixed.batchSize()).to.equal(8);
      expect(createBatchSizer({ kind: 'aimd', maxBatchSize: 256, budgetUs: 1000 })).to.be.instanceOf(AimdBatchSizer);
      expect(createBatchSizer({ kind: 'quantile', maxBatchSize: 256, budgetUs: 1000 })).to.be.instanceOf(QuantileBatchSizer);
    });

    it('batch sizer factory - passes maxBatchSize and budgetUs to the adaptive sizers', () => {
      for (const kind of ['aimd', 'quantile'] as const) {
        const s = createBatchSizer({ kind, maxBatchSize: 4, budgetUs: 1000 });
        feed(s, 30, 10);
        expect(s.batchSize(), kind).to.equal(4);
        const t = createBatchSizer({ kind, maxBatchSize: 64, budgetUs: 1000 });
        feed(t, 5, 10);
        const grown = t.batchSize();
        t.observe(grown, 1001); // over this budget: shrinks
        expect(t.batchSize(), kind).to.be.below(grown);
      }
    });

    it('batch sizer factory - refuses a fixed sizer without a valid batchSize, and unknown kinds', () => {
      for (const batchSize of [undefined, 0, -1, 2.5, Number.NaN]) {
        expect(() => createBatchSizer({ kind: 'fixed', batchSize, maxBatchSize: 256, budgetUs: 1000 }), String(batchSize)).to.throw(RangeError);
      }
      expect(() => createBatchSizer({ kind: 'lifo' as never, maxBatchSize: 256, budgetUs: 1000 })).to.throw(RangeError, /unknown/);
      expect(() => createBatchSizer({ kind: 'aimd', maxBatchSize: 0, budgetUs: 1000 })).to.throw(RangeError);
      expect(() => createBatchSizer({ kind: 'quantile', maxBatchSize: 256, budgetUs: -1 })).to.throw(RangeError);
    });
  });
});
