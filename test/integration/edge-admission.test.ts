/**
 * The ingress's edge admission with real processes: once a model's answers have shown how long they
 * take, a stamped query (`X-Request-Start`) that waited so long in front of the ingress that less is
 * left is refused at once, retryable, instead of being forwarded to miss its deadline
 * (services/ingress/answer-times.ts); one with time enough is served.
 */
import { expect } from 'chai';
import { startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { scrape, sumOf } from '../helpers/prometheus.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

describe('edge admission (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;

  before(async () => {
    nats = await startTestNats();
    sys = await startTestStack(nats);
    await addJsModel(sys, 'slow', 'slow.mjs'); // answers after 300 ms
    await sys.admin.call('add_app', { name: 'lag', input_type: 'doubles', latency_slo_micros: 2_000_000, candidate_model_names: ['slow'] });
    await waitForModelAnswer(sys, 'lag', { input: [0] });
  });

  after(async () => {
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('edge admission - after 20 answers, a query with less of its SLO left than its model takes is refused at once (503, retryable); one with time enough is served', async () => {
    const stamped = (msAgo: number) => postJson(`${sys.stack.ingressUrl}/lag/predict`, { input: [1] }, { 'Content-Type': 'application/json', 'X-Request-Start': `t=${Date.now() - msAgo}` });
    // Before the model has answered 20 queries the ingress does not know how long it takes.
    for (let i = 0; i < 20; i++) expect((await postJson(`${sys.stack.ingressUrl}/lag/predict`, { input: [i] })).body).to.include({ default: false });
    // 2 s SLO: ~200 ms left, where the model takes 300.
    const late = await stamped(1_800);
    expect(late.status).to.equal(503);
    expect(late.headers.get('retry-after')).to.equal('1');
    expect(late.body).to.include({ code: 'CLIPPER_ERR_QUEUE_FULL', retryable: true });
    expect(late.body.cause).to.match(/waited \d+ ms before the ingress read it, which leaves [\d.]+ ms of its 2000 ms SLO; its models take [\d.]+ ms or more to answer nine times in ten/);
    // ~1 s left is time enough.
    const inTime = await stamped(1_000);
    expect(inTime.status).to.equal(200);
    expect(inTime.body).to.include({ default: false });
    // The refusal is counted by its cause, and the answer time it went by is exposed.
    const m = await scrape(`${sys.stack.ingressUrl}/metrics`);
    expect(sumOf(m, 'clipper_ingress_edge_refusals_total', { app: 'lag', cause: 'too_little_left' })).to.equal(1);
    expect(sumOf(m, 'clipper_ingress_edge_refusals_total', { app: 'lag' })).to.equal(1);
    expect(sumOf(m, 'clipper_requests_total', { app: 'lag', outcome: 'refused' })).to.equal(1);
    expect(sumOf(m, 'clipper_ingress_answer_time_p10_seconds', { app: 'lag' })).to.be.within(0.29, 2);
  });
});
