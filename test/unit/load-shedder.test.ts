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
  /** One window of app 'a': its answers and refusals, then `ms` later the share it left. */
  const windowOf = (s: LoadShedder, c: ReturnType<typeof clock>, answered: number, refused: number, ms: number): number => {
    record(s, 'a', answered, refused);
    c.advance(ms);
    return s.probability('a');
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
    expect(windowOf(s, c, 95, 5, 200)).to.be.closeTo(p1, 1e-9);
    // Still too many refused: half the way again.
    expect(windowOf(s, c, 60, 40, 200)).to.be.closeTo(1 - Math.sqrt((1 - p1) * ((1 - p1) * 0.6) / 0.95), 1e-9);
  });

  it('load shedder - a window without refusals lets a quarter more through, and the app is forgotten once nothing is shed', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 100, now: c.now });
    const p1 = windowOf(s, c, 10, 90, 100);
    const p2 = windowOf(s, c, 100, 0, 100);
    // Not halved (p 0.5 → 0.25 would let half as many again through at once): the pass share grows by 1.25.
    expect(1 - p2).to.be.closeTo((1 - p1) * 1.25, 1e-9);
    let p = p2;
    for (let i = 0; i < 30 && p > 0; i++) p = windowOf(s, c, 100, 0, 100);
    expect(p).to.equal(0);
  });

  it('load shedder - the refusal whose call closes the last window of an overload opens a new window and counts there', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 100, minSamples: 20, now: c.now });
    windowOf(s, c, 50, 50, 100);
    // Windows without refusals halve the share; stop while it is still kept (in [1e-3, 2e-3)).
    for (let i = 0; i < 40 && s.probability('a') >= 2e-3; i++) windowOf(s, c, 100, 0, 100);
    expect(s.probability('a')).to.be.at.least(1e-3);
    record(s, 'a', 100, 0);
    c.advance(100);
    // This call closes the window (the share halves under 1e-3 and the app is forgotten); its refusal
    // must count in the next window: with the 19 after it, 20 refusals and nothing else.
    record(s, 'a', 0, 20);
    c.advance(100);
    expect(s.probability('a')).to.be.closeTo(0.5, 1e-9);
  });

  it('load shedder - a short burst of refusals among many answers sheds little', () => {
    const c = clock();
    const s = new LoadShedder({ now: c.now });
    // 20 refusals in one 200 ms window at 1500/s
    expect(windowOf(s, c, 280, 20, 200)).to.be.lessThan(0.03);
  });

  it('load shedder - a window of nothing but refusals at most halves the pass share, and a quiet window doubles it instead of judging from too few queries', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0, windowMs: 100, minSamples: 20, now: c.now });
    for (const q of [0.5, 0.25, 0.125]) expect(1 - windowOf(s, c, 0, 100, 100)).to.be.closeTo(q, 1e-9);
    s.refused('a'); // one refusal, far too few to judge by
    c.advance(200); // two windows
    expect(1 - s.probability('a')).to.be.closeTo(0.5, 1e-9);
  });

  it('load shedder - near the end of an overload the share at most halves per window, and with a target of 0 a window without refusals opens too', () => {
    const c = clock();
    const s = new LoadShedder({ target: 0.05, windowMs: 100, now: c.now });
    const p1 = windowOf(s, c, 80, 20, 100); // f = 0.2: p = 1 − √(0.8 / 0.95) ≈ 0.082
    expect(p1).to.be.closeTo(1 - Math.sqrt(0.8 / 0.95), 1e-9);
    // A quarter more would be p = 0; it halves instead.
    expect(windowOf(s, c, 100, 0, 100)).to.be.closeTo(p1 / 2, 1e-9);
    const z = new LoadShedder({ target: 0, windowMs: 100, now: c.now });
    const pz = windowOf(z, c, 50, 50, 100);
    expect(windowOf(z, c, 100, 0, 100)).to.be.lessThan(pz);
  });

  it('load shedder - never sheds more than its cap, never less than nothing, and moves by at most a halving of the pass share (closing) or of the share (opening) per window', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(200), fc.nat(200)), { minLength: 1, maxLength: 30 }), (windows) => {
      const c = clock();
      const s = new LoadShedder({ maxShed: 0.8, now: c.now });
      let prev = 0;
      for (const [answered, refused] of windows) {
        const p = windowOf(s, c, answered, refused, 200);
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
