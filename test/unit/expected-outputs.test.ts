import { expect } from 'chai';
import fc from 'fast-check';

import { ExpectedOutputTracker, type ExpectedOutputsJSON } from '../../services/policy/expected-outputs.js';
import { fromNumbers, fromStrings, toNumbers } from '../../shared/tensor.js';

const f64 = (...v: number[]) => fromNumbers('FP64', v);
const values = (t: ReturnType<ExpectedOutputTracker['expected']>) => (t ? toNumbers(t) : undefined);

describe('expected outputs', () => {
  it('expected outputs - nothing is expected before a model has answered', () => {
    const t = new ExpectedOutputTracker();
    expect(t.expected('digits', 'mlp')).to.equal(undefined);
    expect(t.count('digits', 'mlp')).to.equal(0);
  });

  it('expected outputs - the expectation is the mean of the outputs seen, per app and model', () => {
    const t = new ExpectedOutputTracker();
    t.observe('digits', 'mlp', f64(1, 0, 0));
    t.observe('digits', 'mlp', f64(0, 1, 0));
    t.observe('digits', 'mlp', f64(0, 0.5, 0.5));
    t.observe('digits', 'svm', f64(0.2, 0.2, 0.6));
    t.observe('other', 'mlp', f64(7));
    const mlp = values(t.expected('digits', 'mlp'))!;
    [1 / 3, 0.5, 1 / 6].forEach((v, i) => expect(mlp[i]).to.be.closeTo(v, 1e-12));
    expect(values(t.expected('digits', 'svm'))).to.deep.equal([0.2, 0.2, 0.6]);
    expect(values(t.expected('other', 'mlp'))).to.deep.equal([7]);
    expect(t.count('digits', 'mlp')).to.equal(3);
  });

  it('expected outputs - keeps the dtype and shape of the outputs', () => {
    const t = new ExpectedOutputTracker();
    t.observe('a', 'm', fromNumbers('FP32', [0.25, 0.75], [1, 2]));
    const e = t.expected('a', 'm')!;
    expect(e.dtype).to.equal('FP32');
    expect(e.shape).to.deep.equal([1, 2]);
    expect(toNumbers(e)).to.deep.equal([0.25, 0.75]);
  });

  it('expected outputs - after `window` outputs the mean turns exponential and follows a drifting model', () => {
    const t = new ExpectedOutputTracker({ window: 4 });
    for (let i = 0; i < 4; i++) t.observe('a', 'm', f64(0));
    // fifth output folds in with weight 1/4: 0 + (8 − 0)/4 = 2; sixth: 2 + (8 − 2)/4 = 3.5
    t.observe('a', 'm', f64(8));
    expect(values(t.expected('a', 'm'))).to.deep.equal([2]);
    t.observe('a', 'm', f64(8));
    expect(values(t.expected('a', 'm'))).to.deep.equal([3.5]);
  });

  it('expected outputs - non-float, non-finite and torn outputs are ignored', () => {
    const t = new ExpectedOutputTracker();
    t.observe('a', 'm', fromNumbers('INT32', [1, 2]));
    t.observe('a', 'm', fromStrings(['x']));
    t.observe('a', 'm', f64(NaN, 1));
    t.observe('a', 'm', { dtype: 'FP32', shape: [2], data: new Uint8Array(7) });
    expect(t.expected('a', 'm')).to.equal(undefined);
  });

  it('expected outputs - an output of another length is ignored until resetAfter of them in a row replace the mean', () => {
    const t = new ExpectedOutputTracker({ resetAfter: 3 });
    t.observe('a', 'm', f64(1, 0));
    t.observe('a', 'm', f64(0.2, 0.3, 0.5));
    t.observe('a', 'm', f64(0.4, 0.1, 0.5));
    expect(values(t.expected('a', 'm'))).to.deep.equal([1, 0]);
    // an output of the current length breaks the run
    t.observe('a', 'm', f64(0, 1));
    expect(values(t.expected('a', 'm'))).to.deep.equal([0.5, 0.5]);
    t.observe('a', 'm', f64(0.2, 0.3, 0.5));
    t.observe('a', 'm', f64(0.4, 0.1, 0.5));
    expect(t.expected('a', 'm')!.shape).to.deep.equal([2]);
    t.observe('a', 'm', f64(0.6, 0.2, 0.2));
    const e = values(t.expected('a', 'm'))!;
    [0.4, 0.2, 0.4].forEach((v, i) => expect(e[i]).to.be.closeTo(v, 1e-12));
    expect(t.count('a', 'm')).to.equal(3);
  });

  it('expected outputs - the expected output of a class-probability model is a distribution', () => {
    const dist = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 })
      .filter((v) => v.some((x) => x > 1e-6))
      .map((v) => v.map((x) => x / v.reduce((s, y) => s + y, 0)));
    fc.assert(
      fc.property(fc.array(dist, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 10 }), (outputs, window) => {
        const t = new ExpectedOutputTracker({ window });
        for (const o of outputs) t.observe('a', 'm', f64(...o));
        const e = values(t.expected('a', 'm'))!;
        expect(e.reduce((s, x) => s + x, 0)).to.be.closeTo(1, 1e-9);
        e.forEach((x) => expect(x).to.be.at.least(-1e-12));
      }),
    );
  });

  it('expected outputs - forApp gives the substitutes in the shape combine takes', () => {
    const t = new ExpectedOutputTracker();
    t.observe('digits', 'mlp', f64(0.5, 0.5));
    const expected = t.forApp('digits');
    expect(values(expected({ name: 'mlp', version: '7' }))).to.deep.equal([0.5, 0.5]);
    expect(expected({ name: 'svm', version: '1' })).to.equal(undefined);
    t.forget('digits', 'mlp');
    expect(expected({ name: 'mlp', version: '7' })).to.equal(undefined);
  });

  it('expected outputs - survive a JSON round trip, options and pending runs included', () => {
    const t = new ExpectedOutputTracker({ window: 7, resetAfter: 2 });
    t.observe('digits', 'mlp', f64(0.1, 0.9));
    t.observe('digits', 'mlp', f64(0.3, 0.7));
    t.observe('digits', 'mlp', f64(1, 0, 0)); // pending: one output of length 3
    t.observe('digits', '__proto__', f64(4));
    const copy = ExpectedOutputTracker.fromJSON(JSON.parse(JSON.stringify(t)) as ExpectedOutputsJSON);
    expect(copy.window).to.equal(7);
    expect(copy.resetAfter).to.equal(2);
    expect(copy.toJSON()).to.deep.equal(t.toJSON());
    expect(values(copy.expected('digits', '__proto__'))).to.deep.equal([4]);
    // the pending run continues: a second length-3 output replaces the mean
    copy.observe('digits', 'mlp', f64(0, 1, 0));
    expect(values(copy.expected('digits', 'mlp'))).to.deep.equal([0.5, 0.5, 0]);
  });

  it('expected outputs - fromJSON skips malformed entries', () => {
    const json = {
      window: 10,
      resetAfter: 3,
      entries: { a: { good: { dtype: 'FP32', shape: [2], mean: [0.5, 0.5], count: 2 }, bad: { dtype: 'INT32', shape: [1], mean: [1], count: 1 }, torn: { dtype: 'FP64', shape: [3], mean: [1], count: 1 } } },
    } as unknown as ExpectedOutputsJSON;
    const t = ExpectedOutputTracker.fromJSON(json);
    expect(values(t.expected('a', 'good'))).to.deep.equal([0.5, 0.5]);
    expect(t.expected('a', 'bad')).to.equal(undefined);
    expect(t.expected('a', 'torn')).to.equal(undefined);
  });

  it('expected outputs - rejects a window or resetAfter that is not a positive integer', () => {
    expect(() => new ExpectedOutputTracker({ window: 0 })).to.throw(RangeError);
    expect(() => new ExpectedOutputTracker({ resetAfter: 1.5 })).to.throw(RangeError);
  });
});
