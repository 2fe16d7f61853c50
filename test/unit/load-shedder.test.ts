import { expect } from 'chai';
import fc from 'fast-check';
import { LoadShedder } from '../../services/ingress/load-shedder.js';

describe('load shedder', () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };
  const record = (s: LoadShedder, app: string, answered: number, refused: number): void => {
    for (let i = 0; i < refused; i++) s.refused(app);
    for (let i = 0; i < answered; i++) s.answered(app);
  };

  it('load shedder - sheds nothing until a model refuses work, and answers alone change nothing', () => {
    const s = new LoadShedder({ random: () => 0 });
    for (let i = 0; i < 100; i++) s.answered('a');
    expect(s.shouldShed('a')).to.equal(false);
    expect(s.probability('a')).to.equal(0);
  });

  it('load shedder - sets the share once per window, half the way (in log terms) to where about the target share is refused downstream, per app', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 200, random: () => 0.2, now: c.now });
    // Half of what got through was refused: letting 0.5 / 0.95 through would leave 5 % refused; the
    // share moves half the way there, to a pass share of √(1 · 0.5 / 0.95).
    record(s, 'a', 50, 50);
    expect(s.probability('a')).to.equal(0); // the window is still open
    c.advance(200);
    const p1 = s.probability('a');
    expect(p1).to.be.closeTo(1 - Math.sqrt(0.5 / 0.95), 1e-9);
    expect(s.shouldShed('a')).to.equal(true);
    expect(s.shouldShed('b')).to.equal(false);
    // At that share the models refuse only the target share: it holds.
    record(s, 'a', 95, 5);
    c.advance(200);
    expect(s.probability('a')).to.be.closeTo(p1, 1e-9);
    // Still too many refused: half the way again.
    record(s, 'a', 60, 40);
    c.advance(200);
    expect(s.probability('a')).to.be.closeTo(1 - Math.sqrt((1 - p1) * ((1 - p1) * 0.6) / 0.95), 1e-9);
  });

  it('load shedder - a window without refusals lets a quarter more through, and the app is forgotten once nothing is shed', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 100, now: c.now });
    record(s, 'a', 10, 90);
    c.advance(100);
    const p1 = s.probability('a');
    record(s, 'a', 100, 0);
    c.advance(100);
    const p2 = s.probability('a');
    // Not halved (p 0.68 → 0.34 would let twice as many through at once): the pass share grows by 1.25.
    expect(1 - p2).to.be.closeTo((1 - p1) * 1.25, 1e-9);
    for (let i = 0; i < 30 && s.probability('a') > 0; i++) {
      record(s, 'a', 100, 0);
      c.advance(100);
    }
    expect(s.probability('a')).to.equal(0);
  });

  it('load shedder - a short burst of refusals among many answers sheds little', () => {
    const c = clock();
    const s = new LoadShedder({ now: c.now });
    record(s, 'a', 280, 20); // 20 refusals in one 200 ms window at 1500/s
    c.advance(200);
    expect(s.probability('a')).to.be.lessThan(0.03);
  });

  it('load shedder - a window of nothing but refusals at most halves the pass share, and a quiet window doubles it instead of judging from too few queries', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0, windowMs: 100, minSamples: 20, now: c.now });
    for (const q of [0.5, 0.25, 0.125]) {
      record(s, 'a', 0, 100);
      c.advance(100);
      expect(1 - s.probability('a')).to.be.closeTo(q, 1e-9);
    }
    s.refused('a'); // one refusal, far too few to judge by
    c.advance(200); // two windows
    expect(1 - s.probability('a')).to.be.closeTo(0.5, 1e-9);
  });

  it('load shedder - near the end of an overload the share at most halves per window, and with a target of 0 a window without refusals opens too', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 100, now: c.now });
    record(s, 'a', 80, 20); // f = 0.2: p = 1 − √(0.8 / 0.95) ≈ 0.082
    c.advance(100);
    const p1 = s.probability('a');
    expect(p1).to.be.closeTo(1 - Math.sqrt(0.8 / 0.95), 1e-9);
    record(s, 'a', 100, 0); // a quarter more would be p = 0; it halves instead
    c.advance(100);
    expect(s.probability('a')).to.be.closeTo(p1 / 2, 1e-9);
    const z = new LoadShedder({ target: 0, windowMs: 100, now: c.now });
    record(z, 'a', 50, 50);
    c.advance(100);
    const pz = z.probability('a');
    record(z, 'a', 100, 0);
    c.advance(100);
    expect(z.probability('a')).to.be.lessThan(pz);
  });

  it('load shedder - never sheds more than its cap, never less than nothing, and moves by at most a halving of the pass share (closing) or of the share (opening) per window', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(200), fc.nat(200)), { minLength: 1, maxLength: 30 }), (windows) => {
      const c = clock();
      const s = new LoadShedder({ maxShed: 0.8, now: c.now });
      let prev = 0;
      for (const [answered, refused] of windows) {
        record(s, 'a', answered, refused);
        c.advance(200);
        const p = s.probability('a');
        expect(p).to.be.at.least(0);
        expect(p).to.be.at.most(0.8);
        expect(1 - p).to.be.at.least((1 - prev) / 2 - 1e-12);
        // (A quiet window, under minSamples, doubles the pass share: the arrivals have dropped.)
        if (p > 0 && answered + refused >= 20) expect(p).to.be.at.least(prev / 2 - 1e-12);
        prev = p;
      }
    }));
  });

  it('load shedder - refuses a target or a cap outside [0, 1)', () => {
    expect(() => new LoadShedder({ target: 1 })).to.throw(RangeError);
    expect(() => new LoadShedder({ target: -0.1 })).to.throw(RangeError);
    expect(() => new LoadShedder({ maxShed: 1 })).to.throw(RangeError);
  });
});
