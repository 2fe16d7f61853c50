import { expect } from 'chai';
import fc from 'fast-check';

import { BatchLatencyModel, batchSizeFor, completionMs, MIN_FIT_POINTS, type ReplicaOutlook } from '../../services/scheduler/completion-estimate.js';

/** A replica whose batches take exactly a + b·size ms. */
function line(a: number, b: number, batchSize: number, freeInMs = 0): ReplicaOutlook {
  return { freeInMs, batchSize, latencyMs: (size) => a + b * size };
}

describe('completion estimate', () => {
  it('completion estimate - BatchLatencyModel has no estimate before a batch, then latency per task times size', () => {
    const m = new BatchLatencyModel();
    expect(m.estimateUs(4)).to.equal(undefined);
    m.observe(2, 3000);
    expect(m.count).to.equal(1);
    expect(m.estimateUs(2)).to.equal(3000);
    expect(m.estimateUs(6)).to.equal(9000);
  });

  it('completion estimate - BatchLatencyModel recovers a fixed cost and a per-task cost once sizes vary', () => {
    const m = new BatchLatencyModel();
    // 2 ms per batch plus 0.1 ms per task, sizes 1..8 as AIMD's sawtooth would send them.
    for (let i = 0; i < 40; i++) {
      const size = 1 + (i % 8);
      m.observe(size, 2000 + 100 * size);
    }
    expect(m.estimateUs(1)).to.be.closeTo(2100, 1);
    expect(m.estimateUs(20)).to.be.closeTo(4000, 1);
    // Latency per task from small batches (~1 ms at size 2) would have predicted 20 ms for 20 tasks.
  });

  it('completion estimate - BatchLatencyModel stays cautious (per task) while the sizes seen do not vary', () => {
    const m = new BatchLatencyModel();
    for (let i = 0; i < 3 * MIN_FIT_POINTS; i++) m.observe(3, 3000);
    expect(m.estimateUs(3)).to.be.closeTo(3000, 1e-6);
    expect(m.estimateUs(9)).to.be.closeTo(9000, 1e-6);
  });

  it('completion estimate - BatchLatencyModel ignores sizes below 1 and latencies that are negative or not finite', () => {
    const m = new BatchLatencyModel();
    for (const [size, us] of [[0, 100], [-1, 100], [NaN, 100], [2, -5], [2, NaN], [2, Infinity]] as const) m.observe(size, us);
    expect(m.count).to.equal(0);
    expect(m.estimateUs(1)).to.equal(undefined);
  });

  it('completion estimate - an idle replica and an empty queue: the task\'s own batch of one', () => {
    expect(completionMs(0, [line(2, 0.5, 16)])).to.equal(2.5);
  });

  it('completion estimate - a busy replica: the rest of its batch first', () => {
    expect(completionMs(0, [line(2, 0.5, 16, 3)])).to.equal(5.5);
  });

  it('completion estimate - the queue ahead goes in batches of the size limit, the task in the batch that reaches it', () => {
    // 20 ahead + the task = 21 tasks at 8 per batch: 8, 8, then 5 (the task's batch).
    expect(completionMs(20, [line(2, 0.5, 8)])).to.equal(3 * 2 + 0.5 * 21);
    // Fewer ahead than a batch: one batch holds them all.
    expect(completionMs(5, [line(2, 0.5, 8)])).to.equal(2 + 0.5 * 6);
  });

  it('completion estimate - replicas take batches as they become free', () => {
    // Two identical replicas, one free now, one in 1 ms; 16 ahead + 1 at 8 per batch.
    // A: 0→6 (8 tasks), B: 1→7 (8 tasks), A: 6→8.5 (the task's batch of 1).
    expect(completionMs(16, [line(2, 0.5, 8), line(2, 0.5, 8, 1)])).to.equal(8.5);
  });

  it('completion estimate - with delayed batching a batch under the size limit waits for the delay, a full one does not', () => {
    // 2 ahead + the task = 3 of 8: the batch waits until the queue's head has waited the delay (1.5 ms from now).
    expect(completionMs(2, [line(2, 0.5, 8)], 1.5)).to.equal(1.5 + 2 + 0.5 * 3);
    // A busy replica that is free only after the wait: its own time counts, not the wait's.
    expect(completionMs(2, [line(2, 0.5, 8, 4)], 1.5)).to.equal(4 + 2 + 0.5 * 3);
    // 7 ahead + the task fill a batch of 8: it goes as soon as the replica is free.
    expect(completionMs(7, [line(2, 0.5, 8)], 1.5)).to.equal(2 + 0.5 * 8);
    // 9 ahead + the task: a full batch of 8 now, then the task's batch of 2 as the replica frees.
    expect(completionMs(9, [line(2, 0.5, 8)], 1.5)).to.equal(2 + 0.5 * 8 + 2 + 0.5 * 2);
    // A later batch under the limit has a head of its own, whose wait ends later (8 ms from now here).
    expect(completionMs(9, [line(2, 0.5, 8)], 1.5, 8)).to.equal(8 + 2 + 0.5 * 2);
  });

  it('completion estimate - no replicas, no estimate', () => {
    expect(completionMs(3, [])).to.equal(undefined);
  });

  it('completion estimate - a very long queue is taken at the replicas\' throughput past the simulated batches', () => {
    const ms = completionMs(100_000, [line(1, 0, 1)])!;
    // One task per ms: about 100 001 ms, however it is computed.
    expect(ms).to.be.closeTo(100_001, 2);
  });

  it('completion estimate - grows with the queue ahead and with a replica\'s delay, never below the task\'s own batch', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 500 }),
      fc.double({ min: 0, max: 10, noNaN: true }), fc.double({ min: 0.001, max: 2, noNaN: true }),
      fc.integer({ min: 1, max: 64 }), fc.double({ min: 0, max: 20, noNaN: true }),
      (n1, n2, a, b, size, free) => {
        const r = [line(a, b, size, free)];
        const [lo, hi] = n1 <= n2 ? [n1, n2] : [n2, n1];
        expect(completionMs(lo, r)!).to.be.at.most(completionMs(hi, r)! + 1e-9);
        expect(completionMs(lo, [line(a, b, size, free + 1)])!).to.be.at.least(completionMs(lo, r)! - 1e-9);
        expect(completionMs(lo, r)!).to.be.at.least(free + a + b - 1e-9);
      },
    ));
  });

  it('completion estimate - batchSizeFor cuts the batch to what the head can wait for, the margin included, and gives 0 when the head cannot make it alone', () => {
    const line = (size: number): number => 2 + 0.5 * size; // ms
    // 10 ms left: 2 + 0.5·size < 10 for size ≤ 15; with a 3 ms margin, size ≤ 9.
    expect(batchSizeFor(10, 20, line, 0)).to.equal(15);
    expect(batchSizeFor(10, 20, line, 3)).to.equal(9);
    // The sizer's limit (or the queue) caps it.
    expect(batchSizeFor(10, 4, line, 3)).to.equal(4);
    // 4 ms left: a batch of three fits by the estimate (3.5 ms), not even one with a 2 ms margin: dropped.
    expect(batchSizeFor(4, 20, line, 0)).to.equal(3);
    expect(batchSizeFor(4, 20, line, 2)).to.equal(0);
    // Exactly at the deadline is too late.
    expect(batchSizeFor(2.5, 20, line, 0)).to.equal(0);
  });

  it('completion estimate - batchSizeFor is the largest size within the limit whose latency plus margin ends before the head\'s deadline', () => {
    fc.assert(fc.property(
      fc.double({ min: 0, max: 50, noNaN: true }), fc.integer({ min: 1, max: 64 }), fc.double({ min: 0, max: 5, noNaN: true }),
      fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 0, max: 10, noNaN: true }),
      (slack, limit, a, b, margin) => {
        const line = (size: number): number => a + b * size;
        const size = batchSizeFor(slack, limit, line, margin);
        const fits = (n: number): boolean => slack > line(n) + margin;
        if (!fits(1)) return size === 0;
        return size >= 1 && size <= limit && fits(size) && (size === limit || !fits(size + 1));
      },
    ));
  });
});
