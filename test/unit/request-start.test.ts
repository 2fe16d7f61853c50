import { expect } from 'chai';
import fc from 'fast-check';

import { MAX_REQUEST_START_SKEW_MS, parseRequestStart } from '../../shared/request-start.js';

const NOW = 1_790_000_000_000; // a Unix time in ms

describe('request start (X-Request-Start)', () => {
  it('request start - seconds with a fraction, ms, µs and ns, with or without t=, all read as ms', () => {
    expect(parseRequestStart('t=1789999999.875', NOW)).to.be.closeTo(NOW - 125, 1e-3);
    expect(parseRequestStart('t=1789999999987', NOW)).to.equal(NOW - 13);
    expect(parseRequestStart('1789999999987500', NOW)).to.be.closeTo(NOW - 12.5, 1e-6);
    expect(parseRequestStart(' t=1789999999987500000 ', NOW)).to.be.closeTo(NOW - 12.5, 1e-3);
  });

  it('request start - a header sent twice (joined with a comma) reads as its first stamp', () => {
    expect(parseRequestStart('t=1789999999987, t=1789999999990', NOW)).to.equal(NOW - 13);
  });

  it('request start - missing, malformed or skewed stamps are ignored; a stamp slightly ahead counts as now', () => {
    for (const bad of [undefined, '', 't=', 'abc', 't=-5', '0', 'NaN', 't=1e400']) expect(parseRequestStart(bad, NOW), String(bad)).to.equal(undefined);
    expect(parseRequestStart(String(NOW - MAX_REQUEST_START_SKEW_MS - 1), NOW)).to.equal(undefined);
    expect(parseRequestStart(String(NOW + MAX_REQUEST_START_SKEW_MS + 1), NOW)).to.equal(undefined);
    expect(parseRequestStart(String(NOW + 40), NOW)).to.equal(NOW);
  });

  it('request start - any stamp within the skew bound, in s, ms or µs, reads back as itself, never after now', () => {
    fc.assert(fc.property(fc.integer({ min: -MAX_REQUEST_START_SKEW_MS, max: MAX_REQUEST_START_SKEW_MS }), fc.constantFrom(1e-3, 1, 1e3), (offset, perMs) => {
      const got = parseRequestStart(`t=${(NOW + offset) * perMs}`, NOW)!;
      expect(got).to.be.closeTo(Math.min(NOW, NOW + offset), 1e-3);
    }));
  });
});
