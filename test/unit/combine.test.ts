import { expect } from 'chai';
import fc from 'fast-check';

import { argmax, combineOutputs } from '../../services/policy/combine.js';
import { classificationLoss, isClassification, normalizedProbabilities, predictionLoss, regressionLoss } from '../../services/policy/losses.js';
import type { ModelRef } from '../../services/policy/types.js';
import { fromNumbers, fromStrings, toNumbers, type Tensor } from '../../shared/tensor.js';

const a1: ModelRef = { name: 'a', version: '1' };
const b1: ModelRef = { name: 'b', version: '1' };
const c1: ModelRef = { name: 'c', version: '1' };
const f32 = (...v: number[]) => fromNumbers('FP32', v);
const outputs = (o: Record<string, Tensor>) => new Map(Object.entries(o));
const close = (actual: readonly number[], expected: readonly number[], eps = 1e-6) => {
  expect(actual).to.have.length(expected.length);
  actual.forEach((v, i) => expect(v).to.be.closeTo(expected[i]!, eps));
};

describe('losses', () => {
  it('losses - class outputs have more than one element, regression outputs exactly one', () => {
    expect(isClassification(f32(0.2, 0.8))).to.equal(true);
    expect(isClassification(fromNumbers('FP32', [0.2, 0.8], [1, 2]))).to.equal(true);
    expect(isClassification(f32(3.5))).to.equal(false);
    expect(isClassification(fromNumbers('FP64', [3.5], []))).to.equal(false);
    expect(isClassification(fromStrings(['x', 'y']))).to.equal(false);
  });

  it('losses - classification loss is 1 − p(label) of the normalised output', () => {
    expect(classificationLoss([0.2, 0.8], 1)).to.be.closeTo(0.2, 1e-12);
    expect(classificationLoss([1, 3], 0)).to.be.closeTo(0.75, 1e-12); // normalised: (0.25, 0.75)
    expect(classificationLoss([-1, 1, 1], 1)).to.be.closeTo(0.5, 1e-12); // negatives count as 0
    expect(classificationLoss([0, 0], 0)).to.equal(1); // no mass
    expect(classificationLoss([0.5, 0.5], 2)).to.equal(1); // label is not a class of the output
    expect(classificationLoss([0.5, 0.5], 0.5)).to.equal(1);
    expect(classificationLoss([NaN, 1], 1)).to.equal(0);
  });

  it('losses - regression loss is min(1, (y − label)² / scale²)', () => {
    expect(regressionLoss([3], 2.5)).to.be.closeTo(0.25, 1e-12);
    expect(regressionLoss([3], 2.5, 2)).to.be.closeTo(0.0625, 1e-12);
    expect(regressionLoss([10], 0)).to.equal(1);
    expect(regressionLoss([NaN], 0)).to.equal(1);
  });

  it('losses - predictionLoss picks the loss by output length and charges 1 for no usable output', () => {
    expect(predictionLoss(f32(0.1, 0.9), 1, { classificationLoss: 'probability' })).to.be.closeTo(0.1, 1e-6);
    // the default judges the top class only
    expect(predictionLoss(f32(0.1, 0.9), 1)).to.equal(0);
    expect(predictionLoss(f32(0.6, 0.4), 1)).to.equal(1);
    expect(predictionLoss(f32(1.5), 1, { regressionScale: 2 })).to.be.closeTo(0.0625, 1e-12);
    expect(predictionLoss(fromNumbers('INT32', [0, 1, 0]), 1)).to.equal(0);
    expect(predictionLoss(undefined, 0)).to.equal(1);
    expect(predictionLoss(fromStrings(['cat']), 0)).to.equal(1);
    expect(predictionLoss(f32(), 0)).to.equal(1);
    expect(predictionLoss({ dtype: 'FP32', shape: [2], data: new Uint8Array(7) }, 0)).to.equal(1);
  });

  it('losses - every loss is in [0, 1]', () => {
    fc.assert(
      fc.property(fc.array(fc.double(), { minLength: 1, maxLength: 6 }), fc.double(), (values, label) => {
        const l = predictionLoss(fromNumbers('FP64', values), label);
        expect(l).to.be.within(0, 1);
      }),
    );
  });

  it('losses - normalisation gives a distribution or nothing', () => {
    close(normalizedProbabilities([2, 6])!, [0.25, 0.75], 1e-12);
    expect(normalizedProbabilities([0, -1])).to.equal(undefined);
    expect(normalizedProbabilities([Infinity, 1])).to.deep.equal([0, 1]);
  });
});

describe('combine', () => {
  it('combine - class probabilities are the weighted average of the normalised vectors', () => {
    // a: (0.9, 0.1), b: (1, 3) → (0.25, 0.75); weights 3 : 1 → 0.75·a + 0.25·b = (0.7375, 0.2625)
    const c = combineOutputs([a1, b1], [3, 1], outputs({ 'a:1': f32(0.9, 0.1), 'b:1': f32(1, 3) }))!;
    close(toNumbers(c.output), [0.7375, 0.2625]);
    expect(c.output.dtype).to.equal('FP32');
    expect(c.output.shape).to.deep.equal([2]);
    expect(c.models).to.deep.equal(['a:1', 'b:1']);
    expect(c.missing).to.equal(undefined);
    // a's top class 0 is the combined top class, b's is not: confidence = a's weight share 0.75
    expect(c.confidence).to.be.closeTo(0.75, 1e-12);
  });

  it('combine - regression outputs are the weighted mean', () => {
    // weights 1 : 3 → mean = 0.25·2 + 0.75·4 = 3.5; deviation = 0.25·1.5 + 0.75·0.5 = 0.75;
    // confidence = 1 − 0.75 / (3.5 + 1) = 0.8333…
    const c = combineOutputs([a1, b1], [1, 3], outputs({ 'a:1': fromNumbers('FP64', [2]), 'b:1': fromNumbers('FP64', [4]) }))!;
    expect(toNumbers(c.output)).to.deep.equal([3.5]);
    expect(c.output.dtype).to.equal('FP64');
    expect(c.confidence).to.be.closeTo(1 - 0.75 / 4.5, 1e-12);
    // a larger scale makes the same spread look smaller
    const wide = combineOutputs([a1, b1], [1, 3], outputs({ 'a:1': f32(2), 'b:1': f32(4) }), undefined, { regressionScale: 10 })!;
    expect(wide.confidence).to.be.closeTo(1 - 0.75 / 13.5, 1e-9);
  });

  it('combine - regression confidence is clamped to 0 when the answers disagree wildly', () => {
    const c = combineOutputs([a1, b1], [1, 1], outputs({ 'a:1': f32(-100), 'b:1': f32(100) }))!;
    expect(toNumbers(c.output)).to.deep.equal([0]);
    expect(c.confidence).to.equal(0);
  });

  it('combine - missing models are replaced by their expected output and listed', () => {
    const expected = (m: ModelRef) => (m.name === 'b' ? f32(0.2, 0.8) : undefined);
    // a answered (1, 0), b substituted (0.2, 0.8), weights 1 : 1 → (0.6, 0.4)
    const c = combineOutputs([a1, b1], [1, 1], outputs({ 'a:1': f32(1, 0) }), expected)!;
    close(toNumbers(c.output), [0.6, 0.4]);
    expect(c.models).to.deep.equal(['a:1']);
    expect(c.missing).to.deep.equal(['b:1']);
    // confidence counts only the models that answered
    expect(c.confidence).to.equal(1);
  });

  it('combine - substitutes alone give an answer with confidence 0', () => {
    const c = combineOutputs([a1], [1], outputs({}), () => f32(0.3, 0.7))!;
    close(toNumbers(c.output), [0.3, 0.7]);
    expect(c.models).to.deep.equal([]);
    expect(c.missing).to.deep.equal(['a:1']);
    expect(c.confidence).to.equal(0);
  });

  it('combine - models with neither output nor substitute are left out and the weights renormalised', () => {
    // c is missing with no substitute: a (1, 0) and b (0, 1) share the weight 2 : 2 → (0.5, 0.5)
    const c = combineOutputs([a1, b1, c1], [2, 2, 96], outputs({ 'a:1': f32(1, 0), 'b:1': f32(0, 1) }), () => undefined)!;
    close(toNumbers(c.output), [0.5, 0.5]);
    expect(c.models).to.deep.equal(['a:1', 'b:1']);
    // still reported as missing: it did not answer
    expect(c.missing).to.deep.equal(['c:1']);
    // combined top class is 0 (first on ties): only a agrees
    expect(c.confidence).to.be.closeTo(0.5, 1e-12);
  });

  it('combine - is undefined when nothing is left', () => {
    expect(combineOutputs([a1, b1], [1, 1], outputs({}))).to.equal(undefined);
    expect(combineOutputs([], [], outputs({ 'a:1': f32(1) }))).to.equal(undefined);
    expect(combineOutputs([a1], [1], outputs({ 'a:1': f32(0, 0) }))).to.equal(undefined); // no mass
    expect(combineOutputs([a1], [1], outputs({ 'a:1': fromStrings(['x']) }))).to.equal(undefined);
  });

  it('combine - the first real answer fixes the shape; outputs of another length are left out', () => {
    const c = combineOutputs([a1, b1, c1], [1, 1, 1], outputs({
      'a:1': fromNumbers('FP32', [0.5, 0.5, 0, 0], [1, 4]),
      'b:1': f32(1, 0),
      'c:1': fromNumbers('FP32', [0, 0, 0, 1], [1, 4]),
    }))!;
    expect(c.output.shape).to.deep.equal([1, 4]);
    close(toNumbers(c.output), [0.25, 0.25, 0, 0.5]);
    expect(c.models).to.deep.equal(['a:1', 'c:1']);
    // a substitute listed first does not fix the shape when a model answered
    const d = combineOutputs([a1, b1], [1, 1], outputs({ 'b:1': f32(0, 1) }), () => f32(1, 0, 0))!;
    expect(d.output.shape).to.deep.equal([2]);
    // a did not answer: missing, though its substitute of another length was not used
    expect(d.missing).to.deep.equal(['a:1']);
  });

  it('combine - all-zero or invalid weights count as equal weights', () => {
    const c = combineOutputs([a1, b1], [0, NaN], outputs({ 'a:1': f32(1), 'b:1': f32(3) }))!;
    expect(toNumbers(c.output)).to.deep.equal([2]);
    const d = combineOutputs([a1, b1], [-5, 1], outputs({ 'a:1': f32(1), 'b:1': f32(3) }))!;
    expect(toNumbers(d.output)).to.deep.equal([3]);
  });

  it('combine - confidence stays at most 1 when the agreeing shares add up to a rounding error above it', () => {
    // fast-check's counterexample: the shares of these weights sum to 1 + 2^-52
    const parts: [number, boolean][] = [[6.337622354387653e-171, true], [6.631277620598944e-78, false], [8.814781028760511e-173, true]];
    const models = parts.map((_, i) => ({ name: `m${i}`, version: '1' }));
    const outs = new Map(parts.flatMap(([, answered], i) => (answered ? [[`m${i}:1`, fromNumbers('FP64', [0.001, 0, 0])] as const] : [])));
    const c = combineOutputs(models, parts.map(([w]) => w), outs, () => fromNumbers('FP64', [0.001, 0, 0]))!;
    expect(c.confidence).to.equal(1);
  });

  it('combine - the combination of distributions is a distribution, and confidence is in [0, 1]', () => {
    const vec = fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 3, maxLength: 3 }).filter((v) => v.some((x) => x > 1e-3));
    fc.assert(
      fc.property(fc.array(fc.tuple(vec, fc.double({ min: 0, max: 5, noNaN: true }), fc.boolean()), { minLength: 1, maxLength: 5 }), (parts) => {
        const models = parts.map((_, i) => ({ name: `m${i}`, version: '1' }));
        const outs = new Map(parts.flatMap(([v, , answered], i) => (answered ? [[`m${i}:1`, fromNumbers('FP64', v)] as const] : [])));
        const expected = (m: ModelRef) => fromNumbers('FP64', parts[Number(m.name.slice(1))]![0]);
        const c = combineOutputs(models, parts.map(([, w]) => w), outs, expected)!;
        const p = toNumbers(c.output);
        expect(p.reduce((x, y) => x + y, 0)).to.be.closeTo(1, 1e-9);
        p.forEach((x) => expect(x).to.be.at.least(0));
        expect(c.confidence).to.be.within(0, 1);
        expect(c.models.length + (c.missing?.length ?? 0)).to.equal(parts.length);
      }),
    );
  });

  it('combine - argmax takes the first of equal values', () => {
    expect(argmax([0.2, 0.5, 0.5])).to.equal(1);
    expect(argmax([])).to.equal(-1);
  });
});
