import { expect } from 'chai';

import { FanOutLimiter } from '../../services/policy/fan-out-limiter.js';
import type { ModelRef } from '../../services/policy/types.js';

const models: ModelRef[] = ['a', 'b', 'c', 'd'].map((name) => ({ name, version: '1' }));

describe('fan-out limiter', () => {
  it('fan-out limiter - asks every selected model while nothing is overloaded', () => {
    const f = new FanOutLimiter();
    for (let i = 0; i < 1000; i++) f.record('app', 4, 4, false);
    expect(f.limit('app', models)).to.deep.equal(models);
    expect(f.current('app')).to.equal(Infinity);
  });

  it('fan-out limiter - drops the last (lowest-weight) model on each overloaded query, never the first', () => {
    const f = new FanOutLimiter();
    f.record('app', 4, 4, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a', 'b', 'c']);
    f.record('app', 3, 4, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a', 'b']);
    f.record('app', 2, 4, true);
    f.record('app', 1, 4, true);
    f.record('app', 1, 4, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a']);
  });

  it('fan-out limiter - grows back by one model after recoverAfter clean queries, then lifts the limit', () => {
    const f = new FanOutLimiter({ recoverAfter: 10 });
    f.record('app', 4, 4, true);
    f.record('app', 3, 4, true);
    expect(f.current('app')).to.equal(2);
    for (let i = 0; i < 9; i++) f.record('app', 2, 4, false);
    expect(f.current('app')).to.equal(2);
    f.record('app', 2, 4, false);
    expect(f.current('app')).to.equal(3);
    // one more brings it back to all four: the limit is lifted
    for (let i = 0; i < 10; i++) f.record('app', 3, 4, false);
    expect(f.current('app')).to.equal(Infinity);
  });

  it('fan-out limiter - an overload resets the count of clean queries', () => {
    const f = new FanOutLimiter({ recoverAfter: 10 });
    f.record('app', 4, 4, true);
    for (let i = 0; i < 9; i++) f.record('app', 3, 4, false);
    f.record('app', 3, 4, true);
    for (let i = 0; i < 9; i++) f.record('app', 2, 4, false);
    expect(f.current('app')).to.equal(2);
  });

  it('fan-out limiter - keeps apps apart', () => {
    const f = new FanOutLimiter();
    f.record('a', 4, 4, true);
    expect(f.current('a')).to.equal(3);
    expect(f.current('b')).to.equal(Infinity);
    expect(f.limit('b', models)).to.have.length(4);
  });
});
