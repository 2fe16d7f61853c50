import { expect } from 'chai';
import fc from 'fast-check';

import { FixedBatchSizer } from '../../services/scheduler/batch-sizer.js';
import { DeadlineQueue } from '../../services/scheduler/deadline-queue.js';

interface Item {
  id: number;
  deadlineUnixMs: number;
}

function queueOf(deadlines: readonly number[]): DeadlineQueue<Item> {
  const q = new DeadlineQueue<Item>();
  deadlines.forEach((d, id) => q.push({ id, deadlineUnixMs: d }));
  return q;
}

/** Reference order: by deadline, ties by arrival (a stable sort). */
function edfOrder(deadlines: readonly number[]): number[] {
  return deadlines.map((d, id) => ({ id, d })).sort((a, b) => a.d - b.d || a.id - b.id).map((x) => x.id);
}

describe('deadline queue', () => {
  it('deadline queue - an empty queue has size 0 and pops/peeks undefined', () => {
    const q = new DeadlineQueue<Item>();
    expect(q.size).to.equal(0);
    expect(q.peek()).to.equal(undefined);
    expect(q.pop()).to.equal(undefined);
    expect(q.popExpired(Number.MAX_SAFE_INTEGER)).to.deep.equal([]);
    expect(q.drain()).to.deep.equal([]);
  });

  it('deadline queue - pops the earliest deadline first', () => {
    const q = queueOf([50, 10, 40, 20, 30]);
    expect(q.size).to.equal(5);
    expect(q.peek()!.deadlineUnixMs).to.equal(10);
    expect([1, 2, 3, 4, 5].map(() => q.pop()!.deadlineUnixMs)).to.deep.equal([10, 20, 30, 40, 50]);
    expect(q.size).to.equal(0);
    expect(q.pop()).to.equal(undefined);
  });

  it('deadline queue - peek does not remove', () => {
    const q = queueOf([3, 1, 2]);
    expect(q.peek()!.id).to.equal(1);
    expect(q.peek()!.id).to.equal(1);
    expect(q.size).to.equal(3);
    expect(q.pop()!.id).to.equal(1);
  });

  it('deadline queue - serves equal deadlines first come, first served', () => {
    const q = queueOf([5, 5, 5, 5, 5, 5, 5]);
    expect(q.drain().map((x) => x.id)).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    const mixed = queueOf([7, 3, 7, 3, 7, 3]);
    expect(mixed.drain().map((x) => x.id)).to.deep.equal([1, 3, 5, 0, 2, 4]);
  });

  it('deadline queue - keeps FIFO among equal deadlines across interleaved pushes and pops', () => {
    const q = new DeadlineQueue<Item>();
    q.push({ id: 0, deadlineUnixMs: 10 });
    q.push({ id: 1, deadlineUnixMs: 10 });
    expect(q.pop()!.id).to.equal(0);
    q.push({ id: 2, deadlineUnixMs: 10 });
    q.push({ id: 3, deadlineUnixMs: 5 });
    expect(q.drain().map((x) => x.id)).to.deep.equal([3, 1, 2]);
  });

  it('deadline queue - popExpired removes exactly the tasks at or before now, earliest first', () => {
    const q = queueOf([100, 20, 50, 10, 50, 70]);
    expect(q.popExpired(5)).to.deep.equal([]);
    expect(q.size).to.equal(6);
    expect(q.popExpired(50).map((x) => x.id)).to.deep.equal([3, 1, 2, 4]);
    expect(q.size).to.equal(2);
    expect(q.peek()!.deadlineUnixMs).to.equal(70);
    expect(q.popExpired(1000).map((x) => x.id)).to.deep.equal([5, 0]);
    expect(q.size).to.equal(0);
  });

  it('deadline queue - drain returns everything earliest first and empties the queue', () => {
    const q = queueOf([3, 1, 2]);
    expect(q.drain().map((x) => x.deadlineUnixMs)).to.deep.equal([1, 2, 3]);
    expect(q.size).to.equal(0);
    q.push({ id: 9, deadlineUnixMs: 1 });
    expect(q.size).to.equal(1);
  });

  it('deadline queue - popping everything yields the deadlines sorted, ties in arrival order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (deadlines) => {
        const q = queueOf(deadlines);
        expect(q.size).to.equal(deadlines.length);
        const out: number[] = [];
        for (let x = q.pop(); x; x = q.pop()) out.push(x.id);
        expect(out).to.deep.equal(edfOrder(deadlines));
      }),
    );
  });

  it('deadline queue - matches a sorted reference under any mix of push, pop and popExpired', () => {
    type Op = { kind: 'push'; d: number } | { kind: 'pop' } | { kind: 'expire'; now: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), d: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ kind: fc.constant('pop' as const) }),
      fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: -1, max: 31 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        const q = new DeadlineQueue<Item>();
        let model: Item[] = []; // kept sorted by (deadline, id)
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = { id: id++, deadlineUnixMs: o.d };
            q.push(item);
            model.push(item);
            model.sort((a, b) => a.deadlineUnixMs - b.deadlineUnixMs || a.id - b.id);
          } else if (o.kind === 'pop') {
            expect(q.pop()).to.equal(model.shift());
          } else {
            const expired = model.filter((x) => x.deadlineUnixMs <= o.now);
            model = model.filter((x) => x.deadlineUnixMs > o.now);
            expect(q.popExpired(o.now)).to.deep.equal(expired);
          }
          expect(q.size).to.equal(model.length);
          expect(q.peek()).to.equal(model[0]);
        }
      }),
    );
  });

  it('deadline queue - works with real unix-millisecond deadlines', () => {
    const now = 1_760_000_000_000;
    const q = queueOf([now + 30, now + 1, now - 5, now + 1]);
    expect(q.popExpired(now).map((x) => x.id)).to.deep.equal([2]);
    expect(q.drain().map((x) => x.id)).to.deep.equal([1, 3, 0]);
  });

  it('deadline queue - keeps FIFO among equal infinite deadlines', () => {
    const q = queueOf([Infinity, Infinity, Infinity]);
    expect(q.drain().map((x) => x.id)).to.deep.equal([0, 1, 2]);
  });

  it('deadline queue - orders finite deadlines before an infinite one', () => {
    const q = queueOf([Infinity, 5, -Infinity, 1]);
    expect(q.drain().map((x) => x.id)).to.deep.equal([2, 3, 1, 0]);
  });
});

describe('batch sizer', () => {
  it('batch sizer - FixedBatchSizer always answers its size, whatever it observes', () => {
    const s = new FixedBatchSizer(8);
    expect(s.batchSize()).to.equal(8);
    s.observe(8, 1000);
    expect(s.batchSize()).to.equal(8);
    expect(new FixedBatchSizer(1).batchSize()).to.equal(1);
  });

  it('batch sizer - FixedBatchSizer refuses sizes that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, -Infinity]) {
      expect(() => new FixedBatchSizer(bad), String(bad)).to.throw(/positive integer/);
    }
  });

  it('batch sizer - FixedBatchSizer estimates latency from the mean per-task time it observed', () => {
    const s = new FixedBatchSizer(4);
    expect(s.estimateLatencyUs(4)).to.equal(undefined);
    s.observe(4, 4000);
    expect(s.estimateLatencyUs(4)).to.equal(4000);
    expect(s.estimateLatencyUs(2)).to.equal(2000);
  });
});
