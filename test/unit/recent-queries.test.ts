import { expect } from 'chai';
import { percentile, RecentQueries } from '../../services/ingress/recent-queries.js';

describe('recent queries', () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('recent queries - percentiles are nearest-rank over the latency window', () => {
    expect(percentile([], 0.5)).to.equal(null);
    expect(percentile([1, 2, 3, 4], 0.5)).to.equal(2);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99)).to.equal(99);
    const c = clock();
    const r = new RecentQueries({ latencyWindowS: 2, now: c.now });
    for (let i = 1; i <= 100; i++) r.record('a', 'ok', i, true);
    expect(r.summary('a')).to.include({ p50Ms: 50, p99Ms: 99 });
    c.advance(2_000);
    r.record('a', 'ok', 500, true);
    expect(r.summary('a')).to.include({ p50Ms: 500, p99Ms: 500 });
  });

  it('recent queries - totals by outcome since start, throughput over the rate window', () => {
    const c = clock();
    const r = new RecentQueries({ rateWindowS: 5, now: c.now });
    for (let i = 0; i < 10; i++) r.record('a', 'ok', 1, true);
    r.record('a', 'default', 1);
    r.record('a', 'refused');
    r.record('a', 'error');
    r.record('a', 'forwarded');
    const s = r.summary('a');
    expect(s.total).to.deep.equal({ ok: 10, default: 1, refused: 1, error: 1, forwarded: 1 });
    expect(s.answeredPerS).to.equal(11 / 5);
    c.advance(6_000);
    expect(r.summary('a').answeredPerS).to.equal(0);
    expect(r.summary('a').total.ok).to.equal(10);
  });

  it('recent queries - SLO attainment is the share of the last minute\'s queries a model answered in time', () => {
    const c = clock();
    const r = new RecentQueries({ now: c.now });
    expect(r.summary('a').sloAttainment).to.equal(null);
    r.record('a', 'ok', 1, true);
    r.record('a', 'ok', 1, true);
    r.record('a', 'ok', 500, false);
    r.record('a', 'refused');
    // A forwarded (direct NATS) query's answer is not seen here: it does not count either way.
    r.record('a', 'forwarded');
    expect(r.summary('a').sloAttainment).to.equal(0.5);
    c.advance(61_000);
    r.record('a', 'ok', 1, true);
    expect(r.summary('a')).to.include({ sloAttainment: 1, sloWindowQueries: 1 });
  });

  it('recent queries - keeps a bounded uniform sample of each second\'s latencies', () => {
    const c = clock();
    const r = new RecentQueries({ samplesPerSecond: 100, now: c.now });
    for (let i = 0; i < 10_000; i++) r.record('a', 'ok', i % 2 === 0 ? 1 : 100, true);
    const s = r.summary('a');
    expect(s.p50Ms).to.be.oneOf([1, 100]);
    expect(s.p99Ms).to.equal(100);
    expect(s.answeredPerS).to.equal(10_000 / 5);
  });
});
