import { expect } from 'chai';
import fc from 'fast-check';

import { EXP4_DEFAULTS, Exp4Policy, type Exp4State } from '../../services/policy/exp4-policy.js';
import { modelKey, type ModelRef, type Observation, type PolicyContext } from '../../services/policy/types.js';
import { mulberry32 } from '../../shared/random.js';
import { fromNumbers, toNumbers, type Tensor } from '../../shared/tensor.js';

const a1: ModelRef = { name: 'a', version: '1' };
const b1: ModelRef = { name: 'b', version: '1' };
const c1: ModelRef = { name: 'c', version: '1' };
const ctx = (models: ModelRef[]): PolicyContext => ({ app: 'digits', uid: 'u', models });
const tensors = (outputs: Record<string, number[]>) => new Map(Object.entries(outputs).map(([k, v]) => [k, fromNumbers('FP64', v)]));
const obs = (label: number, outputs: Record<string, number[]>): Observation => ({ uid: 'u', label, outputs: tensors(outputs) });
const noRng = () => {
  throw new Error('exp4 needs no randomness');
};

describe('exp4 policy', () => {
  it('exp4 - is named exp4 and keeps state', () => {
    const p = new Exp4Policy();
    expect(p.name).to.equal('exp4');
    expect(p.stateless).to.equal(false);
    expect(p.initialState()).to.deep.equal({ weights: {}, n: 0 });
    expect(p.eta).to.equal(EXP4_DEFAULTS.eta);
  });

  it('exp4 - update and combine follow the hand-computed Exp4 step', () => {
    const p = new Exp4Policy({ eta: 0.5, maxSpread: Math.log(1000), classificationLoss: 'probability' });
    const c = ctx([a1, b1]);
    // a says (0.9, 0.1), b says (0.4, 0.6), label 0: ℓ_a = 0.1, ℓ_b = 0.6.
    // log w = (0 − 0.5·0.1, 0 − 0.5·0.6) = (−0.05, −0.3); re-centred on a: (0, −0.25).
    const s = p.update(c, p.initialState(), obs(0, { 'a:1': [0.9, 0.1], 'b:1': [0.4, 0.6] }), noRng);
    expect(s.n).to.equal(1);
    expect(s.weights.a).to.equal(0);
    expect(s.weights.b).to.be.closeTo(-0.25, 1e-12);
    // softmax(0, −0.25) = 1/(1 + e^−0.25), e^−0.25/(1 + e^−0.25) = (0.5621765009, 0.4378234991)
    const [wa, wb] = p.weightsOf(c.models, s);
    expect(wa).to.be.closeTo(0.5621765009, 1e-9);
    expect(wb).to.be.closeTo(0.4378234991, 1e-9);
    // combined = 0.5621765009·(0.9, 0.1) + 0.4378234991·(0.4, 0.6) = (0.6810882504, 0.3189117496)
    const combined = p.combine(c, s, p.select(c, s), tensors({ 'a:1': [0.9, 0.1], 'b:1': [0.4, 0.6] }))!;
    const out = toNumbers(combined.output);
    expect(combined.output.dtype).to.equal('FP64');
    expect(out[0]).to.be.closeTo(0.6810882504, 1e-9);
    expect(out[1]).to.be.closeTo(0.3189117496, 1e-9);
    expect(combined.models).to.deep.equal(['a:1', 'b:1']);
    // top class 0: only a agrees, confidence = a's weight 0.5621765009
    expect(combined.confidence).to.be.closeTo(0.5621765009, 1e-9);
  });

  it('exp4 - models that did not answer keep their weight', () => {
    const p = new Exp4Policy({ eta: 1, classificationLoss: 'probability' });
    // ℓ_a = 0.5, ℓ_c = 0 (b missing): log w = (−0.5, 0, 0), max 0: unchanged
    const s = p.update(ctx([a1, b1, c1]), p.initialState(), obs(1, { 'a:1': [0.5, 0.5], 'c:1': [0, 1] }), noRng);
    expect(s.weights).to.deep.equal({ a: -0.5, b: 0, c: 0 });
  });

  it('exp4 - log-weights stay within maxSpread of the leader and the leader is at 0', () => {
    const p = new Exp4Policy({ eta: 5, maxSpread: 2 });
    let s = p.update(ctx([a1, b1]), p.initialState(), obs(0, { 'a:1': [0, 1], 'b:1': [1, 0] }), noRng);
    expect(s.weights).to.deep.equal({ a: -2, b: 0 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 30 }), (steps) => {
        for (const [x, y] of steps) s = p.update(ctx([a1, b1, c1]), s, obs(0, { 'a:1': [x, 1 - x], 'b:1': [y, 1 - y], 'c:1': [0.5, 0.5] }), noRng);
        const w = Object.values(s.weights);
        expect(Math.max(...w)).to.equal(0);
        expect(Math.min(...w)).to.be.at.least(-2);
      }),
    );
  });

  it('exp4 - select returns every model, heaviest first, ties in link order', () => {
    const p = new Exp4Policy();
    const s: Exp4State = { weights: { a: -2, b: 0, c: -1 }, n: 3 };
    expect(p.select(ctx([a1, b1, c1]), s)).to.deep.equal([b1, c1, a1]);
    expect(p.select(ctx([a1, b1, c1]), p.initialState())).to.deep.equal([a1, b1, c1]);
    // a new model d starts at the mean −1: ties with c, after it in link order
    const d1 = { name: 'd', version: '1' };
    expect(p.select(ctx([d1, a1, b1, c1]), s)).to.deep.equal([b1, d1, c1, a1]);
  });

  it('exp4 - a degraded query combines the kept prefix with weights renormalised over it', () => {
    const p = new Exp4Policy();
    const s: Exp4State = { weights: { a: 0, b: -Math.log(3), c: -5 }, n: 3 };
    const c = ctx([a1, b1, c1]);
    const kept = p.select(c, s).slice(0, 2); // a, b with weights 3 : 1
    const combined = p.combine(c, s, kept, tensors({ 'a:1': [1, 0], 'b:1': [0, 1], 'c:1': [0, 1] }))!;
    const out = toNumbers(combined.output);
    expect(out[0]).to.be.closeTo(0.75, 1e-12);
    expect(out[1]).to.be.closeTo(0.25, 1e-12);
    expect(combined.models).to.deep.equal(['a:1', 'b:1']);
  });

  it('exp4 - missing outputs are replaced by expected outputs', () => {
    const p = new Exp4Policy();
    const s: Exp4State = { weights: { a: 0, b: 0 }, n: 1 };
    const c = ctx([a1, b1]);
    const expected = (m: ModelRef): Tensor | undefined => (m.name === 'b' ? fromNumbers('FP32', [0, 1]) : undefined);
    const combined = p.combine(c, s, [a1, b1], tensors({ 'a:1': [1, 0] }), expected)!;
    expect(toNumbers(combined.output)).to.deep.equal([0.5, 0.5]);
    expect(combined.models).to.deep.equal(['a:1']);
    expect(combined.missing).to.deep.equal(['b:1']);
    expect(p.combine(c, s, [a1, b1], new Map())).to.equal(undefined);
  });

  it('exp4 - regression outputs are averaged by weight', () => {
    const p = new Exp4Policy({ eta: 1, regressionScale: 2 });
    // ℓ_a = min(1, (3 − 2)²/4) = 0.25, ℓ_b = 0: log w = (−0.25, 0)
    const s = p.update(ctx([a1, b1]), p.initialState(), obs(2, { 'a:1': [3], 'b:1': [2] }), noRng);
    expect(s.weights).to.deep.equal({ a: -0.25, b: 0 });
    const wa = Math.exp(-0.25) / (1 + Math.exp(-0.25));
    const combined = p.combine(ctx([a1, b1]), s, [b1, a1], tensors({ 'a:1': [3], 'b:1': [2] }))!;
    expect(toNumbers(combined.output)[0]).to.be.closeTo(2 + wa, 1e-12);
  });

  it('exp4 - state survives a JSON round trip: same selection and combination', () => {
    const p = new Exp4Policy();
    const c = ctx([a1, b1, c1]);
    const rng = mulberry32(5);
    let s = p.initialState();
    for (let i = 0; i < 50; i++) {
      const x = rng();
      s = p.update(c, s, obs(0, { 'a:1': [x, 1 - x], 'b:1': [rng(), rng()], 'c:1': [0.5, 0.5] }), noRng);
    }
    const copy = JSON.parse(JSON.stringify(s)) as Exp4State;
    const outs = tensors({ 'a:1': [0.7, 0.3], 'b:1': [0.2, 0.8], 'c:1': [0.5, 0.5] });
    expect(p.select(c, copy)).to.deep.equal(p.select(c, s));
    expect(p.combine(c, copy, p.select(c, copy), outs)).to.deep.equal(p.combine(c, s, p.select(c, s), outs));
  });

  it('exp4 - with the defaults the best model dominates, and a model that breaks loses its weight within a few updates', () => {
    // Full information: every model's loss on every observation (Bernoulli 3/5/7/10%); m0 breaks after 2000.
    const accuracy = [0.97, 0.95, 0.93, 0.9];
    const models = accuracy.map((_, i) => ({ name: `m${i}`, version: '1' }));
    const right = fromNumbers('FP32', [1, 0]);
    const wrong = fromNumbers('FP32', [0, 1]);
    const p = new Exp4Policy();
    const c: PolicyContext = { app: 'sim', uid: '', models };
    const env = mulberry32(3);
    let s = p.initialState();
    let stable = 0;
    let dropped = Infinity;
    let correct = 0;
    for (let t = 0; t < 2600; t++) {
      const acc = t < 2000 ? accuracy : [0, ...accuracy.slice(1)];
      const w = p.weightsOf(models, s);
      if (t >= 1500 && t < 2000) stable += w[0]! / 500;
      if (t >= 2000 && dropped === Infinity && w[0]! < 0.05) dropped = t - 2000;
      const outputs = new Map(models.map((m, i) => [modelKey(m), env() < acc[i]! ? right : wrong]));
      if (t >= 2100 && toNumbers(p.combine(c, s, p.select(c, s), outputs)!.output)[0]! > 0.5) correct += 1;
      s = p.update(c, s, { uid: '', label: 0, outputs }, noRng);
    }
    expect(stable).to.be.greaterThan(0.6);
    // it falls ≈ η = 0.1 per update below the runner-up: (gap ≈ 2 + ln 20) / 0.1 ≈ 50 updates
    expect(dropped).to.be.at.most(80);
    expect(correct / 500).to.be.greaterThan(0.9);
  });

  it('exp4 - rejects options out of range', () => {
    expect(() => new Exp4Policy({ eta: -0.1 })).to.throw(RangeError);
    expect(() => new Exp4Policy({ maxSpread: NaN })).to.throw(RangeError);
  });
});
