/**
 * Scaling the prediction cache out: C = 4 cache shards served by two cache processes (shards 0,1
 * and 2,3), a process killed (its keys are answered by the model directly) and started again (its
 * shards cache again). The stack's own cache process owns every shard and has no setting to own
 * fewer, so the suite stops it and runs the two cache processes itself (`--own`).
 */
import path from 'node:path';
import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { bytesKey, initHash, shardOf } from '../../shared/hash.js';
import { actorScript, ChildActor } from '../../shared/process.js';
import { fromNumbers } from '../../shared/tensor.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';
import { schedulerTaskCount } from '../helpers/actor-stats.js';

interface ModelStats { lookups: number; hits: number; approx_hits: number; misses: number; coalesced: number; puts: number }
const NO_STATS: ModelStats = { lookups: 0, hits: 0, approx_hits: 0, misses: 0, coalesced: 0, puts: 0 };

const SHARDS = 4;
const OWNED_A = '0,1';
const OWNED_B = '2,3';

describe('prediction cache shards over several processes (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;
  let cacheA: ChildActor | undefined;
  let cacheB: ChildActor | undefined;

  // 48 distinct inputs, and the shard each one's key falls on (as the ingress computes it).
  const inputs = Array.from({ length: 48 }, (_, i) => [i, 1000 + 7 * i]);
  let shardOfInput: number[] = [];
  const onA = (): number[][] => inputs.filter((_, i) => shardOfInput[i]! < 2);
  const onB = (): number[][] => inputs.filter((_, i) => shardOfInput[i]! >= 2);

  const startCache = (owned: string, n: number): ChildActor => new ChildActor(`cache-${n}`, actorScript('cache'), {
    args: ['--shards', String(SHARDS), '--own', owned],
    env: { ...process.env, NATS_URL: nats.url, CLIPPER_PREFIX: 'clipper', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', CLIPPER_CACHE_SHARDS: String(SHARDS) },
    logFile: path.join(sys.stack.logDir, `cache-${n}.log`),
  });

  /** `$SRV.STATS` of every cache process, by the shards it owns: `sum@1`'s counters in each. */
  const perProcess = async (): Promise<Map<string, ModelStats>> => {
    const out = new Map<string, ModelStats>();
    for await (const s of await nc.services.client().stats('clipper-cache')) {
      const data = s.endpoints?.[0]?.data as { models?: Record<string, ModelStats> } | undefined;
      out.set(s.metadata?.owned ?? '', data?.models?.['sum:1'] ?? NO_STATS);
    }
    return out;
  };
  const statsOf = async (owned: string): Promise<ModelStats> => {
    const s = (await perProcess()).get(owned);
    if (!s) throw new Error(`no cache process owns shards ${owned}`);
    return s;
  };
  const delta = (a: ModelStats, b: ModelStats) => ({ lookups: a.lookups - b.lookups, hits: a.hits - b.hits, misses: a.misses - b.misses, puts: a.puts - b.puts });
  const waitForProcesses = (owned: string[]) => eventually(async () => {
    const got = [...(await perProcess()).keys()].sort();
    return JSON.stringify(got) === JSON.stringify([...owned].sort());
  }, 15_000, `cache processes owning ${owned.join(' and ')}`);
  const schedulerTasks = () => schedulerTaskCount(nc, 'sum');
  /** Asks for every input in turn; each must be the model's answer (never the default, never an error). */
  const askAll = async (list: number[][]): Promise<void> => {
    for (const input of list) {
      const res = await postJson(`${sys.stack.ingressUrl}/calc/predict`, { input });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body, JSON.stringify(res.body)).to.include({ default: false }).and.to.have.deep.property('output', [input[0]! + input[1]!]);
    }
  };

  before(async () => {
    await initHash();
    shardOfInput = inputs.map((x) => shardOf(`sum@1:${bytesKey(fromNumbers('FP64', x).data)}`, SHARDS));
    nats = await startTestNats();
    sys = await startTestStack(nats, { CLIPPER_CACHE_SHARDS: String(SHARDS) });
    nc = await connect({ servers: nats.url });
    // The stack's cache process owns all four shards: replace it by one for 0,1 and one for 2,3.
    await sys.stack.child('cache')!.stop();
    cacheA = startCache(OWNED_A, 1);
    cacheB = startCache(OWNED_B, 2);
    await waitForProcesses([OWNED_A, OWNED_B]);
    await addJsModel(sys, 'sum', 'sum.mjs', { cache: { mode: 'exact' } });
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 5_000_000, candidate_model_names: ['sum'] });
    await waitForModelAnswer(sys, 'calc', { input: [0], cache: false });
  });

  after(async () => {
    await nc?.close();
    await Promise.all([cacheA?.stop(), cacheB?.stop()]);
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('cache shards - keys spread over all four shards, two on each process', () => {
    for (let s = 0; s < SHARDS; s++) expect(shardOfInput.filter((x) => x === s).length, `inputs on shard ${s}`).to.be.greaterThan(0);
  });

  it('cache shards - every repeated input hits, and both cache processes serve lookups and hits', async () => {
    const [a0, b0] = [await statsOf(OWNED_A), await statsOf(OWNED_B)];
    const tasks0 = await schedulerTasks();
    await askAll(inputs);
    await eventually(async () => {
      const [a, b] = [await statsOf(OWNED_A), await statsOf(OWNED_B)];
      return a.puts - a0.puts >= onA().length && b.puts - b0.puts >= onB().length;
    }, 5_000, 'the puts on both processes');
    await askAll(inputs);
    // Only the first round reached the model.
    expect((await schedulerTasks()) - tasks0).to.equal(inputs.length);
    const [a, b] = [delta(await statsOf(OWNED_A), a0), delta(await statsOf(OWNED_B), b0)];
    expect(a).to.deep.equal({ lookups: 2 * onA().length, hits: onA().length, misses: onA().length, puts: onA().length });
    expect(b).to.deep.equal({ lookups: 2 * onB().length, hits: onB().length, misses: onB().length, puts: onB().length });
    expect(a.lookups).to.be.greaterThan(0);
    expect(b.lookups).to.be.greaterThan(0);
  });

  it('cache shards - with one cache process killed its keys are answered by the model, and the other process still hits', async () => {
    cacheB!.kill('SIGKILL');
    await cacheB!.exited;
    await waitForProcesses([OWNED_A]);
    const a0 = await statsOf(OWNED_A);
    const tasks0 = await schedulerTasks();
    await askAll(inputs);
    // Shards 2,3 have no responder: those queries went to the model directly; shards 0,1 all hit.
    expect((await schedulerTasks()) - tasks0).to.equal(onB().length);
    expect(delta(await statsOf(OWNED_A), a0)).to.deep.equal({ lookups: onA().length, hits: onA().length, misses: 0, puts: 0 });
  });

  it('cache shards - a restarted cache process serves its shards again: a miss is put, the repeat hits there', async () => {
    cacheB = startCache(OWNED_B, 3);
    await waitForProcesses([OWNED_A, OWNED_B]);
    const [a0, b0] = [await statsOf(OWNED_A), await statsOf(OWNED_B)];
    expect(b0).to.deep.equal(NO_STATS);
    const tasks0 = await schedulerTasks();
    await askAll(onB());
    await eventually(async () => (await statsOf(OWNED_B)).puts >= onB().length, 5_000, 'the puts on the restarted process');
    await askAll(onB());
    expect((await schedulerTasks()) - tasks0).to.equal(onB().length);
    expect(delta(await statsOf(OWNED_B), b0)).to.deep.equal({ lookups: 2 * onB().length, hits: onB().length, misses: onB().length, puts: onB().length });
    expect(delta(await statsOf(OWNED_A), a0).lookups).to.equal(0);
  });
});
