/**
 * When models straggle, fail or die: the app still answers within its SLO (default output with an
 * explanation, as Clipper does), and the agent brings a killed worker back.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, type NatsConnection } from 'nats';
import { startTestNats, stopTestNats, eventually, type TestNats } from '../helpers/nats.js';
import { postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack, addJsModel } from '../helpers/stack.js';

const msgpack = new Packr({ useRecords: false });

describe('resilience (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    nc = await connect({ servers: nats.url });
    await addJsModel(sys, 'slow', 'slow.mjs');
    await addJsModel(sys, 'broken', 'broken.mjs');
    await addJsModel(sys, 'sum', 'sum.mjs');
    await sys.admin.call('add_app', { name: 'straggler', input_type: 'doubles', default_output: 'fallback', latency_slo_micros: 20_000, candidate_model_names: ['slow'] });
    await sys.admin.call('add_app', { name: 'failing', input_type: 'doubles', default_output: 'fallback', latency_slo_micros: 500_000, candidate_model_names: ['broken'] });
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 500_000, candidate_model_names: ['sum'] });
    await waitForModelAnswer(sys, 'calc', { input: [1] });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('resilience - a model slower than the SLO yields the default output with an explanation', async () => {
    // Wait until the slow model's worker is up, so the fallback is due to the deadline.
    await eventually(async () => (await nc.services.client().info('clipper-worker').then(async (it) => {
      for await (const i of it) if (i.metadata?.model === 'slow') return true;
      return false;
    })), 20_000, 'slow worker');
    const started = Date.now();
    const res = await postJson(`${sys.stack.ingressUrl}/straggler/predict`, { input: [1, 2] });
    const elapsedMs = Date.now() - started;
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ output: 'fallback', default: true });
    expect(res.body.default_explanation).to.match(/slow:1/);
    expect(elapsedMs).to.be.below(300); // the slow model takes 300 ms; the answer came at the deadline
  });

  it('resilience - a model that throws yields the default output naming the failure', async () => {
    const body = await eventually(async () => {
      const b = (await postJson(`${sys.stack.ingressUrl}/failing/predict`, { input: [1] })).body;
      return typeof b.default_explanation === 'string' && b.default_explanation.includes('broken on purpose') ? b : undefined;
    }, 20_000, 'broken model to be evaluated');
    expect(body).to.include({ output: 'fallback', default: true });
  });

  it('resilience - the agent restarts a worker that was killed, and queries are served again', async () => {
    const list = async () => msgpack.unpack((await nc.request('clipper.agent.local.processes', new Uint8Array(0), { timeout: 2_000 })).data) as { key: string; pid: number; running: boolean; restarts: number }[];
    const worker = (await list()).find((p) => p.key === 'worker.sum.1.0')!;
    expect(worker.running).to.equal(true);
    process.kill(worker.pid, 'SIGKILL');
    const back = await eventually(async () => (await list()).find((p) => p.key === 'worker.sum.1.0' && p.running && p.pid !== worker.pid), 20_000, 'worker restart');
    expect(back.restarts).to.equal(1);
    expect((await waitForModelAnswer(sys, 'calc', { input: [2, 3] })).output).to.deep.equal([5]);
  });
});
