/**
 * Replicas and overload with real processes: set_num_replicas changes the running workers live; a
 * replica killed mid-batch has its tasks re-queued to another; a full queue refuses at once with a
 * retryable error (HTTP 503 + Retry-After, CLIPPER_ERR_QUEUE_FULL on NATS), and so does the
 * scheduler for a task that waited in its queue, or reached it, too late to be served in time
 * (when its model could have served it in its budget; otherwise it expires). Delayed batching waits
 * for a fuller batch only while the query at the head of the queue can afford it. An ONNX worker's
 * warm-up profile sets where its adaptive sizer starts.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, type NatsConnection } from 'nats';
import { DEMO } from '../../cli/stack.js';
import { startingBatchSize } from '../../services/scheduler/batch-sizers.js';
import { ERROR_CODE_HEADER, ERROR_TEXT_HEADER, SHEDDABLE_HEADER } from '../../shared/errors.js';
import { serviceStats } from '../../shared/nats.js';
import type { Heartbeat, ProfilePoint, SchedulerRefusalCause } from '../../shared/protocol.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { fixture, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

const msgpack = new Packr({ useRecords: false });

interface SchedulerStats { queued: number; requeued: number; rejected: number; rejected_by: Record<SchedulerRefusalCause, number>; expired: number; replicas: { id: string; in_flight: number; batch_size: number }[] }

describe('replicas and overload (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;

  const schedulerStats = async (model: string): Promise<SchedulerStats> => {
    const data = await serviceStats<SchedulerStats>(nc, 'clipper-scheduler', (md) => md.model === model);
    if (!data) throw new Error(`no scheduler for ${model}`);
    return data;
  };
  const agentProcesses = async () => msgpack.unpack((await nc.request('clipper.agent.local.processes', new Uint8Array(0), { timeout: 2_000 })).data) as { key: string; pid: number; running: boolean }[];

  before(async () => {
    nats = await startTestNats();
    // Fast failure detection, so a dead replica is noticed within a second; the agent restarts a
    // killed worker at once, so its successor (same replica id) heartbeats before the old one times out.
    sys = await startTestStack(nats, { CLIPPER_HEARTBEAT_MS: '150', CLIPPER_REPLICA_TIMEOUT_MS: '700', CLIPPER_RESTART_BACKOFF_MS: '10' });
    nc = await connect({ servers: nats.url });
    const slow = { input_type: 'doubles', wrapper: 'js', model_data_path: fixture('models', 'one-second.mjs'), batch_size: 1 };
    await sys.admin.call('add_model', { model_name: 'slow', model_version: '1', ...slow });
    await sys.admin.call('add_model', { model_name: 'tiny-queue', model_version: '1', ...slow, batching: { max_queue_length: 2 } });
    await sys.admin.call('add_app', { name: 'slow', input_type: 'doubles', latency_slo_micros: 30_000_000, candidate_model_names: ['slow'] });
    await sys.admin.call('add_app', { name: 'tiny', input_type: 'doubles', latency_slo_micros: 30_000_000, candidate_model_names: ['tiny-queue'] });
    // The same 1 s model under a 300 ms SLO: a second query waits in the queue past its deadline.
    await sys.admin.call('add_app', { name: 'hasty', input_type: 'doubles', default_output: 'late', latency_slo_micros: 300_000, candidate_model_names: ['tiny-queue'] });
    // And under a 1.5 s SLO: a query queued behind a busy replica could have been served in time alone.
    await sys.admin.call('add_app', { name: 'patient', input_type: 'doubles', default_output: 'late', latency_slo_micros: 1_500_000, candidate_model_names: ['tiny-queue'] });
    // Delayed batching with a wait longer than one app's SLO allows.
    await sys.admin.call('add_model', { model_name: 'waiting', model_version: '1', input_type: 'doubles', wrapper: 'js', model_data_path: fixture('models', 'sum.mjs'), batch_size: 8, batching: { delay_ms: 1000 } });
    await sys.admin.call('add_app', { name: 'waiting-patient', input_type: 'doubles', latency_slo_micros: 5_000_000, candidate_model_names: ['waiting'] });
    await sys.admin.call('add_app', { name: 'waiting-hasty', input_type: 'doubles', default_output: 'late', latency_slo_micros: 500_000, candidate_model_names: ['waiting'] });
    await waitForModelAnswer(sys, 'slow', { input: [1] });
    await waitForModelAnswer(sys, 'tiny', { input: [1] });
    await waitForModelAnswer(sys, 'waiting-patient', { input: [1] });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('replicas - set_num_replicas starts and stops workers live', async () => {
    await sys.admin.call('set_num_replicas', { model_name: 'slow', num_replicas: 3 });
    await eventually(async () => (await schedulerStats('slow')).replicas.length === 3, 30_000, '3 replicas');
    await sys.admin.call('set_num_replicas', { model_name: 'slow', num_replicas: 2 });
    await eventually(async () => (await schedulerStats('slow')).replicas.length === 2, 30_000, '2 replicas');
    const workers = (await agentProcesses()).filter((p) => p.key.startsWith('worker.slow.1.'));
    expect(workers.map((w) => w.key).sort()).to.deep.equal(['worker.slow.1.0', 'worker.slow.1.1']);
  });

  it('replicas - tasks of a replica killed mid-batch are re-queued to another and still answered', async () => {
    const pending = postJson(`${sys.stack.ingressUrl}/slow/predict`, { input: [2, 3] });
    const busy = await eventually(async () => (await schedulerStats('slow')).replicas.find((r) => r.in_flight > 0), 5_000, 'a busy replica');
    const victim = (await agentProcesses()).find((p) => p.key === `worker.${busy.id}`)!;
    process.kill(victim.pid, 'SIGKILL');
    const res = await pending;
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ default: false });
    expect(res.body.output).to.deep.equal([5]);
    expect((await schedulerStats('slow')).requeued).to.be.at.least(1);
  });

  it('overload - a full queue refuses at once with 503, Retry-After and CLIPPER_ERR_QUEUE_FULL', async () => {
    const before = await schedulerStats('tiny-queue');
    // One replica, one task at a time (1 s each), at most 2 waiting: of 8 concurrent queries some must be refused.
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson(`${sys.stack.ingressUrl}/tiny/predict`, { input: [i] })));
    const refused = results.filter((r) => r.status === 503);
    const served = results.filter((r) => r.status === 200 && r.body.default === false);
    expect(refused.length).to.be.at.least(4);
    expect(served.length).to.be.at.least(2);
    expect(refused.length + served.length).to.equal(8);
    for (const r of refused) {
      expect(r.body.code).to.equal('CLIPPER_ERR_QUEUE_FULL');
      expect(r.body.retryable).to.equal(true);
      expect(r.headers.get('retry-after')).to.equal('1');
    }
    // Refused at admission: the queue was full, or would have made them late.
    const by = (await schedulerStats('tiny-queue')).rejected_by;
    expect(by.queue_full - before.rejected_by.queue_full + by.would_be_late - before.rejected_by.would_be_late).to.equal(refused.length);
    expect(by.queue_full).to.be.greaterThan(before.rejected_by.queue_full);
  });

  it('overload - on NATS the refusal carries CLIPPER_ERR_QUEUE_FULL in the error headers', async () => {
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => nc.request('clipper.predict.tiny', msgpack.pack({ input: [i] }), { timeout: 20_000 })));
    const codes = replies.map((m) => m.headers?.get(ERROR_CODE_HEADER) ?? 'ok');
    expect(codes.filter((c) => c === 'CLIPPER_ERR_QUEUE_FULL').length).to.be.at.least(4);
    // A full queue, or one too long to make the deadline (2 waiting for a replica taking 1 a second): less traffic would have helped.
    for (const m of replies) if (m.headers?.get(ERROR_CODE_HEADER)) expect(m.headers.get(SHEDDABLE_HEADER)).to.equal('1');
    expect(codes.filter((c) => c === 'ok').length).to.be.at.least(2);
  });

  it('direct NATS queries - a task that expires in the queue gets the app\'s default output from the scheduler', async () => {
    const ask = (app: string, x: number) => nc.request(`clipper.predict.${app}`, msgpack.pack({ input: [x] }), { timeout: 10_000 }).then((m) => msgpack.unpack(m.data) as Record<string, unknown>);
    const first = ask('tiny', 1); // takes the only replica for a second
    await eventually(async () => (await schedulerStats('tiny-queue')).replicas.some((r) => r.in_flight > 0), 5_000, 'a busy replica');
    const second = await ask('hasty', 2);
    expect(second).to.include({ v: 1, default: true, output: 'late' });
    expect(second.query_id).to.be.a('string').and.not.empty;
    expect(second.default_explanation).to.match(/tiny-queue:1: .*tiny-queue:1 is too slow to serve it in the 298 ms it had/);
    expect(await first).to.include({ default: false });
  });

  it('delayed batching - a query that cannot afford the wait for a fuller batch is sent at once', async () => {
    const before = await schedulerStats('waiting');
    // Alone in the queue, the 1 s wait for a fuller batch would end after its 500 ms deadline.
    const res = await postJson(`${sys.stack.ingressUrl}/waiting-hasty/predict`, { input: [2, 3] });
    expect(res.status).to.equal(200);
    expect(res.body, JSON.stringify(res.body)).to.include({ default: false }).and.to.have.deep.property('output', [5]);
    const after = await schedulerStats('waiting');
    expect(after.rejected).to.equal(before.rejected);
    expect(after.expired).to.equal(before.expired);
    // With the time for it, a query still waits for the batch to fill.
    const started = Date.now();
    const patient = await postJson(`${sys.stack.ingressUrl}/waiting-patient/predict`, { input: [1, 1] });
    expect(patient.body, JSON.stringify(patient.body)).to.include({ default: false }).and.to.have.deep.property('output', [2]);
    expect(Date.now() - started).to.be.at.least(990);
  });

  it('overload - a task the wait in the queue costs its deadline is refused (503, retryable), not answered with the default output', async () => {
    // A fresh latency estimate (the scheduler trusts one for a second), so the wait is seen to be hopeless early.
    await postJson(`${sys.stack.ingressUrl}/tiny/predict`, { input: [0] });
    let firstDone = false;
    const first = postJson(`${sys.stack.ingressUrl}/tiny/predict`, { input: [1] }).finally(() => (firstDone = true)); // takes the only replica for a second
    await eventually(async () => (await schedulerStats('tiny-queue')).replicas.some((r) => r.in_flight > 0), 5_000, 'a busy replica');
    const before = await schedulerStats('tiny-queue');
    // Admitted to an empty queue; ~0.5 s in, the 1 s batch can no longer fit its 1.5 s SLO, though alone it would have.
    const second = await postJson(`${sys.stack.ingressUrl}/patient/predict`, { input: [2] });
    // refused as soon as it was hopeless, not when the replica came free
    expect(firstDone).to.equal(false);
    expect(second.status).to.equal(503);
    expect(second.headers.get('retry-after')).to.equal('1');
    expect(second.body).to.include({ code: 'CLIPPER_ERR_BACKLOGGED', retryable: true });
    expect(second.body.cause).to.match(/waited \d+ ms in the queue of tiny-queue:1, too late to finish before its deadline/);
    expect((await first).body).to.include({ default: false });
    const after = await schedulerStats('tiny-queue');
    expect(after.rejected).to.equal(before.rejected + 1);
    expect(after.rejected_by.waited_too_long).to.equal(before.rejected_by.waited_too_long + 1);
    expect(after.expired).to.equal(before.expired);
  });

  it('overload - a refusal from a short queue says that less traffic would not have prevented it (Clipper-Sheddable: 0), on the direct NATS path too', async () => {
    await postJson(`${sys.stack.ingressUrl}/tiny/predict`, { input: [0] });
    const first = postJson(`${sys.stack.ingressUrl}/tiny/predict`, { input: [1] });
    await eventually(async () => (await schedulerStats('tiny-queue')).replicas.some((r) => r.in_flight > 0), 5_000, 'a busy replica');
    const before = await schedulerStats('tiny-queue');
    // Alone in the queue, next in line, dropped once the replica's 1 s batch left it too little time.
    const refusal = await nc.request('clipper.predict.patient', msgpack.pack({ input: [2] }), { timeout: 10_000 });
    expect(refusal.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_BACKLOGGED');
    expect(refusal.headers?.get(SHEDDABLE_HEADER)).to.equal('0');
    expect((await schedulerStats('tiny-queue')).rejected_by.waited_too_long).to.equal(before.rejected_by.waited_too_long + 1);
    expect((await first).body).to.include({ default: false });
  });

  it('admission - a task that reaches the scheduler after its deadline is refused (retryable) when its model could have served it in its budget, and expires without one', async () => {
    const before = await schedulerStats('slow');
    // As the ingress and the policies send them: budget_ms is the SLO less the reply margin (the slow model takes 1 s).
    const late = (queryId: string, extra: Record<string, unknown>) => msgpack.pack({
      v: 1, query_id: queryId, deadline_unix_ms: Date.now() - 5, input: { dtype: 'FP64', shape: [1], data: new Uint8Array(new Float64Array([1]).buffer) }, ...extra,
    });
    const ask = (queryId: string, extra: Record<string, unknown>) => nc.request('clipper.batch.slow.1', late(queryId, extra), { timeout: 5_000 });
    const direct = await ask('late-direct', { client_app: 'slow', budget_ms: 29_998 });
    expect(direct.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_BACKLOGGED');
    expect(direct.headers?.get(SHEDDABLE_HEADER)).to.equal('1'); // a backlog upstream: shedding there helps
    expect(direct.headers?.get(ERROR_TEXT_HEADER)).to.match(/late-direct reached slow:1 \d+ ms after its deadline, too late to finish before its deadline/);
    const requested = await ask('late-requested', { budget_ms: 29_998 });
    expect(requested.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_BACKLOGGED');
    // Without a budget nothing says the model could have made it: expired, the requester answers with its default.
    const unbudgeted = await ask('late-unbudgeted', {});
    expect(unbudgeted.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_QUERY_EXPIRED');
    // Nor when the model is slower than the budget.
    const hopeless = await ask('late-hopeless', { budget_ms: 500 });
    expect(hopeless.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_QUERY_EXPIRED');
    const after = await schedulerStats('slow');
    expect(after.rejected).to.equal(before.rejected + 2);
    expect(after.rejected_by.arrived_late).to.equal(before.rejected_by.arrived_late + 2);
    expect(after.expired).to.equal(before.expired + 2);
  });

  it('direct NATS queries - a batch that overruns the deadline: the scheduler answers the client with the default output', async () => {
    // Its latency estimate goes stale after a second without batches; then the scheduler dispatches the
    // task, and the model's 1 s batch overruns the 300 ms SLO.
    await new Promise((r) => setTimeout(r, 1_500));
    const overrunBefore = (await serviceStats<{ overrun: number }>(nc, 'clipper-scheduler', (md) => md.model === 'tiny-queue'))!.overrun;
    const answer = msgpack.unpack((await nc.request('clipper.predict.hasty', msgpack.pack({ input: [3] }), { timeout: 10_000 })).data) as Record<string, unknown>;
    expect(answer).to.include({ v: 1, default: true, output: 'late' });
    expect(answer.default_explanation).to.match(/tiny-queue:1: .*did not finish before the deadline/);
    const after = await eventually(async () => {
      const s = await serviceStats<{ overrun: number; replicas: { in_flight: number }[] }>(nc, 'clipper-scheduler', (md) => md.model === 'tiny-queue');
      return s && s.replicas.every((r) => r.in_flight === 0) ? s : undefined;
    }, 5_000, 'the batch to finish');
    expect(after.overrun).to.equal(overrunBefore + 1);
  });

  it('warm-up - an ONNX worker profiles its batch sizes at load, and its adaptive sizer starts from the profile instead of 1', async () => {
    await sys.admin.call('add_model', { model_name: 'profiled', model_version: '1', input_type: 'floats', wrapper: 'onnx', model_data_path: DEMO.model.model_data_path, batch_size: -1, batching: { max_batch_size: 16 } });
    await sys.admin.call('add_app', { name: 'profiled', input_type: 'floats', latency_slo_micros: 100_000, candidate_model_names: ['profiled'] });
    let heard: ProfilePoint[] | undefined;
    const heartbeats = nc.subscribe('clipper.events.worker.profiled.1.>', { callback: (_err, m) => void (heard ??= (msgpack.unpack(m.data) as Heartbeat).profile) });
    const profile = await eventually(async () => heard, 30_000, 'a heartbeat with the warm-up profile').finally(() => heartbeats.unsubscribe());
    // Powers of two up to max_batch_size, each with a measured compute time.
    expect(profile.map((p) => p.size)).to.deep.equal([1, 2, 4, 8, 16]);
    for (const p of profile) expect(p.compute_us).to.be.greaterThan(0);
    // Budget: 0.4 of the 100 ms SLO; the digits MLP computes several rows in far under half of it.
    const start = startingBatchSize(profile, 40_000);
    expect(start).to.be.greaterThan(1);
    await eventually(async () => (await schedulerStats('profiled')).replicas.some((r) => r.batch_size === start), 10_000, 'a replica starting at the profiled size');
    await waitForModelAnswer(sys, 'profiled', { input: new Array(64).fill(0) });
  });
});
