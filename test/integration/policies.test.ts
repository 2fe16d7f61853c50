/**
 * Multi-model apps with real processes: exp4 combines every linked model, exp3 answers from one,
 * and an anytime answer at the deadline stands in a straggler's expected output for its own.
 */
import { expect } from 'chai';
import { connect, type NatsConnection } from 'nats';
import { serviceStats } from '../../shared/nats.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

const close = (a: unknown, b: number[]): void => {
  expect(a).to.be.an('array').with.length(b.length);
  (a as number[]).forEach((v, i) => expect(v).to.be.closeTo(b[i]!, 1e-6));
};

describe('correction policies (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;
  const tasks = async (model: string): Promise<number> =>
    (await serviceStats<{ tasks: number }>(nc, 'clipper-scheduler', (md) => md.model === model))?.tasks ?? 0;
  const predict = async (app: string, body: Record<string, unknown> = { input: [1, 2] }) => postJson(`${sys.stack.ingressUrl}/${app}/predict`, body);
  const addApp = (name: string, policy: string, models: string[], sloMs: number) =>
    sys.admin.call('add_app', { name, input_type: 'doubles', policy, latency_slo_micros: sloMs * 1000, default_output: 'none', candidate_model_names: models });

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    await addJsModel(sys, 'first', 'vote-first.mjs');
    await addJsModel(sys, 'second', 'vote-second.mjs');
    await addJsModel(sys, 'laggard', 'vote-slow.mjs');
    await addJsModel(sys, 'steady', 'vote-steady.mjs', { batch_size: 1 });
    await addApp('both', 'exp4', ['first', 'second'], 2_000);
    await addApp('pick', 'exp3', ['first', 'second'], 2_000);
    await addApp('lagging', 'exp4', ['first', 'laggard'], 150);
    await addApp('busy', 'exp4', ['first', 'steady'], 150);
    await waitForModelAnswer(sys, 'both', { input: [1, 2] });
    // every linked model loaded: a query misses none of them
    await eventually(async () => (await predict('both')).body.missing_models === undefined, 30_000, 'both models of "both" answering');
    await waitForModelAnswer(sys, 'pick', { input: [1, 2] });
    await waitForModelAnswer(sys, 'lagging', { input: [1, 2] });
    await eventually(async () => (await predict('busy')).body.missing_models === undefined, 30_000, 'both models of "busy" answering');
    nc = await connect({ servers: nats.url });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('policies - exp4 with no feedback yet averages every linked model and reports their agreement', async () => {
    const res = await predict('both');
    expect(res.status).to.equal(200);
    expect(res.body.default).to.equal(false);
    // equal weights: (0.9, 0.1) and (0.2, 0.8) average to (0.55, 0.45)
    close(res.body.output, [0.55, 0.45]);
    // only the first model agrees with the combined class 0: half the weight
    expect(res.body.confidence).to.be.closeTo(0.5, 1e-6);
    expect(res.body).to.not.have.property('missing_models');
  });

  it('policies - exp3 answers each query from exactly one of the linked models', async () => {
    const seen = new Set<string>();
    const before = (await tasks('first')) + (await tasks('second'));
    for (let i = 0; i < 40; i++) {
      const res = await predict('pick');
      expect(res.status).to.equal(200);
      expect(res.body.default).to.equal(false);
      const out = res.body.output as number[];
      expect([[0.9, 0.1], [0.2, 0.8]].some((o) => Math.abs(o[0]! - out[0]!) < 1e-6)).to.equal(true);
      seen.add(out[0]!.toFixed(1));
    }
    // with equal weights both models get picked
    expect(seen.size).to.equal(2);
    // and each query cost one model evaluation
    expect((await tasks('first')) + (await tasks('second')) - before).to.equal(40);
  });

  it('policies - a straggler misses the deadline: the answer comes from the others and names it as missing', async () => {
    const res = await predict('lagging');
    expect(res.status).to.equal(200);
    expect(res.body.default).to.equal(false);
    expect(res.body.missing_models).to.deep.equal(['laggard:1']);
  });

  it('policies - once a straggler has answered late, its expected output stands in for it', async () => {
    // the warm-up queries' late answers have arrived by now
    await new Promise((resolve) => setTimeout(resolve, 600));
    const res = await predict('lagging');
    expect(res.status).to.equal(200);
    expect(res.body.missing_models).to.deep.equal(['laggard:1']);
    // first (0.9, 0.1) and laggard's running mean (0.2, 0.8), equally weighted
    close(res.body.output, [0.55, 0.45]);
    // only the model that answered counts for agreement
    expect(res.body.confidence).to.equal(1);
  });

  it('policies - a model that loses a task to waiting behind its own busy replica stays asked (fan-out not cut)', async () => {
    // steady takes 100 ms a batch, one task at a time; the second query waits behind the first until
    // too late for its 148 ms: refused as backlogged, its expected output stands in.
    const [a, b] = await Promise.all([predict('busy'), predict('busy')]);
    const answers = [a, b].map((r) => r.body);
    for (const r of [a, b]) expect(r.status).to.equal(200);
    expect(answers.map((x) => x.default)).to.deep.equal([false, false]);
    expect(answers.filter((x) => x.missing_models === undefined)).to.have.length(1);
    expect(answers.filter((x) => (x.missing_models as string[] | undefined)?.[0] === 'steady:1')).to.have.length(1);
    // the next query still asks steady, which now has time to answer: both models combined, as in "both"
    const next = await predict('busy');
    expect(next.body).to.not.have.property('missing_models');
    close(next.body.output, [0.55, 0.45]);
    expect(next.body.confidence).to.be.closeTo(0.5, 1e-6);
  });

  it('policies - a bad policy name is refused when the app is added', async () => {
    const res = await postJson(`${sys.stack.adminUrl}/admin/add_app`, { name: 'odd', input_type: 'doubles', policy: 'exp5', latency_slo_micros: 1000, candidate_model_names: [] });
    expect(res.status).to.equal(400);
  });
});
