/**
 * `GET /metrics` with real processes: the ingress's own counters count exactly the queries sent,
 * the schedulers', cache's and policy's figures reach it through the stats poll, the exposition
 * follows the text format's conventions, and counters from a restarted actor never go down. Also
 * `clipper status` and `clipper logs`, and the query_id that one grep follows through the logs.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, headers, type NatsConnection } from 'nats';
import { ERROR_CODE_HEADER } from '../../shared/errors.js';
import { DIST_ROOT } from '../../shared/process.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { scrape, samplesOf, sumOf, type Exposition } from '../helpers/prometheus.js';
import { SCHEDULER_REFUSAL_CAUSES } from '../../shared/protocol.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

const msgpack = new Packr({ useRecords: false });
const run = promisify(execFile);
const jsonHeaders = () => {
  const h = headers();
  h.set('Content-Type', 'application/json');
  return h;
};

describe('metrics (real processes)', function () {
  this.timeout(120_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;
  const metrics = (): Promise<Exposition> => scrape(`${sys.stack.ingressUrl}/metrics`);
  const predict = (app: string, input: number[]) => postJson(`${sys.stack.ingressUrl}/${app}/predict`, { input });
  const cli = (...args: string[]) => run(process.execPath, [path.join(DIST_ROOT, 'cli', 'clipper.js'), ...args], { timeout: 30_000 });

  before(async () => {
    nats = await startTestNats();
    // Debug logs: the query-tracing test reads them.
    sys = await startTestStack(nats, { CLIPPER_STATS_POLL_MS: '250', LOG_LEVEL: 'debug' });
    nc = await connect({ servers: nats.url });
    await addJsModel(sys, 'sum', 'sum.mjs');
    await addJsModel(sys, 'memo', 'sum.mjs', { cache: { mode: 'exact' } });
    await addJsModel(sys, 'right', 'classes-right.mjs');
    await addJsModel(sys, 'wrong', 'classes-wrong.mjs');
    await sys.admin.call('add_app', { name: 'calc', input_type: 'doubles', latency_slo_micros: 2_000_000, candidate_model_names: ['sum'] });
    await sys.admin.call('add_app', { name: 'memo', input_type: 'doubles', latency_slo_micros: 2_000_000, candidate_model_names: ['memo'] });
    await sys.admin.call('add_app', { name: 'vote', input_type: 'doubles', input_shape: [3], policy: 'exp4', default_output: 'none', latency_slo_micros: 2_000_000, candidate_model_names: ['right', 'wrong'] });
    await waitForModelAnswer(sys, 'calc', { input: [0] });
    await waitForModelAnswer(sys, 'memo', { input: [0], cache: false });
    await waitForModelAnswer(sys, 'vote', { input: [0, 0, 1] });
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys);
    await stopTestNats(nats);
  });

  it('metrics - the request counter and the latency histogram count exactly the queries sent', async () => {
    const before = await metrics();
    const sent = 25;
    for (let i = 0; i < sent; i++) expect((await predict('calc', [i, 1])).body).to.include({ default: false });
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'ok' })).to.equal(sent);
    expect(delta('clipper_requests_total', { app: 'calc' })).to.equal(sent);
    expect(delta('clipper_request_duration_seconds_count', { app: 'calc' })).to.equal(sent);
    expect(delta('clipper_requests_within_slo_total', { app: 'calc' })).to.equal(sent);
    // Buckets are cumulative and the +Inf bucket is the count.
    const buckets = samplesOf(after, 'clipper_request_duration_seconds_bucket', { app: 'calc' });
    expect(buckets.map((b) => b.labels.le)).to.include.members(['0.001', '0.1', '1', '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).to.be.at.least(buckets[i - 1]!.value);
    expect(buckets.at(-1)!.value).to.equal(sumOf(after, 'clipper_request_duration_seconds_count', { app: 'calc' }));
    expect(sumOf(after, 'clipper_request_duration_seconds_sum', { app: 'calc' })).to.be.greaterThan(0).and.below(sent * 2);
    expect(sumOf(after, 'clipper_app_slo_seconds', { app: 'calc' })).to.equal(2);
    // Every app has a shed share, 0 while its models keep up.
    expect(samplesOf(after, 'clipper_ingress_shed_share', { app: 'calc' }).map((s) => s.value)).to.deep.equal([0]);
  });

  it('X-Request-Start - the wait before the ingress is measured; a query whose SLO was spent before it arrived is refused at once (503, retryable)', async () => {
    const before = await metrics();
    const stamped = (msAgo: number) => postJson(`${sys.stack.ingressUrl}/calc/predict`, { input: [1, 2] }, { 'Content-Type': 'application/json', 'X-Request-Start': `t=${Date.now() - msAgo}` });
    const fresh = await stamped(5);
    expect(fresh.status).to.equal(200);
    expect(fresh.body).to.include({ default: false });
    const stale = await stamped(2_500); // calc's SLO is 2 s
    expect(stale.status).to.equal(503);
    expect(stale.body).to.include({ code: 'CLIPPER_ERR_QUEUE_FULL', retryable: true });
    expect(stale.body.cause).to.match(/waited \d+ ms before the ingress read it/);
    expect(stale.headers.get('retry-after')).to.equal('1');
    // Over NATS the same header does the same, whatever its case, and on the direct path too.
    const h = jsonHeaders();
    h.set('x-request-start', `t=${(Date.now() - 2_500) / 1000}`); // seconds, as nginx writes it
    const late = await nc.request('clipper.predict.calc', JSON.stringify({ input: [1, 2] }), { timeout: 5_000, headers: h });
    expect(late.headers?.get(ERROR_CODE_HEADER)).to.equal('CLIPPER_ERR_QUEUE_FULL');
    const direct = headers();
    direct.set('X-Request-Start', `t=${Date.now() - 5}`);
    const answer = msgpack.unpack((await nc.request('clipper.predict.calc', msgpack.pack({ input: [2, 3] }), { timeout: 5_000, headers: direct })).data) as Record<string, unknown>;
    expect(answer).to.include({ v: 1, default: false });
    // The refusal comes before the body is read: the ingress answers a request whose body never comes.
    const unread = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(`${sys.stack.ingressUrl}/calc/predict`);
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': '1000', 'X-Request-Start': `t=${Date.now() - 2_500}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.flushHeaders(); // headers only; the 1000 bytes are never sent
      setTimeout(() => reject(new Error('no answer while the body was held back')), 10_000).unref();
    });
    expect(unread.status).to.equal(503);
    expect(JSON.parse(unread.body)).to.include({ code: 'CLIPPER_ERR_QUEUE_FULL' });
    // A stamp a minute and more off is clock skew: ignored, the query is served and not measured.
    const skewed = await stamped(3_600_000);
    expect(skewed.status).to.equal(200);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta('clipper_request_queue_seconds_count', { app: 'calc' })).to.equal(5);
    expect(delta('clipper_request_queue_seconds_sum', { app: 'calc' })).to.be.at.least(7.5);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'refused' })).to.equal(3);
    expect(delta('clipper_ingress_edge_refusals_total', { app: 'calc', cause: 'slo_spent' })).to.equal(3);
    expect(delta('clipper_ingress_edge_refusals_total', { app: 'calc' })).to.equal(3);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'ok' })).to.equal(2);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'forwarded' })).to.equal(1);
  });

  it('metrics - a direct NATS query (one model, no cache) is counted as forwarded, with no latency; JSON ones go the full path', async () => {
    const before = await metrics();
    const answer = msgpack.unpack((await nc.request('clipper.predict.calc', msgpack.pack({ input: [2, 3] }), { timeout: 5_000 })).data) as { v: number; query_id: string; default: boolean; output: { dtype: string; data: Uint8Array } };
    expect(answer).to.include({ v: 1, default: false });
    expect(answer.query_id).to.be.a('string').and.not.empty;
    expect(Array.from(new Float64Array(new Uint8Array(answer.output.data).buffer))).to.deep.equal([5]);
    const json = await nc.request('clipper.predict.calc', new TextEncoder().encode(JSON.stringify({ input: [1, 1] })), { timeout: 5_000, headers: jsonHeaders() });
    expect(JSON.parse(new TextDecoder().decode(json.data))).to.include({ default: false });
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>): number => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'forwarded' })).to.equal(1);
    expect(delta('clipper_requests_total', { app: 'calc', outcome: 'ok' })).to.equal(1);
    expect(delta('clipper_request_duration_seconds_count', { app: 'calc' })).to.equal(1);
  });

  it('metrics - the exposition declares a type for every family, and counters end in _total', async () => {
    const e = await metrics();
    expect(e.types.get('clipper_requests_total')).to.equal('counter');
    expect(e.types.get('clipper_request_duration_seconds')).to.equal('histogram');
    for (const s of e.samples) {
      const family = s.name.replace(/_(bucket|sum|count)$/, '');
      const type = e.types.get(s.name) ?? e.types.get(family);
      expect(type, s.name).to.be.oneOf(['counter', 'gauge', 'histogram']);
      if (type === 'counter') expect(s.name, 'counter name').to.match(/_total$/);
      expect(s.name).to.match(/^clipper_/);
    }
  });

  it('metrics - the scheduler\'s queue, batch and compute figures and the replica\'s state reach /metrics', async () => {
    const sum = { model: 'sum', version: '1' };
    const e = await eventually(async () => {
      const m = await metrics();
      // The poll may catch a batch in flight (dispatched, its compute time not in yet): wait it out.
      const settled = sumOf(m, 'clipper_batch_compute_duration_seconds_count', sum) === sumOf(m, 'clipper_scheduler_batches_total', sum);
      return settled && sumOf(m, 'clipper_scheduler_tasks_total', sum) >= 26 && sumOf(m, 'clipper_replica_state', { ...sum, state: 'up' }) === 1 ? m : undefined;
    }, 10_000, 'scheduler figures');
    // Every task received is dispatched in a batch, expired or refused (none is left queued): a query of
    // the start-up check that reached the scheduler before the worker was ready expires there.
    const dispatched = sumOf(e, 'clipper_scheduler_tasks_total', sum) - sumOf(e, 'clipper_scheduler_expired_total', sum) - sumOf(e, 'clipper_scheduler_rejected_total', sum);
    const batches = sumOf(e, 'clipper_scheduler_batches_total', sum);
    expect(dispatched).to.be.at.least(25);
    expect(batches).to.be.within(1, dispatched);
    expect(sumOf(e, 'clipper_queue_duration_seconds_count', sum)).to.equal(dispatched);
    expect(sumOf(e, 'clipper_queue_duration_seconds_sum', sum)).to.be.at.least(0).and.below(dispatched);
    expect(sumOf(e, 'clipper_batch_size_count', sum)).to.equal(batches);
    expect(sumOf(e, 'clipper_batch_size_sum', sum)).to.equal(dispatched);
    expect(sumOf(e, 'clipper_batch_compute_duration_seconds_count', sum)).to.equal(batches);
    expect(sumOf(e, 'clipper_replica_batch_size', { ...sum, replica: '0' })).to.be.at.least(1);
    expect(sumOf(e, 'clipper_replica_state', { ...sum, replica: '0', state: 'dead' })).to.equal(0);
    expect(sumOf(e, 'clipper_model_replicas_desired', sum)).to.equal(1);
    expect(sumOf(e, 'clipper_model_replicas_ready', sum)).to.equal(1);
    expect(sumOf(e, 'clipper_scheduler_queued_tasks', sum)).to.equal(0);
    // Refusals by cause: a series for each, summing to the refusals.
    const refusals = samplesOf(e, 'clipper_scheduler_rejected_total', sum);
    expect(refusals.map((r) => r.labels.cause)).to.have.members([...SCHEDULER_REFUSAL_CAUSES]);
    for (const r of refusals) expect(r.value, String(r.labels.cause)).to.be.at.least(0);
    expect(sumOf(e, 'clipper_actor_processes', { service: 'clipper-scheduler' })).to.equal(4);
  });

  it('metrics - cache lookups and exact hits are counted per model', async () => {
    for (let i = 0; i < 5; i++) expect((await predict('memo', [7, 8])).body).to.include({ default: false });
    const memo = { model: 'memo', version: '1' };
    const e = await eventually(async () => {
      const m = await metrics();
      return sumOf(m, 'clipper_cache_lookups_total', memo) >= 5 ? m : undefined;
    }, 10_000, 'cache figures');
    expect(sumOf(e, 'clipper_cache_hits_total', { ...memo, match: 'exact' })).to.be.at.least(3);
    expect(sumOf(e, 'clipper_cache_hits_total', { ...memo, match: 'approx' })).to.equal(0);
    expect(sumOf(e, 'clipper_cache_misses_total', memo)).to.be.at.least(1);
    expect(sumOf(e, 'clipper_cache_entries')).to.be.at.least(1);
  });

  it('metrics - feedback is counted when stored and applied, and the exp4 weights favour the right model', async () => {
    const sent = 20;
    for (let i = 0; i < sent; i++) {
      const input = [i % 3 === 0 ? 5 : 1, i % 3 === 1 ? 5 : 1, i % 3 === 2 ? 5 : 1];
      expect((await postJson(`${sys.stack.ingressUrl}/vote/update`, { uid: i, input, label: i % 3 })).status).to.equal(200);
    }
    const e = await eventually(async () => {
      const m = await metrics();
      return sumOf(m, 'clipper_feedback_applied', { app: 'vote' }) >= sent ? m : undefined;
    }, 20_000, 'feedback applied');
    expect(sumOf(e, 'clipper_feedback_total', { app: 'vote', outcome: 'stored' })).to.equal(sent);
    expect(sumOf(e, 'clipper_feedback_processed_total')).to.be.at.least(sent);
    const right = sumOf(e, 'clipper_policy_weight', { app: 'vote', model: 'right' });
    const wrong = sumOf(e, 'clipper_policy_weight', { app: 'vote', model: 'wrong' });
    expect(right + wrong).to.be.closeTo(1, 1e-9);
    expect(right).to.be.greaterThan(wrong);
  });

  it('status - clipper status prints every app and model with replicas, SLO attainment and cache hit rate', async () => {
    const { stdout } = await cli('status', '--url', sys.stack.ingressUrl);
    const lines = stdout.split('\n');
    const models = lines.findIndex((l) => l.startsWith('MODEL '));
    expect(lines[0]).to.match(/^APP\s+POLICY\s+SLO/);
    const row = (first: string, from = 0): string[] => lines.slice(from).find((l) => l.startsWith(`${first} `))?.split(/\s{2,}/) ?? [];
    expect(row('calc').slice(0, 3)).to.deep.equal(['calc', 'single', '2000 ms']);
    expect(row('calc').at(-2)).to.match(/^\d+\.\d %$/);
    expect(row('vote')[1]).to.equal('exp4');
    expect(row('sum', models).slice(0, 4)).to.deep.equal(['sum', '1', '1/1', '0:up']);
    expect(row('memo', models).at(-1)).to.match(/^\d+\.\d %$/);
    if (process.env.SHOW_STATUS) console.log(stdout);
    expect(stdout).to.match(/vote\s+right 0\.\d{3}, wrong 0\.\d{3}/);
    const json = JSON.parse((await cli('status', '--url', sys.stack.ingressUrl, '--json')).stdout) as { apps: { name: string; requests_total: number }[] };
    expect(json.apps.find((a) => a.name === 'calc')!.requests_total).to.be.at.least(25);
  });

  it('logs - one query_id follows a query through the ingress and the scheduler, and its batch into the worker', async () => {
    const logs = path.join(sys.dataDir, 'logs');
    const { stdout: list } = await cli('logs', '--dir', logs);
    expect(list).to.match(/^ingress\s+\d+/m).and.to.match(/^worker\.sum\.1\.0\s+\d+/m);
    const queryId = (await predict('calc', [4, 5])).body.query_id as string;
    const lines = await eventually(async () => {
      const { stdout } = await cli('logs', '--dir', logs, '--query', queryId);
      const found = stdout.split('\n').filter(Boolean);
      return found.some((l) => l.startsWith('ingress:')) && found.some((l) => l.startsWith('scheduler.sum.1:') && l.includes('task dispatched')) ? found : undefined;
    }, 10_000, 'the query in the logs');
    for (const l of lines) expect(JSON.parse(l.slice(l.indexOf(': ') + 2)).queryId).to.equal(queryId);
    const batchId = JSON.parse(lines.find((l) => l.includes('task dispatched'))!.replace(/^[^:]+: /, '')).batchId as string;
    const { stdout: worker } = await eventually(() => cli('logs', '--dir', logs, '--query', batchId, 'worker.sum.1.0').then((r) => (r.stdout.includes('batch done') ? r : undefined)), 10_000, 'the batch in the worker log');
    expect(worker).to.include(`"batchId":"${batchId}"`);
    const { stdout: tail } = await cli('logs', '--dir', logs, 'ingress', '-n', '3');
    expect(tail.trim().split('\n')).to.have.length(3);
  });

  it('metrics - counters of a restarted scheduler keep growing from where they were', async () => {
    const sum = { model: 'sum', version: '1' };
    const before = sumOf(await metrics(), 'clipper_scheduler_tasks_total', sum);
    const list = async () => msgpack.unpack((await nc.request('clipper.agent.local.processes', new Uint8Array(0), { timeout: 2_000 })).data) as { key: string; pid: number; running: boolean }[];
    const scheduler = (await list()).find((p) => p.key === 'scheduler.sum.1')!;
    expect(scheduler, 'the scheduler process').to.not.equal(undefined);
    process.kill(scheduler.pid, 'SIGKILL');
    await eventually(async () => (await list()).find((p) => p.key === 'scheduler.sum.1' && p.running && p.pid !== scheduler.pid), 20_000, 'scheduler restart');
    await waitForModelAnswer(sys, 'calc', { input: [1, 1] });
    for (let i = 0; i < 5; i++) await predict('calc', [i]);
    const after = await eventually(async () => {
      const n = sumOf(await metrics(), 'clipper_scheduler_tasks_total', sum);
      return n >= before + 5 ? n : undefined;
    }, 10_000, 'the new scheduler\'s tasks');
    expect(after).to.be.at.least(before + 5);
  });
});
