import { expect } from 'chai';
import fc from 'fast-check';
import { isSheddable } from '../../services/scheduler/refusal.js';
import { SCHEDULER_REFUSAL_CAUSES } from '../../shared/protocol.js';

describe('scheduler refusals', () => {
  const short = { queued: 2, nextBatches: 8 };

  it('refusal - a full queue and a task that arrived late (a backlog upstream) are always sheddable; shutting down is not overload', () => {
    expect(isSheddable('queue_full', short)).to.equal(true);
    expect(isSheddable('arrived_late', short)).to.equal(true);
    expect(isSheddable('shutting_down', { queued: 100, nextBatches: 1 })).to.equal(undefined);
  });

  it('refusal - a task expected late, or that waited too long, is sheddable only when the queue holds the replicas\' next batches', () => {
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
});
