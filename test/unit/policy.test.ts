import { expect } from 'chai';
import fc from 'fast-check';

import { createPolicy, isStatelessPolicy } from '../../services/policy/executor.js';
import { SinglePolicy } from '../../services/policy/single-policy.js';
import { modelKey, type ModelRef, type PolicyContext } from '../../services/policy/types.js';
import type { PolicyName } from '../../shared/registry.js';
import { POLICIES } from '../../shared/registry.js';
import { fromNumbers, type Tensor } from '../../shared/tensor.js';

const ctx = (models: ModelRef[]): PolicyContext => ({ app: 'digits', uid: '0', models });
const a1: ModelRef = { name: 'a', version: '1' };
const b2: ModelRef = { name: 'b', version: '2' };
const c3: ModelRef = { name: 'c', version: '3' };

describe('policy', () => {
  it('policy - modelKey is name:version', () => {
    expect(modelKey(a1)).to.equal('a:1');
    expect(modelKey({ name: 'mlp', version: 'v2' })).to.equal('mlp:v2');
  });

  it('policy - the single policy is named single and is stateless', () => {
    const p = new SinglePolicy();
    expect(p.name).to.equal('single');
    expect(p.stateless).to.equal(true);
  });

  it('policy - single selects the first linked model only', () => {
    const p = new SinglePolicy();
    expect(p.select(ctx([a1, b2, c3]))).to.deep.equal([a1]);
    expect(p.select(ctx([b2]))).to.deep.equal([b2]);
    expect(p.select(ctx([]))).to.deep.equal([]);
  });

  it('policy - single select returns a new array, leaving the context untouched', () => {
    const models = [a1, b2];
    const selected = new SinglePolicy().select(ctx(models));
    selected.push(c3);
    expect(models).to.deep.equal([a1, b2]);
  });

  it('policy - single combine returns the first model\'s output and names it', () => {
    const out = fromNumbers('FP32', [0.9, 0.1]);
    const other = fromNumbers('FP32', [0.2, 0.8]);
    const outputs = new Map<string, Tensor>([['a:1', out], ['b:2', other]]);
    const combined = new SinglePolicy().combine(ctx([a1, b2]), null, [a1], outputs);
    expect(combined).to.not.equal(undefined);
    expect(combined!.output).to.equal(out);
    expect(combined!.models).to.deep.equal(['a:1']);
  });

  it('policy - single combine is undefined when the first model\'s output is missing', () => {
    const p = new SinglePolicy();
    const other = fromNumbers('FP32', [1]);
    expect(p.combine(ctx([a1, b2]), null, [], new Map([['b:2', other]]))).to.equal(undefined);
    expect(p.combine(ctx([a1]), null, [], new Map())).to.equal(undefined);
    expect(p.combine(ctx([]), null, [], new Map([['a:1', other]]))).to.equal(undefined);
    // a different version of the same model does not count
    expect(p.combine(ctx([a1]), null, [], new Map([['a:2', other]]))).to.equal(undefined);
  });

  it('policy - single selects exactly the model whose output it combines, for any links', () => {
    const ref = fc.record({ name: fc.constantFrom('a', 'b', 'c'), version: fc.constantFrom('1', '2') });
    fc.assert(
      fc.property(fc.array(ref, { maxLength: 5 }), (models) => {
        const p = new SinglePolicy();
        const c = ctx(models);
        const selected = p.select(c);
        const outputs = new Map(selected.map((m) => [modelKey(m), fromNumbers('INT32', [1])]));
        const combined = p.combine(c, null, selected, outputs);
        if (models.length === 0) {
          expect(combined).to.equal(undefined);
        } else {
          expect(combined!.models).to.deep.equal([modelKey(models[0]!)]);
          expect(combined!.output).to.equal(outputs.get(modelKey(models[0]!)));
        }
      }),
    );
  });

  it('policy - createPolicy builds a fresh instance of each known policy', () => {
    for (const name of POLICIES) {
      const p = createPolicy(name);
      expect(p.name).to.equal(name);
      expect(createPolicy(name)).to.not.equal(p);
    }
    expect(createPolicy('single')).to.be.instanceOf(SinglePolicy);
  });

  it('policy - createPolicy falls back to single for an unknown name', () => {
    expect(createPolicy('bandit' as PolicyName)).to.be.instanceOf(SinglePolicy);
  });

  it('policy - isStatelessPolicy is true for single', () => {
    expect(isStatelessPolicy('single')).to.equal(true);
  });
});
