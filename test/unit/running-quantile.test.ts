import { expect } from 'chai';

import { RunningQuantile } from '../../shared/running-quantile.js';

describe('running quantile', () => {
  it('running quantile - settles near the asked quantile of what it observes', () => {
    const q = new RunningQuantile(0.9, 0.05);
    // Lateness uniform on [0, 10) ms: the 90th percentile is 9 ms.
    let x = 0.5;
    for (let i = 0; i < 200_000; i++) {
      x = (x * 9301 + 49297) % 233280;
      q.observe((x / 233280) * 10);
    }
    expect(q.ms).to.be.closeTo(9, 0.3);
  });

  it('running quantile -: a batch of late tasks moves the estimate one step, not one step per task', () => {
    const perTask = new RunningQuantile(0.95, 0.5);
    const perBatch = new RunningQuantile(0.95, 0.5);
    const stalled = Array.from({ length: 30 }, () => 15); // one 15 ms stall of a 30-task batch
    for (const l of stalled) perTask.observe(l);
    perBatch.observeBatch(stalled);
    expect(perTask.ms).to.be.closeTo(30 * 0.5 * 0.95, 1e-9);
    expect(perBatch.ms).to.be.closeTo(0.5 * 0.95, 1e-9);
    // Batches of on-time tasks bring it down by (1 − q) steps each, whatever their size.
    perBatch.observeBatch(Array.from({ length: 8 }, () => -1));
    expect(perBatch.ms).to.be.closeTo(0.5 * 0.95 - 0.5 * 0.05, 1e-9);
  });

  it('running quantile - never goes below 0 and ignores values that are not finite', () => {
    const q = new RunningQuantile(0.98, 0.5);
    for (let i = 0; i < 1000; i++) q.observe(-5);
    expect(q.ms).to.equal(0);
    q.observe(NaN);
    q.observe(Infinity);
    expect(q.ms).to.equal(0);
    expect(() => new RunningQuantile(1, 0.5)).to.throw(RangeError);
    expect(() => new RunningQuantile(0.9, 0)).to.throw(RangeError);
  });

  it('running quantile - startAtFirst starts at the first value, unknown before it, and counts what it observed', () => {
    const q = new RunningQuantile(0.1, 0.05, { startAtFirst: true });
    expect(q.known).to.equal(undefined);
    expect(q.ms).to.equal(0);
    q.observe(4);
    q.observe(NaN);
    expect(q.known).to.equal(4);
    expect(q.count).to.equal(1);
    // Below the estimate: down by 0.05 · 0.9; above it: up by 0.05 · 0.1.
    q.observe(1);
    expect(q.known).to.be.closeTo(4 - 0.045, 1e-9);
    q.observe(9);
    expect(q.known).to.be.closeTo(4 - 0.045 + 0.005, 1e-9);
  });
});
