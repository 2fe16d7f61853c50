import { expect } from 'chai';
import { profileBatches, warmUpSizes } from '../../services/worker/warm-up.js';

describe('worker warm-up', () => {
  it('warm-up - sizes are powers of two up to the largest batch, and the largest batch itself', () => {
    expect(warmUpSizes(1)).to.deep.equal([1]);
    expect(warmUpSizes(8)).to.deep.equal([1, 2, 4, 8]);
    expect(warmUpSizes(20)).to.deep.equal([1, 2, 4, 8, 16, 20]);
    expect(warmUpSizes(256)).to.have.length(9);
    for (const bad of [0, -1, 2.5, NaN]) expect(() => warmUpSizes(bad), String(bad)).to.throw(RangeError);
  });

  it('warm-up - runs each size `repeats` times and keeps the median compute time', async () => {
    let clock = 0;
    const ran: number[] = [];
    // A model whose batch of n takes 1 ms + 0.1 ms per row, except one slow first run per size.
    const run = async (n: number): Promise<void> => {
      const first = !ran.includes(n);
      ran.push(n);
      clock += (first ? 5 : 1) + 0.1 * n;
    };
    const profile = await profileBatches(run, { maxBatchSize: 8, repeats: 3, now: () => clock });
    expect(ran).to.deep.equal([1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8]);
    expect(profile).to.deep.equal([
      { size: 1, compute_us: 1100 }, { size: 2, compute_us: 1200 }, { size: 4, compute_us: 1400 }, { size: 8, compute_us: 1800 },
    ]);
  });

  it('warm-up - starts no larger size once the time limit is spent, but always profiles size 1', async () => {
    let clock = 0;
    const run = async (n: number): Promise<void> => void (clock += 100 * n); // 100 ms per row
    const profile = await profileBatches(run, { maxBatchSize: 256, repeats: 1, timeLimitMs: 50, now: () => clock });
    expect(profile).to.deep.equal([{ size: 1, compute_us: 100_000 }]);
    const more = await profileBatches(run, { maxBatchSize: 256, repeats: 1, timeLimitMs: 350, now: () => clock });
    expect(more.map((p) => p.size)).to.deep.equal([1, 2, 4]); // 100 + 200 ms spent before 4 starts, 700 before 8
  });

  it('warm-up - a larger size that fails ends the profile there (onFailure told); size 1 failing, or no onFailure, throws; bad repeats are refused', async () => {
    const failing = async (n: number): Promise<void> => {
      if (n > 2) throw new Error('out of memory');
    };
    const told: [number, unknown][] = [];
    const profile = await profileBatches(failing, { maxBatchSize: 8, onFailure: (size, err) => told.push([size, err]) });
    expect(profile.map((p) => p.size)).to.deep.equal([1, 2]);
    expect(told).to.have.length(1);
    expect(told[0]![0]).to.equal(4);
    expect(told[0]![1]).to.be.instanceOf(Error).with.property('message', 'out of memory');
    const rejection = async (run: (n: number) => Promise<void>, onFailure?: () => void): Promise<unknown> => {
      try {
        await profileBatches(run, { maxBatchSize: 8, onFailure });
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(await rejection(failing)).to.be.instanceOf(Error).with.property('message', 'out of memory');
    const broken = async (): Promise<void> => {
      throw new Error('no such input');
    };
    expect(await rejection(broken, () => undefined)).to.be.instanceOf(Error).with.property('message', 'no such input');
    for (const repeats of [0, 1.5]) {
      let refused: unknown;
      try {
        await profileBatches(async () => undefined, { maxBatchSize: 8, repeats });
      } catch (err) {
        refused = err;
      }
      expect(refused, String(repeats)).to.be.instanceOf(RangeError);
    }
  });
});
