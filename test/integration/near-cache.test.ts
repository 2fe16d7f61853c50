/**
 * The ingress's near cache of exact-mode predictions (CLIPPER_NEAR_CACHE_BYTES), with real processes:
 * a repeat it has seen is answered in the ingress without reaching the cache shard or the model;
 * approximate-mode models and queries that bypass the cache never use it.
 */
import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { cacheModelStats, schedulerTaskCount } from '../helpers/actor-stats.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack, addJsModel } from '../helpers/stack.js';


describe('near cache in the ingress (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;

  const cacheStats = (model: string) => cacheModelStats(nc, model);
  const schedulerTasks = (model: string) => schedulerTaskCount(nc, model);
  const predict = async (app: string, body: Record<string, unknown>) => (await postJson(`${sys.stack.ingressUrl}/${app}/predict`, body)).body;
  const nearLookups = async (result: 'hit' | 'miss'): Promise<number> => {
    const text = await (await fetch(`${sys.stack.ingressUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`clipper_near_cache_lookups_total{result="${result}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats, { CLIPPER_NEAR_CACHE_BYTES: String(1 << 20) });
    nc = await connect({ servers: nats.url });
    await addJsModel(sys, 'sum', 'sum.mjs', { cache: { mode: 'exact' } });
    await addJsModel(sys, 'sumapprox', 'sum.mjs', { cache: { mode: 'approx', metric: 'l2', tolerance: 0.5 } });
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 5_000_000, candidate_model_names: ['sum'] });
    await sys.admin.call('add_app', { name: 'approx', input_type: 'doubles', input_shape: [3], latency_slo_micros: 5_000_000, candidate_model_names: ['sumapprox'] });
    await waitForModelAnswer(sys, 'calc', { input: [0], cache: false });
    await waitForModelAnswer(sys, 'approx', { input: [0, 0, 0], cache: false });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('near cache - after one evaluation, repeats are answered in the ingress: no shard lookup, no model task', async () => {
    const shardBefore = await cacheStats('sum');
    const tasksBefore = await schedulerTasks('sum');
    const hitsBefore = await nearLookups('hit');
    expect((await predict('calc', { input: [1, 2, 3] })).output).to.deep.equal([6]);
    for (let i = 0; i < 5; i++) expect(await predict('calc', { input: [1, 2, 3] })).to.include({ default: false }).and.to.have.deep.property('output', [6]);
    const shardAfter = await cacheStats('sum');
    expect(shardAfter.lookups - shardBefore.lookups).to.equal(1);
    expect(shardAfter.misses - shardBefore.misses).to.equal(1);
    expect((await schedulerTasks('sum')) - tasksBefore).to.equal(1);
    expect((await nearLookups('hit')) - hitsBefore).to.equal(5);
    // A different input is not served from the near cache.
    expect((await predict('calc', { input: [1, 2, 4] })).output).to.deep.equal([7]);
    await eventually(async () => (await schedulerTasks('sum')) - tasksBefore === 2, 5_000, 'the new input evaluated');
  });

  it('near cache - approximate-mode models always ask their shard (the nearest cached input may differ)', async () => {
    const before = await cacheStats('sumapprox');
    await predict('approx', { input: [1, 1, 1] });
    await eventually(async () => (await cacheStats('sumapprox')).puts > before.puts, 5_000, 'the put');
    await predict('approx', { input: [1, 1, 1] });
    await predict('approx', { input: [1, 1, 1.1] });
    expect((await cacheStats('sumapprox')).lookups - before.lookups).to.equal(3);
  });

  it('near cache - a query with "cache": false bypasses it and reaches the model', async () => {
    await predict('calc', { input: [5, 5] });
    const tasksBefore = await schedulerTasks('sum');
    expect((await predict('calc', { input: [5, 5], cache: false })).output).to.deep.equal([10]);
    expect((await schedulerTasks('sum')) - tasksBefore).to.equal(1);
  });
});
