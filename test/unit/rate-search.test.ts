import { expect } from 'chai';
import fc from 'fast-check';

import { capacityFromHolds, holdBelow, rateSearch, type SweepStep } from '../../loadtest/sweep.js';

/** A step at `rate` against a target that holds the SLO up to `limit` requests per second. */
function stepAt(rate: number, limit: number): SweepStep {
  const good = rate <= limit;
  const goodput = Math.min(rate, limit);
  return {
    rate_offered: rate, goodput_qps: goodput, p50_ms: 1, p99_ms: good ? 10 : 50, accepted_p99_ms: good ? 10 : 50,
    sent: rate, ok: goodput, rejected: 0, defaults: 0, errors: 0, timeouts: 0, dropped: 0, send_lag_p99_ms: 0, good,
  };
}

/** Runs the search against a target of capacity `limit`; the rates it asked for, in order. */
function search(limit: number, startRate: number, stepFor: (rate: number) => SweepStep = (r) => stepAt(r, limit)): number[] {
  const rates: number[] = [];
  const it = rateSearch({ sloMs: 20, startRate, stepDurationS: 1 });
  let next = it.next();
  while (!next.done) {
    rates.push(next.value);
    if (rates.length > 50) throw new Error('search did not end');
    next = it.next(stepFor(next.value));
  }
  return rates;
}

describe('rate search', () => {
  it('rate search - rises ×1.5, runs the first bad rate twice, then bisects between the last good and the first bad', () => {
    expect(search(1000, 200)).to.deep.equal([200, 300, 450, 675, 1013, 1013, 844, 929, 971]);
  });

  it('rate search - a start rate over capacity halves until a rate is good', () => {
    expect(search(100, 400)).to.deep.equal([400, 400, 600, 200, 100, 150, 125, 113]);
  });

  it('rate search - a bad start rate with good rates above it (slow wake-ups at low load): the search goes on up from there', () => {
    const rates = search(1000, 200, (r) => (r === 200 ? { ...stepAt(r, 1000), good: false } : stepAt(r, 1000)));
    expect(rates).to.deep.equal([200, 200, 300, 450, 675, 1013, 1013, 844, 929, 971]);
  });

  it('rate search - one noisy bad step does not end the rise', () => {
    let first = true;
    const rates = search(1000, 200, (r) => {
      if (r === 450 && first) {
        first = false;
        return { ...stepAt(r, 1000), good: false };
      }
      return stepAt(r, 1000);
    });
    expect(rates.slice(0, 5)).to.deep.equal([200, 300, 450, 450, 675]);
  });

  it('rate search - ends within a few per cent of any capacity above the start rate, never past it', () => {
    fc.assert(fc.property(fc.integer({ min: 60, max: 50_000 }), fc.integer({ min: 50, max: 400 }), (limit, start) => {
      fc.pre(limit >= start);
      const rates = search(limit, start);
      const best = Math.max(...rates.filter((r) => r <= limit));
      // Three bisection steps between a good rate and a bad one 1.5× higher leave a gap of 0.5 / 8 = 6.25 %.
      expect(best).to.be.at.least(limit / 1.07);
      expect(rates.length).to.be.at.most(40);
    }));
  });

  it('hold below - 95 % of what a short hold served, at most 90 % of the rate held', () => {
    expect(holdBelow(2800, 2000)).to.equal(1900);
    expect(holdBelow(2800, 2790)).to.be.closeTo(2520, 1e-9);
    fc.assert(fc.property(fc.double({ min: 1, max: 1e5, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (rate, servedShare) => {
      const next = holdBelow(rate, rate * servedShare);
      expect(next).to.be.at.most(0.9 * rate);
      expect(next).to.be.at.most(0.95 * rate * servedShare + 1e-9);
    }));
  });

  it('capacity from holds - the first good hold\'s goodput, verified; with none good, the last hold\'s, unverified', () => {
    const hold = (rate: number, goodput: number, p99: number, good: boolean): SweepStep => ({ ...stepAt(rate, rate), goodput_qps: goodput, ok: goodput * 20, p99_ms: p99, good });
    expect(capacityFromHolds([hold(2200, 1900, 16, false), hold(1800, 1710, 15, true)])).to.deep.equal({ qps: 1710, verified: true });
    expect(capacityFromHolds([hold(2272, 1891, 17.4, false), hold(1797, 1674, 16.2, false), hold(1590, 1500, 15.6, false)])).to.deep.equal({ qps: 1500, verified: false });
    expect(capacityFromHolds([])).to.deep.equal({ qps: 0, verified: false });
  });
});
