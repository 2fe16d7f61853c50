import { expect } from 'chai';

import { countsForFanOut, FanOutLimiter } from '../../services/policy/fan-out-limiter.js';
import { ClipperError } from '../../shared/errors.js';
import type { ModelRef } from '../../services/policy/types.js';

const models: ModelRef[] = ['a', 'b', 'c', 'd'].map((name) => ({ name, version: '1' }));
/** A query that asked the first `n` models; `lastRefused`: the last of them refused as overloaded. */
const rec = (f: FanOutLimiter, app: string, n: number, lastRefused: boolean): void =>
  f.record(app, models.slice(0, n), 4, new Set(lastRefused ? [`${models[n - 1]!.name}:1`] : []));

describe('fan-out limiter', () => {
  it('fan-out limiter - asks every selected model while nothing is overloaded', () => {
    const f = new FanOutLimiter();
    for (let i = 0; i < 1000; i++) rec(f, 'app', 4, false);
    expect(f.limit('app', models)).to.deep.equal(models);
    expect(f.current('app')).to.equal(Infinity);
  });

  it('fan-out limiter - drops the last (lowest-weight) model on each overloaded query, never the first', () => {
    const f = new FanOutLimiter();
    rec(f, 'app', 4, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a', 'b', 'c']);
    rec(f, 'app', 3, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a', 'b']);
    rec(f, 'app', 2, true);
    rec(f, 'app', 1, true);
    rec(f, 'app', 1, true);
    expect(f.limit('app', models).map((m) => m.name)).to.deep.equal(['a']);
  });

  it('fan-out limiter - grows back by one model after recoverAfter clean queries, then lifts the limit', () => {
    const f = new FanOutLimiter({ recoverAfter: 10 });
    rec(f, 'app', 4, true);
    rec(f, 'app', 3, true);
    expect(f.current('app')).to.equal(2);
    for (let i = 0; i < 9; i++) rec(f, 'app', 2, false);
    expect(f.current('app')).to.equal(2);
    rec(f, 'app', 2, false);
    expect(f.current('app')).to.equal(3);
    // one more brings it back to all four: the limit is lifted
    for (let i = 0; i < 10; i++) rec(f, 'app', 3, false);
    expect(f.current('app')).to.equal(Infinity);
  });

  it('fan-out limiter - an overload resets the count of clean queries', () => {
    const f = new FanOutLimiter({ recoverAfter: 10 });
    rec(f, 'app', 4, true);
    for (let i = 0; i < 9; i++) rec(f, 'app', 3, false);
    rec(f, 'app', 3, true);
    for (let i = 0; i < 9; i++) rec(f, 'app', 2, false);
    expect(f.current('app')).to.equal(2);
  });

  it('fan-out limiter - a refusal by a heavier model does not drop the lighter ones', () => {
    const f = new FanOutLimiter();
    // the first (heaviest) model is overloaded: the others keep answering, it stands in by its expected output
    for (let i = 0; i < 50; i++) f.record('app', models, 4, new Set(['a:1']));
    expect(f.current('app')).to.equal(Infinity);
  });

  it('fan-out limiter - concurrent refusals of queries sent under the same limit drop one model, not one each', () => {
    const f = new FanOutLimiter();
    for (let i = 0; i < 5; i++) rec(f, 'app', 4, true);
    expect(f.current('app')).to.equal(3);
  });

  it('fan-out limiter - keeps apps apart', () => {
    const f = new FanOutLimiter();
    rec(f, 'a', 4, true);
    expect(f.current('a')).to.equal(3);
    expect(f.current('b')).to.equal(Infinity);
    expect(f.limit('b', models)).to.have.length(4);
  });

  it('fan-out limiter - a model counts as refusing when its queue was full or backlogged, not for a short-queue refusal, BACKLOGGED or another failure', () => {
    const refusal = (code: 'CLIPPER_ERR_QUEUE_FULL' | 'CLIPPER_ERR_BACKLOGGED' | 'CLIPPER_ERR_MODEL_FAILED', sheddable?: boolean): ClipperError => {
      const e = ClipperError.withoutStack(code);
      if (sheddable !== undefined) e.sheddable = sheddable;
      return e;
    };
    expect(countsForFanOut(refusal('CLIPPER_ERR_QUEUE_FULL'))).to.equal(true); // from a scheduler that does not say
    expect(countsForFanOut(refusal('CLIPPER_ERR_QUEUE_FULL', true))).to.equal(true);
    expect(countsForFanOut(refusal('CLIPPER_ERR_QUEUE_FULL', false))).to.equal(false);
    expect(countsForFanOut(refusal('CLIPPER_ERR_BACKLOGGED', true))).to.equal(false);
    expect(countsForFanOut(refusal('CLIPPER_ERR_MODEL_FAILED'))).to.equal(false);
  });
});
