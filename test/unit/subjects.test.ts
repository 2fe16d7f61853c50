import { expect } from 'chai';
import fc from 'fast-check';

import { isValidName, NAME_PATTERN, Subjects } from '../../shared/subjects.js';

/** Arbitrary valid name: 1..64 chars of [A-Za-z0-9_-]. */
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'.split('');
const validName = fc.array(fc.constantFrom(...NAME_CHARS), { minLength: 1, maxLength: 64 }).map((cs) => cs.join(''));
const validPrefix = fc.array(validName, { minLength: 1, maxLength: 4 }).map((ts) => ts.join('.'));

function assertWellFormed(subject: string): void {
  const tokens = subject.split('.');
  for (const t of tokens) expect(t, `token of ${subject}`).to.not.equal('');
  expect(subject).to.not.match(/\s/);
  expect(subject).to.not.include('*');
  expect(subject).to.not.include('>');
}

describe('subjects', () => {
  const d = new Subjects();
  const c = new Subjects('acme.prod');

  it('subjects - uses the prefix "clipper" by default', () => {
    expect(d.prefix).to.equal('clipper');
    expect(c.prefix).to.equal('acme.prod');
  });

  it('subjects - builds predict and feedback subjects', () => {
    expect(d.predict('digits')).to.equal('clipper.predict.digits');
    expect(c.predict('digits')).to.equal('acme.prod.predict.digits');
    expect(d.feedback('digits')).to.equal('clipper.feedback.digits');
    expect(c.feedback('digits')).to.equal('acme.prod.feedback.digits');
  });

  it('subjects - builds policy subjects per app and shard', () => {
    expect(d.policy('app-1', 0)).to.equal('clipper.policy.app-1.0');
    expect(c.policy('app_1', 17)).to.equal('acme.prod.policy.app_1.17');
  });

  it('subjects - builds cache get and put subjects per shard', () => {
    expect(d.cacheGet(3)).to.equal('clipper.cache.3.get');
    expect(d.cachePut(3)).to.equal('clipper.cache.3.put');
    expect(c.cacheGet(0)).to.equal('acme.prod.cache.0.get');
    expect(c.cachePut(0)).to.equal('acme.prod.cache.0.put');
  });

  it('subjects - builds batch and worker subjects', () => {
    expect(d.batch('mlp', '1')).to.equal('clipper.batch.mlp.1');
    expect(c.batch('mlp', 'v2')).to.equal('acme.prod.batch.mlp.v2');
    expect(d.worker('mlp', '1', '0')).to.equal('clipper.worker.mlp.1.0');
    expect(c.worker('mlp', 'v2', 'r3')).to.equal('acme.prod.worker.mlp.v2.r3');
  });

  it('subjects - builds event subjects with zero or more id tokens', () => {
    expect(d.events('ingress')).to.equal('clipper.events.ingress');
    expect(d.events('ingress', 'host1')).to.equal('clipper.events.ingress.host1');
    expect(d.events('worker', 'mlp', '1', '0')).to.equal('clipper.events.worker.mlp.1.0');
    expect(c.events('worker', 'mlp', '1', '0')).to.equal('acme.prod.events.worker.mlp.1.0');
  });

  it('subjects - builds the wildcard subjects', () => {
    expect(d.predictAll()).to.equal('clipper.predict.*');
    expect(c.predictAll()).to.equal('acme.prod.predict.*');
    expect(d.policyShard(2)).to.equal('clipper.policy.*.2');
    expect(c.policyShard(0)).to.equal('acme.prod.policy.*.0');
    expect(d.workerEvents('mlp', '1')).to.equal('clipper.events.worker.mlp.1.*');
    expect(c.workerEvents('mlp', '1')).to.equal('acme.prod.events.worker.mlp.1.*');
  });

  it('subjects - a worker event subject matches the worker events wildcard', () => {
    const wildcard = d.workerEvents('mlp', '1').split('.');
    const concrete = d.events('worker', 'mlp', '1', '7').split('.');
    expect(concrete).to.have.length(wildcard.length);
    wildcard.forEach((t, i) => {
      if (t !== '*') expect(concrete[i]).to.equal(t);
    });
  });

  it('subjects - names the registry bucket after the prefix, dots replaced by underscores', () => {
    expect(d.registryBucket()).to.equal('clipper-registry');
    expect(c.registryBucket()).to.equal('acme_prod-registry');
    expect(new Subjects('a.b.c').registryBucket()).to.equal('a_b_c-registry');
  });

  it('subjects - builds the feedback and outcome stream subjects per app and policy shard, and their filters', () => {
    expect(d.feedbackAll()).to.equal('clipper.feedback.*');
    expect(d.feedbackRecord('digits', 3)).to.equal('clipper.feedback.digits.3');
    expect(c.feedbackRecord('digits', 0)).to.equal('acme.prod.feedback.digits.0');
    expect(d.feedbackRecords()).to.equal('clipper.feedback.*.*');
    expect(d.feedbackRecords(2)).to.equal('clipper.feedback.*.2');
    expect(d.feedbackRecords(undefined, 'digits')).to.equal('clipper.feedback.digits.*');
    expect(d.outcome('digits', 3)).to.equal('clipper.outcome.digits.3');
    expect(c.outcome('digits', 0)).to.equal('acme.prod.outcome.digits.0');
    expect(d.outcomes()).to.equal('clipper.outcome.*.*');
    expect(d.outcomes(1)).to.equal('clipper.outcome.*.1');
    expect(d.outcomes(undefined, 'digits')).to.equal('clipper.outcome.digits.*');
    expect(d.outcomes(4, 'digits')).to.equal('clipper.outcome.digits.4');
  });

  it('subjects - a stored observation is never on the public feedback subject, nor in its wildcard', () => {
    const stored = d.feedbackRecord('digits', 0).split('.');
    expect(stored).to.have.length(d.feedbackAll().split('.').length + 1);
    expect(d.feedbackRecords().split('.')).to.have.length(stored.length);
    expect(d.feedback('digits').split('.')).to.have.length(d.feedbackAll().split('.').length);
  });

  it('subjects - builds the policy control subject apart from every app\'s policy subject', () => {
    expect(d.policyControl(0)).to.equal('clipper.control.policy.0');
    expect(c.policyControl(7)).to.equal('acme.prod.control.policy.7');
    // An app named "control" must not receive control requests on its query wildcard.
    expect(d.policy('control', 0)).to.not.equal(d.policyControl(0));
    expect(d.policyShard(0).replace('*', 'control')).to.not.equal(d.policyControl(0));
  });

  it('subjects - names the feedback streams after the prefix, upper-cased with dots as underscores, and the state bucket like the registry', () => {
    expect(d.feedbackStream()).to.equal('CLIPPER_FEEDBACK');
    expect(d.outcomeStream()).to.equal('CLIPPER_OUTCOMES');
    expect(c.feedbackStream()).to.equal('ACME_PROD_FEEDBACK');
    expect(c.outcomeStream()).to.equal('ACME_PROD_OUTCOMES');
    expect(new Subjects('my-co.x').outcomeStream()).to.equal('MY-CO_X_OUTCOMES');
    expect(d.policyStateBucket()).to.equal('clipper-policy-state');
    expect(c.policyStateBucket()).to.equal('acme_prod-policy-state');
  });

  it('subjects - stream names are valid JetStream names for any prefix', () => {
    fc.assert(
      fc.property(validPrefix, (prefix) => {
        const s = new Subjects(prefix);
        for (const n of [s.feedbackStream(), s.outcomeStream()]) expect(n).to.match(/^[A-Z0-9_-]+$/);
      }),
    );
  });

  it('subjects - rejects invalid prefixes', () => {
    for (const bad of ['', '.', 'a.', '.a', 'a..b', 'a b', 'a.*', 'a.>', 'ä', 'a/b']) {
      expect(() => new Subjects(bad), JSON.stringify(bad)).to.throw(/invalid subject prefix/);
    }
  });

  it('subjects - rejects invalid names in every builder', () => {
    const bad = ['', 'a.b', 'a b', '*', '>', 'x'.repeat(65), 'ü', 'a\nb'];
    for (const n of bad) {
      expect(() => d.predict(n), `predict ${JSON.stringify(n)}`).to.throw(/invalid app name/);
      expect(() => d.feedback(n)).to.throw(/invalid app name/);
      expect(() => d.policy(n, 0)).to.throw(/invalid app name/);
      expect(() => d.batch(n, '1')).to.throw(/invalid model name/);
      expect(() => d.batch('m', n)).to.throw(/invalid version name/);
      expect(() => d.worker(n, '1', '0')).to.throw(/invalid model name/);
      expect(() => d.worker('m', n, '0')).to.throw(/invalid version name/);
      expect(() => d.worker('m', '1', n)).to.throw(/invalid replica name/);
      expect(() => d.events(n)).to.throw(/invalid actor name/);
      expect(() => d.events('worker', 'm', n)).to.throw(/invalid id name/);
      expect(() => d.workerEvents(n, '1')).to.throw(/invalid model name/);
      expect(() => d.workerEvents('m', n)).to.throw(/invalid version name/);
      expect(() => d.feedbackRecord(n, 0)).to.throw(/invalid app name/);
      expect(() => d.feedbackRecords(0, n)).to.throw(/invalid app name/);
      expect(() => d.outcome(n, 0)).to.throw(/invalid app name/);
      expect(() => d.outcomes(0, n)).to.throw(/invalid app name/);
    }
  });

  it('subjects - accepts names of exactly 64 characters', () => {
    const n = 'x'.repeat(64);
    expect(d.predict(n)).to.equal(`clipper.predict.${n}`);
  });

  it('subjects - rejects shards that are negative, fractional or not numbers', () => {
    for (const s of [-1, 1.5, NaN, Infinity, -Infinity]) {
      expect(() => d.policy('app', s), String(s)).to.throw(/invalid shard/);
      expect(() => d.policyShard(s)).to.throw(/invalid shard/);
      expect(() => d.cacheGet(s)).to.throw(/invalid shard/);
      expect(() => d.cachePut(s)).to.throw(/invalid shard/);
      expect(() => d.feedbackRecord('app', s)).to.throw(/invalid shard/);
      expect(() => d.feedbackRecords(s)).to.throw(/invalid shard/);
      expect(() => d.outcome('app', s)).to.throw(/invalid shard/);
      expect(() => d.outcomes(s)).to.throw(/invalid shard/);
      expect(() => d.policyControl(s)).to.throw(/invalid shard/);
    }
  });

  it('subjects - isValidName agrees with NAME_PATTERN and refuses non-strings', () => {
    expect(isValidName('abc')).to.equal(true);
    expect(isValidName('A_b-9')).to.equal(true);
    expect(isValidName('')).to.equal(false);
    expect(isValidName('a.b')).to.equal(false);
    expect(isValidName(42)).to.equal(false);
    expect(isValidName(null)).to.equal(false);
    expect(isValidName(undefined)).to.equal(false);
    expect(NAME_PATTERN).to.equal('^[A-Za-z0-9_-]{1,64}$');
  });

  it('subjects - lastToken returns the last token (or the whole subject without dots)', () => {
    expect(Subjects.lastToken('clipper.predict.digits')).to.equal('digits');
    expect(Subjects.lastToken('acme.prod.predict.x')).to.equal('x');
    expect(Subjects.lastToken('single')).to.equal('single');
    expect(Subjects.lastToken('a.')).to.equal('');
  });

  it('subjects - tokenAt returns the token at a 0-based index, undefined past the end', () => {
    const s = 'clipper.worker.mlp.1.0';
    expect(Subjects.tokenAt(s, 0)).to.equal('clipper');
    expect(Subjects.tokenAt(s, 2)).to.equal('mlp');
    expect(Subjects.tokenAt(s, 4)).to.equal('0');
    expect(Subjects.tokenAt(s, 5)).to.equal(undefined);
  });

  it('subjects - lastToken recovers the app from any predict subject', () => {
    fc.assert(
      fc.property(validPrefix, validName, (prefix, app) => {
        expect(Subjects.lastToken(new Subjects(prefix).predict(app))).to.equal(app);
      }),
    );
  });

  it('subjects - any valid name yields subjects with no empty tokens, spaces or wildcards', () => {
    fc.assert(
      fc.property(validPrefix, validName, validName, validName, fc.nat({ max: 1_000_000 }), (prefix, a, b, r, shard) => {
        const s = new Subjects(prefix);
        const subjects = [
          s.predict(a), s.feedback(a), s.policy(a, shard), s.cacheGet(shard), s.cachePut(shard),
          s.feedbackRecord(a, shard), s.outcome(a, shard), s.policyControl(shard),
          s.batch(a, b), s.worker(a, b, r), s.events(a), s.events(a, b, r),
        ];
        for (const subject of subjects) {
          assertWellFormed(subject);
          expect(subject.startsWith(`${prefix}.`)).to.equal(true);
        }
        expect(s.worker(a, b, r).split('.')).to.have.length(prefix.split('.').length + 4);
      }),
    );
  });

  it('subjects - any string with a character outside the name alphabet is refused', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }).filter((x) => !/^[A-Za-z0-9_-]+$/.test(x)), (n) => {
        expect(isValidName(n)).to.equal(false);
        expect(() => d.predict(n)).to.throw();
      }),
    );
  });
});
