import { expect } from 'chai';
import { ReplicaHealth } from '../../services/ingress/replica-health.js';

describe('replica health', () => {
  const states = (h: ReplicaHealth, now: number) => Object.fromEntries(h.rows(now).map((r) => [r.replica, r.state]));

  it('replica health - listed replicas are up, or draining once they said they stop', () => {
    const h = new ReplicaHealth();
    h.observe('m', '1', [{ replica: '0', draining: false }, { replica: '1', draining: true }], 0);
    expect(states(h, 0)).to.deep.equal({ 0: 'up', 1: 'draining' });
  });

  it('replica health - a replica that vanishes while up is dead for a while, then forgotten', () => {
    const h = new ReplicaHealth(1_000);
    h.observe('m', '1', [{ replica: '0', draining: false }, { replica: '1', draining: false }], 0);
    h.observe('m', '1', [{ replica: '0', draining: false }], 500);
    expect(states(h, 500)).to.deep.equal({ 0: 'up', 1: 'dead' });
    expect(states(h, 1_600)).to.deep.equal({ 0: 'up' });
  });

  it('replica health - a replica that vanishes after draining left on purpose', () => {
    const h = new ReplicaHealth();
    h.observe('m', '1', [{ replica: '0', draining: true }], 0);
    h.observe('m', '1', [], 100);
    expect(states(h, 100)).to.deep.equal({});
  });

  it('replica health - a dead replica that comes back is up again', () => {
    const h = new ReplicaHealth();
    h.observe('m', '1', [{ replica: '0', draining: false }], 0);
    h.observe('m', '1', [], 100);
    h.observe('m', '1', [{ replica: '0', draining: false }], 200);
    expect(states(h, 200)).to.deep.equal({ 0: 'up' });
  });
});
