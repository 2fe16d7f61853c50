import { expect } from 'chai';

import { Exp3Policy, type Exp3State } from '../../services/policy/exp3-policy.js';
import { Exp4Policy, type Exp4State } from '../../services/policy/exp4-policy.js';
import { PolicyStateStore, type AppStateSnapshot } from '../../services/policy/state-store.js';
import type { CorrectionPolicy, ModelRef, Observation, PolicyContext } from '../../services/policy/types.js';
import { mulberry32 } from '../../shared/random.js';
import { fromNumbers, type Tensor } from '../../shared/tensor.js';

const a1: ModelRef = { name: 'a', version: '1' };
const b1: ModelRef = { name: 'b', version: '1' };
const models = [a1, b1];
const ctx = (uid: string, app = 'digits'): PolicyContext => ({ app, uid, models });
const tensors = (o: Record<string, number[]>) => new Map<string, Tensor>(Object.entries(o).map(([k, v]) => [k, fromNumbers('FP64', v)]));
/** a right, b wrong (label 0) — or the reverse. */
const obs = (uid: string, aRight = true): Observation => ({
  uid,
  label: 0,
  outputs: tensors(aRight ? { 'a:1': [1, 0], 'b:1': [0, 1] } : { 'a:1': [0, 1], 'b:1': [1, 0] }),
});
const rng = () => 0.5;

describe('policy state store', () => {
  it('state store - a new app starts from the policy\'s initial state, for any user', () => {
    const store = new PolicyStateStore<Exp4State>();
    const p = new Exp4Policy();
    expect(store.stateFor('digits', 'u1', p)).to.deep.equal({ weights: {}, n: 0 });
    expect(store.stateFor('digits', '', p)).to.deep.equal({ weights: {}, n: 0 });
    expect(store.apps()).to.deep.equal(['digits']);
    expect(store.applied('digits')).to.equal(0);
  });

  it('state store - feedback updates the user\'s state, created as a copy of the population\'s, and the population\'s', () => {
    const store = new PolicyStateStore<Exp4State>();
    const p = new Exp4Policy({ eta: 1 });
    // u1 says a is right: u1 and the population both learn a = 0, b = −1
    store.apply(ctx('u1'), p, obs('u1'), rng);
    expect(store.stateFor('digits', 'u1', p)).to.deep.equal({ weights: { a: 0, b: -1 }, n: 1 });
    expect(store.stateFor('digits', 'nobody', p)).to.deep.equal({ weights: { a: 0, b: -1 }, n: 1 });
    // u2 is new: starts from the population (a = 0, b = −1, n = 1) and says b is right, twice:
    // (−1, −1) re-centred to (0, 0), then (−1, 0). The population learns the same.
    store.apply(ctx('u2'), p, obs('u2', false), rng);
    expect(store.stateFor('digits', 'u2', p)).to.deep.equal({ weights: { a: 0, b: 0 }, n: 2 });
    store.apply(ctx('u2'), p, obs('u2', false), rng);
    expect(store.stateFor('digits', 'u2', p)).to.deep.equal({ weights: { a: -1, b: 0 }, n: 3 });
    expect(store.stateFor('digits', 'u1', p)).to.deep.equal({ weights: { a: 0, b: -1 }, n: 1 });
    expect(store.stateFor('digits', 'nobody', p)).to.deep.equal({ weights: { a: -1, b: 0 }, n: 3 });
    expect(store.applied('digits')).to.equal(3);
    expect(store.userCount('digits')).to.equal(2);
    // each user gets the order their own history says
    expect(p.select(ctx('u1'), store.stateFor('digits', 'u1', p))).to.deep.equal([a1, b1]);
    expect(p.select(ctx('u2'), store.stateFor('digits', 'u2', p))).to.deep.equal([b1, a1]);
  });

  it('state store - the empty uid updates only the population', () => {
    const store = new PolicyStateStore<Exp4State>();
    const p = new Exp4Policy({ eta: 1 });
    store.apply(ctx(''), p, obs(''), rng);
    expect(store.userCount('digits')).to.equal(0);
    expect(store.stateFor('digits', '', p)).to.deep.equal({ weights: { a: 0, b: -1 }, n: 1 });
    expect(store.applied('digits')).to.equal(1);
  });

  it('state store - beyond maxUsersPerApp the least recently updated users are evicted and fall back to the population', () => {
    const store = new PolicyStateStore<Exp4State>({ maxUsersPerApp: 2 });
    const p = new Exp4Policy({ eta: 1 });
    store.apply(ctx('u1'), p, obs('u1', false), rng); // u1: b ahead
    store.apply(ctx('u2'), p, obs('u2'), rng);
    store.apply(ctx('u1'), p, obs('u1', false), rng); // u1 is now the most recently updated
    store.stateFor('digits', 'u2', p); // reading does not count as an update
    store.apply(ctx('u3'), p, obs('u3'), rng); // evicts u2
    expect(store.userCount('digits')).to.equal(2);
    expect(Object.keys(store.snapshot('digits')!.users)).to.deep.equal(['u1', 'u3']);
    expect(store.stateFor('digits', 'u2', p)).to.equal(store.stateFor('digits', '', p));
    expect(store.stateFor('digits', 'u1', p).n).to.equal(2);
    // maxUsersPerApp 0: only the population learns
    const none = new PolicyStateStore<Exp4State>({ maxUsersPerApp: 0 });
    none.apply(ctx('u1'), p, obs('u1'), rng);
    expect(none.userCount('digits')).to.equal(0);
    expect(none.applied('digits')).to.equal(1);
  });

  it('state store - a change of the app\'s policy resets its state', () => {
    const store = new PolicyStateStore<unknown>();
    const exp4 = new Exp4Policy() as CorrectionPolicy<unknown>;
    const exp3 = new Exp3Policy() as CorrectionPolicy<unknown>;
    store.apply(ctx('u1'), exp4, obs('u1'), rng);
    expect(store.applied('digits')).to.equal(1);
    expect(store.stateFor('digits', 'u1', exp3)).to.deep.equal({ weights: {}, n: 0 });
    expect(store.applied('digits')).to.equal(0);
    expect(store.snapshot('digits')!.policy).to.equal('exp3');
    expect(store.userCount('digits')).to.equal(0);
  });

  it('state store - apps are kept apart; reset forgets one', () => {
    const store = new PolicyStateStore<Exp4State>();
    const p = new Exp4Policy();
    store.apply(ctx('u1', 'digits'), p, obs('u1'), rng);
    store.apply(ctx('u1', 'faces'), p, obs('u1', false), rng);
    store.apply(ctx('u1', 'faces'), p, obs('u1', false), rng);
    expect(store.apps().sort()).to.deep.equal(['digits', 'faces']);
    expect(store.applied('faces')).to.equal(2);
    expect(store.stateFor('digits', 'u1', p).n).to.equal(1);
    store.reset('faces');
    expect(store.apps()).to.deep.equal(['digits']);
    expect(store.applied('faces')).to.equal(0);
    expect(store.snapshot('faces')).to.equal(undefined);
  });

  it('state store - a snapshot is a deep copy', () => {
    const store = new PolicyStateStore<Exp4State>();
    const p = new Exp4Policy();
    store.apply(ctx('u1'), p, obs('u1'), rng);
    const snap = store.snapshot('digits')!;
    const before = JSON.stringify(snap);
    store.apply(ctx('u1'), p, obs('u1', false), rng);
    expect(JSON.stringify(snap)).to.equal(before);
    snap.users.u1!.weights.a = 42;
    expect(store.stateFor('digits', 'u1', p).weights.a).to.not.equal(42);
  });

  for (const [label, make] of [['exp3', () => new Exp3Policy()], ['exp4', () => new Exp4Policy()]] as const) {
    it(`state store - ${label} state through snapshot → JSON → restore gives identical selections and combinations`, () => {
      const policy = make() as CorrectionPolicy<Exp3State | Exp4State>;
      const store = new PolicyStateStore<Exp3State | Exp4State>();
      const r = mulberry32(9);
      const uids = ['u1', '__proto__', '123', 'constructor', ''];
      for (let i = 0; i < 200; i++) {
        const uid = uids[i % uids.length]!;
        store.apply(ctx(uid), policy, obs(uid, r() < 0.7), r);
      }
      const wire = JSON.stringify(store.snapshot('digits'));
      const restored = new PolicyStateStore<Exp3State | Exp4State>();
      restored.restore('digits', JSON.parse(wire) as AppStateSnapshot<Exp3State | Exp4State>);
      expect(JSON.stringify(restored.snapshot('digits'))).to.have.length(wire.length);
      expect(restored.applied('digits')).to.equal(200);
      const outs = tensors({ 'a:1': [0.7, 0.3], 'b:1': [0.4, 0.6] });
      for (const uid of [...uids, 'stranger']) {
        const s1 = store.stateFor('digits', uid, policy);
        const s2 = restored.stateFor('digits', uid, policy);
        expect(s2).to.deep.equal(s1);
        const sel1 = policy.select(ctx(uid), s1, mulberry32(1));
        expect(policy.select(ctx(uid), s2, mulberry32(1))).to.deep.equal(sel1);
        expect(policy.combine(ctx(uid), s2, sel1, outs)).to.deep.equal(policy.combine(ctx(uid), s1, sel1, outs));
      }
      // learning continues identically
      store.apply(ctx('u1'), policy, obs('u1'), mulberry32(2));
      restored.apply(ctx('u1'), policy, obs('u1'), mulberry32(2));
      expect(JSON.stringify(restored.snapshot('digits'))).to.equal(JSON.stringify(store.snapshot('digits')));
    });
  }

  it('state store - restore keeps the user bound and rejects what is not a snapshot', () => {
    const store = new PolicyStateStore<Exp4State>({ maxUsersPerApp: 1 });
    const s = { weights: {}, n: 0 };
    store.restore('digits', { policy: 'exp4', population: s, users: { old: s, recent: { weights: { a: -1 }, n: 1 } }, applied: 3 });
    expect(Object.keys(store.snapshot('digits')!.users)).to.deep.equal(['recent']);
    expect(store.applied('digits')).to.equal(3);
    expect(() => store.restore('digits', null as unknown as AppStateSnapshot<Exp4State>)).to.throw(TypeError);
    expect(() => store.restore('digits', { policy: 'exp4', users: {} } as unknown as AppStateSnapshot<Exp4State>)).to.throw(TypeError);
  });

  it('state store - rejects a negative or fractional user bound', () => {
    expect(() => new PolicyStateStore({ maxUsersPerApp: -1 })).to.throw(RangeError);
    expect(() => new PolicyStateStore({ maxUsersPerApp: 1.5 })).to.throw(RangeError);
    expect(new PolicyStateStore().maxUsersPerApp).to.equal(100_000);
  });
});
