import { expect } from 'chai';
import fc from 'fast-check';
import { RunningQuantile } from '../../shared/running-quantile.js';
import { delayedUpstream, isSheddable, UPSTREAM_MIN_SAMPLES, UPSTREAM_SLACK_MS } from '../../services/scheduler/refusal.js';
import { mulberry32 } from '../../shared/random.js';
import { SCHEDULER_REFUSAL_CAUSES } from '../../shared/protocol.js';

describe('scheduler refusals', () => {
  const short = { queued: 2, nextBatches: 8 };

  it('refusal - a full queue and a task that arrived late (a backlog upstream) are always sheddable; shutting down is not overload', () => {
    expect(isSheddable('queue_full', short)).to.equal(true);
    expect(isSheddable('arrived_late', short)).to.equal(true);
    expect(isSheddable('shutting_down', { queued: 100, nextBatches: 1 })).to.equal(undefined);
  });

  it('refusal - a task expected late, or that waited too long, is sheddable by its queue when that holds the replicas\' next batches', () => {
    for (const cause of ['would_be_late', 'waited_too_long'] as const) {
      expect(isSheddable(cause, short), cause).to.equal(false);
      expect(isSheddable(cause, { queued: 7, nextBatches: 8 }), cause).to.equal(false);
      expect(isSheddable(cause, { queued: 8, nextBatches: 8 }), cause).to.equal(true);
      expect(isSheddable(cause, { queued: 0, nextBatches: 0 }), cause).to.equal(true); // no replica to take any
    }
  });

  it('refusal - a longer queue never makes an overload refusal less sheddable', () => {
    const causes = SCHEDULER_REFUSAL_CAUSES.filter((c) => c !== 'shutting_down');
    fc.assert(fc.property(fc.constantFrom(...causes), fc.nat(100), fc.nat(100), fc.nat(20), (cause, queued, nextBatches, more) => {
      const before = isSheddable(cause, { queued, nextBatches });
      expect(typeof before).to.equal('boolean');
      if (before) expect(isSheddable(cause, { queued: queued + more, nextBatches })).to.equal(true);
    }));
  });

  it('refusal - a task expected late with a short queue is sheddable when it took much longer than usual to reach the scheduler', () => {
    for (const cause of ['would_be_late', 'waited_too_long'] as const) {
      const usual = 2;
      const learnt = { usualUpstreamMs: usual, upstreamSamples: UPSTREAM_MIN_SAMPLES };
      const threshold = 2 * usual + UPSTREAM_SLACK_MS;
      expect(isSheddable(cause, { ...short, ...learnt, upstreamMs: threshold - 0.5 }), cause).to.equal(false);
      expect(isSheddable(cause, { ...short, ...learnt, upstreamMs: threshold }), cause).to.equal(true);
      // Without a budget (no upstream time) or before any usual time, the queue alone decides.
      expect(isSheddable(cause, { ...short, ...learnt }), cause).to.equal(false);
      expect(isSheddable(cause, { ...short, upstreamMs: 50 }), cause).to.equal(false);
      // Nor does a usual time learnt from too few tasks count.
      expect(isSheddable(cause, { ...short, ...learnt, upstreamSamples: UPSTREAM_MIN_SAMPLES - 1, upstreamMs: 50 }), cause).to.equal(false);
    }
    expect(delayedUpstream({ ...short, upstreamMs: UPSTREAM_SLACK_MS, usualUpstreamMs: 0, upstreamSamples: UPSTREAM_MIN_SAMPLES })).to.equal(true);
  });

  it('refusal - a longer trip to the scheduler never makes an overload refusal less sheddable', () => {
    const causes = SCHEDULER_REFUSAL_CAUSES.filter((c) => c !== 'shutting_down');
    fc.assert(fc.property(fc.constantFrom(...causes), fc.nat(100), fc.nat(100), fc.double({ min: 0, max: 50, noNaN: true }), fc.double({ min: 0, max: 20, noNaN: true }), fc.double({ min: 0, max: 20, noNaN: true }),
      (cause, queued, nextBatches, upstreamMs, usualUpstreamMs, more) => {
        const learnt = { usualUpstreamMs, upstreamSamples: UPSTREAM_MIN_SAMPLES };
        if (isSheddable(cause, { queued, nextBatches, upstreamMs, ...learnt })) {
          expect(isSheddable(cause, { queued, nextBatches, upstreamMs: upstreamMs + more, ...learnt })).to.equal(true);
        }
      }));
  });

  it('upstream baseline - tracks the lower quartile of the trip to the scheduler, and follows it when it moves', () => {
    // The scheduler's usual trip: RunningQuantile(0.25, 0.05, { startAtFirst: true }).
    const b = new RunningQuantile(0.25, 0.05, { startAtFirst: true });
    expect(b.known).to.equal(undefined);
    expect(b.count).to.equal(0);
    const rand = mulberry32(7);
    // Uniform on [1, 5): lower quartile 2.
    for (let i = 0; i < 20_000; i++) b.observe(1 + 4 * rand());
    expect(b.known).to.be.closeTo(2, 0.25);
    // Uniform on [3, 11): lower quartile 5.
    for (let i = 0; i < 20_000; i++) b.observe(3 + 8 * rand());
    expect(b.known).to.be.closeTo(5, 0.4);
    expect(b.count).to.equal(40_000);
    b.observe(Number.NaN);
    expect(b.known).to.be.closeTo(5, 0.4);
    expect(b.count).to.equal(40_000); // what is not finite is not counted
  });
});
