import { expect } from 'chai';
import fc from 'fast-check';

import { ANSWER_TIME_MIN_SAMPLES, AnswerTimes, tooLittleLeft } from '../../services/ingress/answer-times.js';

describe('answer times', () => {
  const one = { default: false, models: ['m:1'] };

  it('answer times - unknown until 20 answers, then near the 10th percentile of what was observed, per app', () => {
    const t = new AnswerTimes();
    for (let i = 0; i < ANSWER_TIME_MIN_SAMPLES - 1; i++) t.observe('a', one, 5);
    expect(t.fastestMs('a')).to.equal(undefined);
    t.observe('a', one, 5);
    expect(t.fastestMs('a')).to.be.closeTo(5, 0.05);
    expect(t.fastestMs('b')).to.equal(undefined);
    // Answer times uniform on [2, 12) ms: the 10th percentile is 3 ms.
    let x = 0.5;
    for (let i = 0; i < 100_000; i++) {
      x = (x * 9301 + 49297) % 233280;
      t.observe('a', one, 2 + (x / 233280) * 10);
    }
    expect(t.fastestMs('a')).to.be.closeTo(3, 0.3);
  });

  it('answer times - only answers of one model alone count: not default outputs, nor an ensemble\'s combined or anytime answers', () => {
    const t = new AnswerTimes();
    for (let i = 0; i < 50; i++) {
      t.observe('a', { default: true }, 1);
      t.observe('a', { default: false, models: ['m:1', 'n:1'] }, 2);
      t.observe('a', { default: false, models: ['m:1'], missing: ['n:1'] }, 3);
      t.observe('a', { default: false }, 4);
    }
    expect(t.fastestMs('a')).to.equal(undefined);
    for (let i = 0; i < 20; i++) t.observe('a', { default: false, models: ['m:1'], missing: [] }, 6);
    expect(t.fastestMs('a')).to.be.closeTo(6, 0.05);
  });

  it('answer times - too little left: less time than the answer takes, and only when the model can answer within the whole budget', () => {
    // 18 ms budget, answers take 4 ms: a query that waited 15 ms has 3 left.
    expect(tooLittleLeft(15, 18, 4)).to.equal(true);
    expect(tooLittleLeft(13, 18, 4)).to.equal(false);
    expect(tooLittleLeft(14, 18, 4)).to.equal(false);
    // A model slower than the whole budget is not a wait's fault.
    expect(tooLittleLeft(15, 18, 18)).to.equal(false);
    expect(tooLittleLeft(0, 18, 30)).to.equal(false);
    // A query that did not wait always has the budget, which is more than the answer time.
    fc.assert(fc.property(fc.double({ min: 0, max: 1e4, noNaN: true }), fc.double({ min: 0, max: 1e4, noNaN: true }), (budget, answer) => {
      expect(tooLittleLeft(0, budget, answer)).to.equal(false);
    }));
    // A longer wait never makes a query less refused.
    fc.assert(fc.property(fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 1, max: 100, noNaN: true }), fc.double({ min: 0, max: 50, noNaN: true }), (w1, w2, budget, answer) => {
      const [shorter, longer] = w1 <= w2 ? [w1, w2] : [w2, w1];
      if (tooLittleLeft(shorter, budget, answer)) expect(tooLittleLeft(longer, budget, answer)).to.equal(true);
    }));
  });
});
