/**
 * The prediction cache with real processes: hits, miss → forward → put, coalescing of identical
 * misses, version changes, per-query bypass.
 */
import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { serviceStats } from '../../shared/nats.js';
import { cacheModelStats, schedulerTaskCount } from '../helpers/actor-stats.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack, addJsModel } from '../helpers/stack.js';


describe('prediction cache (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;

  const cacheStats = (model: string, version = '1') => cacheModelStats(nc, model, version);
  const schedulerTasks = (model: string) => schedulerTaskCount(nc, model);
  const predict = async (app: string, body: Record<string, unknown>) => (await postJson(`${sys.stack.ingressUrl}/${app}/predict`, body)).body;

  before(async () => {
    nats = await startTestNats();
    // Three shards: keys spread over them, and every hit must still find its shard.
    sys = await startTestStack(nats, { CLIPPER_CACHE_SHARDS: '3' });
    nc = await connect({ servers: nats.url });
    const exact = { cache: { mode: 'exact' } };
    await addJsModel(sys, 'sum', 'sum.mjs', exact);
    await addJsModel(sys, 'slow', 'one-second.mjs', exact);
    await addJsModel(sys, 'near', 'sum.mjs', { cache: { mode: 'approx', metric: 'l2', tolerance: 0.5 } });
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 5_000_000, candidate_model_names: ['sum'] });
    await sys.admin.call('add_app', { name: 'near', input_type: 'doubles', input_shape: [3], latency_slo_micros: 5_000_000, candidate_model_names: ['near'] });
    await waitForModelAnswer(sys, 'near', { input: [0, 0, 0], cache: false });
    await sys.admin.call('add_app', { name: 'slow', input_type: 'doubles', latency_slo_micros: 10_000_000, candidate_model_names: ['slow'] });
    // The same 1 s model under a 1.5 s SLO: a query queued behind a busy replica could have been served in time alone.
    await sys.admin.call('add_app', { name: 'patient', input_type: 'doubles', latency_slo_micros: 1_500_000, candidate_model_names: ['slow'] });
    await waitForModelAnswer(sys, 'calc', { input: [0] });
    await waitForModelAnswer(sys, 'slow', { input: [0] });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('cache - a miss is evaluated and put; the same input then hits without reaching the model', async () => {
    const before = await cacheStats('sum');
    const tasksBefore = await schedulerTasks('sum');
    expect((await predict('calc', { input: [1, 2, 3] })).output).to.deep.equal([6]);
    await eventually(async () => (await cacheStats('sum')).puts > before.puts, 5_000, 'the put');
    expect((await predict('calc', { input: [1, 2, 3] })).output).to.deep.equal([6]);
    const after = await cacheStats('sum');
    expect(after.hits - before.hits).to.equal(1);
    expect(after.misses - before.misses).to.equal(1);
    expect((await schedulerTasks('sum')) - tasksBefore).to.equal(1);
  });

  it('cache - identical misses in flight are coalesced into one model evaluation', async () => {
    const tasksBefore = await schedulerTasks('slow');
    const before = await cacheStats('slow');
    const answers = await Promise.all(Array.from({ length: 8 }, () => predict('slow', { input: [4, 5] })));
    for (const a of answers) expect(a).to.include({ default: false }).and.to.have.deep.property('output', [9]);
    expect((await schedulerTasks('slow')) - tasksBefore).to.equal(1);
    expect((await cacheStats('slow')).coalesced - before.coalesced).to.equal(7);
  });

  it('cache - queries parked on a forwarded miss hear its refusal at once, not "expired" at their deadline', async () => {
    await predict('slow', { input: [0], cache: false }); // a fresh latency estimate, so the wait is seen to be hopeless early
    const busy = predict('slow', { input: [7, 7], cache: false }); // takes the only replica for a second
    await eventually(async () => (await serviceStats<{ replicas: { in_flight: number }[] }>(nc, 'clipper-scheduler', (md) => md.model === 'slow'))?.replicas.some((r) => r.in_flight > 0), 5_000, 'a busy replica');
    const before = await cacheStats('slow');
    // The first is forwarded and queued, the second parked on it; the queue refuses the first once hopeless.
    const refused = await Promise.all([0, 1].map(() => postJson(`${sys.stack.ingressUrl}/patient/predict`, { input: [8, 8] })));
    expect((await cacheStats('slow')).coalesced - before.coalesced).to.equal(1);
    for (const r of refused) {
      expect(r.status).to.equal(503);
      expect(r.body).to.include({ code: 'CLIPPER_ERR_BACKLOGGED', retryable: true });
    }
    expect(await busy).to.include({ default: false });
    // nothing was put for that input: the next query evaluates it again
    expect(await predict('slow', { input: [8, 8] })).to.deep.include({ default: false, output: [16] });
  });

  it('cache - with three shards every repeated input hits', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => [i, 100 + i]);
    for (const input of inputs) await predict('calc', { input });
    const before = await cacheStats('sum');
    await eventually(async () => (await cacheStats('sum')).puts >= inputs.length, 5_000, 'the puts');
    for (const input of inputs) expect((await predict('calc', { input })).output).to.deep.equal([input[0]! + input[1]!]);
    expect((await cacheStats('sum')).hits - before.hits).to.equal(inputs.length);
  });

  it('cache - approximate mode answers a nearby input with the cached prediction, and a far one from the model', async () => {
    expect((await predict('near', { input: [1, 2, 3] })).output).to.deep.equal([6]);
    await eventually(async () => (await cacheStats('near')).puts >= 1, 5_000, 'the put');
    // 0.1 away: within the tolerance, so the cached [6] comes back (the model would say 6.1).
    expect((await predict('near', { input: [1.1, 2, 3] })).output).to.deep.equal([6]);
    expect((await cacheStats('near')).approx_hits).to.equal(1);
    // 2 away: evaluated.
    expect((await predict('near', { input: [3, 2, 3] })).output).to.deep.equal([8]);
  });

  it('cache - a query can bypass the cache', async () => {
    const before = await cacheStats('sum');
    const tasksBefore = await schedulerTasks('sum');
    expect((await predict('calc', { input: [1, 2, 3], cache: false })).output).to.deep.equal([6]);
    expect((await cacheStats('sum')).lookups).to.equal(before.lookups);
    expect((await schedulerTasks('sum')) - tasksBefore).to.equal(1);
  });

  it('cache - a new model version never serves the old version\'s predictions', async () => {
    expect((await predict('calc', { input: [10, 1] })).output).to.deep.equal([11]);
    await eventually(async () => (await cacheStats('sum')).puts > 0, 5_000, 'a put');
    await addJsModel(sys, 'sum', 'sum-times-two.mjs', { cache: { mode: 'exact' } }, '2');
    await eventually(async () => JSON.stringify((await predict('calc', { input: [10, 1] })).output) === '[22]', 30_000, 'version 2');
  });
});
