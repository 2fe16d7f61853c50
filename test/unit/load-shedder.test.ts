import { expect } from 'chai';
import { LoadShedder } from '../../services/ingress/load-shedder.js';

describe('load shedder', () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('load shedder - sheds nothing until a model refuses work', () => {
    const s = new LoadShedder({ random: () => 0 });
    expect(s.shouldShed('a')).to.equal(false);
    expect(s.probability('a')).to.equal(0);
  });

  it('load shedder - each refusal raises the shed share and each answer lowers it, per app', () => {
    const c = clock();
    const s = new LoadShedder({ increase: 0.1, decrease: 0.05, random: () => 0.15, now: c.now });
    s.refused('a');
    s.refused('a');
    expect(s.probability('a')).to.be.closeTo(0.2, 1e-9);
    expect(s.shouldShed('a')).to.equal(true);
    expect(s.shouldShed('b')).to.equal(false);
    s.answered('a');
    s.answered('a');
    expect(s.probability('a')).to.be.closeTo(0.1, 1e-9);
    expect(s.shouldShed('a')).to.equal(false);
    s.answered('a');
    s.answered('a');
    expect(s.probability('a')).to.equal(0);
  });

  it('load shedder - never sheds more than its cap', () => {
    const s = new LoadShedder({ increase: 0.5, maxShed: 0.8, now: () => 0 });
    for (let i = 0; i < 10; i++) s.refused('a');
    expect(s.probability('a')).to.equal(0.8);
  });

  it('load shedder - the share decays with time, so a quiet app recovers', () => {
    const c = clock();
    const s = new LoadShedder({ increase: 0.9, maxShed: 0.9, halfLifeMs: 100, now: c.now });
    s.refused('a');
    expect(s.probability('a')).to.be.closeTo(0.9, 1e-9);
    c.advance(100);
    expect(s.probability('a')).to.be.closeTo(0.45, 1e-9);
    c.advance(1_000);
    expect(s.probability('a')).to.equal(0);
  });
});
