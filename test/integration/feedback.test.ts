/**
 * The durable feedback path with real processes: observations are acknowledged only once stored
 * in the FEEDBACK stream, bad ones are refused with coded errors, the exp4 app learns from them in
 * its policy shards, and the learned state survives a restart and a SIGKILL in the middle of a
 * burst (every acknowledged observation applied exactly once), and `clipper feedback replay`
 * rebuilds the same state from the OUTCOMES stream.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import { sleep } from '../../shared/actor.js';
import { initHash, shardOf } from '../../shared/hash.js';
import { serviceStats } from '../../shared/nats.js';
import { actorScript, ChildActor, DIST_ROOT, PROJECT_ROOT } from '../../shared/process.js';
import { Subjects } from '../../shared/subjects.js';
import { toNumbers, type Tensor } from '../../shared/tensor.js';
import type { ShardFeedbackStats } from '../../services/policy/feedback-consumer.js';
import { eventually, startTestNats, stopTestNats, type TestNats } from '../helpers/nats.js';
import { addJsModel, postJson, startTestStack, stopTestStack, waitForModelAnswer, type TestStack } from '../helpers/stack.js';

const msgpack = new Packr({ useRecords: false });
const run = promisify(execFile);
const APP = 'fb';
const SHARDS = 2;
const subjects = new Subjects('clipper');

/** Three values; the label is the index of the largest, which `classes-right` predicts and `classes-wrong` does not. */
function observation(i: number, uid: string | number = `user-${i % 7}`): { uid: string | number; input: number[]; label: number } {
  const input = [(i * 7) % 5, ((i * 3) % 5) + 0.5, ((i * 11) % 5) + 0.25];
  return { uid, input, label: input.indexOf(Math.max(...input)) };
}

interface ShardState { shard: number; applied: number; feedback_seq: number; state?: { population: { weights: Record<string, number> } } }

describe('feedback (real processes)', function () {
  this.timeout(240_000);
  let nats: TestNats;
  let sys: TestStack;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  /** Observations of APP acknowledged so far. */
  let acked = 0;

  const updateUrl = (app = APP): string => `${sys.stack.ingressUrl}/${app}/update`;
  const storedCount = async (): Promise<number> => (await jsm.streams.info(subjects.feedbackStream())).state.messages;
  const policyStats = async (): Promise<Record<string, ShardFeedbackStats> | undefined> =>
    (await serviceStats<{ feedback: Record<string, ShardFeedbackStats> }>(nc, 'clipper-policy').catch(() => undefined))?.feedback;
  const appliedOf = async (app = APP): Promise<number | undefined> => {
    const stats = await policyStats();
    if (!stats || Object.keys(stats).length < SHARDS) return undefined;
    return Object.values(stats).reduce((n, s) => n + (s.apps[app]?.applied ?? 0), 0);
  };
  const caughtUp = (what: string, timeoutMs = 60_000): Promise<number> =>
    eventually(async () => ((await appliedOf()) === acked ? acked : undefined), timeoutMs, `${what}: ${acked} observations applied`);
  const states = async (app = APP): Promise<ShardState[]> => Promise.all(Array.from({ length: SHARDS }, async (_, shard) => {
    const msg = await nc.request(subjects.policyControl(shard), msgpack.pack({ v: 1, op: 'state', app }), { timeout: 10_000 });
    return msgpack.unpack(msg.data) as ShardState;
  }));
  const cli = async (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
    run(process.execPath, [path.join(DIST_ROOT, 'cli', 'clipper.js'), ...args], { env: { ...process.env, NATS_URL: nats.url, CLIPPER_PREFIX: 'clipper' }, timeout: 120_000 });
  const sendAll = async (bodies: unknown[]): Promise<number> => {
    const codes = await Promise.all(bodies.map((b) => postJson(updateUrl(), b).then((r) => r.status, () => 0)));
    return codes.filter((c) => c === 200).length;
  };

  /** SIGKILLs (or SIGTERMs) the policy process and starts a new one with the same settings. */
  const restartPolicy = async (signal: NodeJS.Signals): Promise<void> => {
    const { stack } = sys;
    const i = stack.children.findIndex((c) => c.name === 'policy');
    const old = stack.children[i]!;
    if (signal === 'SIGKILL') old.kill('SIGKILL');
    else await old.stop();
    await old.exited;
    const env: NodeJS.ProcessEnv = {
      ...process.env, NATS_URL: stack.natsUrl, CLIPPER_PREFIX: 'clipper', LOG_LEVEL: stack.opts.logLevel ?? 'info', CLIPPER_LOG_DIR: stack.logDir,
      CLIPPER_BASE_DIR: PROJECT_ROOT, CLIPPER_POLICY_SHARDS: String(stack.opts.policyShards ?? 1), ...stack.opts.env,
    };
    stack.children[i] = new ChildActor('policy', actorScript('policy'), { env, logFile: path.join(stack.logDir, 'policy.log') });
  };

  before(async () => {
    await initHash();
    nats = await startTestNats();
    sys = await startTestStack(nats, { CLIPPER_POLICY_SHARDS: String(SHARDS), CLIPPER_FEEDBACK_SNAPSHOT_EVERY: '25', CLIPPER_FEEDBACK_SNAPSHOT_MS: '600000' });
    nc = await connect({ servers: nats.url });
    jsm = await nc.jetstreamManager();
    await addJsModel(sys, 'right', 'classes-right.mjs');
    await addJsModel(sys, 'wrong', 'classes-wrong.mjs');
    for (const m of ['right', 'wrong']) {
      await sys.admin.call('add_app', { name: `probe-${m}`, input_type: 'doubles', latency_slo_micros: 1_000_000, candidate_model_names: [m] });
      await waitForModelAnswer(sys, `probe-${m}`, { input: [1, 2, 3] });
    }
    await sys.admin.call('add_app', { name: APP, input_type: 'doubles', input_shape: [3], policy: 'exp4', default_output: 'none', latency_slo_micros: 1_000_000, candidate_model_names: ['right', 'wrong'] });
    await eventually(async () => (await postJson(updateUrl(), observation(0))).status === 200, 10_000, 'the app to reach the ingress');
    acked++;
  });

  after(async () => {
    await nc?.close();
    await stopTestStack(sys, !!process.env.KEEP_FEEDBACK_TEST_DATA);
    if (process.env.KEEP_FEEDBACK_TEST_DATA) console.log(`      data kept in ${sys.dataDir}`);
    await stopTestNats(nats);
  });

  it('feedback - HTTP feedback (JSON and msgpack) is acknowledged with its id only once it is in the FEEDBACK stream', async () => {
    const before = await storedCount();
    const res = await postJson(updateUrl(), { uid: 'alice', input: [0.1, 0.9, 0.3], label: 1 });
    expect(res.status).to.equal(200);
    acked++;
    const seq = res.body.stream_seq as number;
    expect(res.body.feedback_id).to.equal(`${APP}:${seq}`);
    expect(await storedCount()).to.equal(before + 1);
    const stored = await jsm.streams.getMessage(subjects.feedbackStream(), { seq });
    expect(stored.subject).to.equal(subjects.feedbackRecord(APP, shardOf(`${APP}\u0000alice`, SHARDS)));
    const rec = msgpack.unpack(stored.data) as { v: number; app: string; uid: string; input: Tensor; label: number; ts_unix_ms: number };
    expect(rec).to.include({ v: 1, app: APP, uid: 'alice', label: 1 });
    expect(rec.input).to.include({ dtype: 'FP64' });
    expect(toNumbers(rec.input)).to.deep.equal([0.1, 0.9, 0.3]);
    expect(rec.ts_unix_ms).to.be.closeTo(Date.now(), 10_000);

    // msgpack over HTTP; an integer uid is stored as a string.
    const http = await fetch(updateUrl(), { method: 'POST', headers: { 'Content-Type': 'application/msgpack' }, body: msgpack.pack({ uid: 42, input: [3, 1, 2], label: 0 }) });
    expect(http.status).to.equal(200);
    acked++;
    const ack = msgpack.unpack(new Uint8Array(await http.arrayBuffer())) as { feedback_id: string; stream_seq: number };
    expect(ack.feedback_id).to.equal(`${APP}:${ack.stream_seq}`);
    expect(await storedCount()).to.equal(before + 2);
    const rec2 = msgpack.unpack((await jsm.streams.getMessage(subjects.feedbackStream(), { seq: ack.stream_seq })).data) as { uid: string; label: number };
    expect(rec2).to.include({ uid: '42', label: 0 });
  });

  it('feedback - NATS feedback (msgpack, or JSON with its header) is acknowledged once stored', async () => {
    const before = await storedCount();
    const input = { dtype: 'FP64', shape: [3], data: Buffer.from(new Float64Array([5, 1, 1]).buffer) };
    const reply = await nc.request(subjects.feedback(APP), msgpack.pack({ v: 1, uid: 'bob', input, label: 0 }), { timeout: 5_000 });
    expect(reply.headers?.get('Clipper-Error') ?? '').to.equal('');
    const ack = msgpack.unpack(reply.data) as { v: number; feedback_id: string; stream_seq: number };
    acked++;
    expect(ack.v).to.equal(1);
    expect(ack.feedback_id).to.equal(`${APP}:${ack.stream_seq}`);

    const h = headers();
    h.set('Content-Type', 'application/json');
    const jsonReply = await nc.request(subjects.feedback(APP), Buffer.from(JSON.stringify({ input: [1, 1, 4], label: 2 })), { timeout: 5_000, headers: h });
    expect(jsonReply.headers?.get('Content-Type')).to.equal('application/json');
    const jsonAck = JSON.parse(Buffer.from(jsonReply.data).toString()) as { feedback_id: string; stream_seq: number };
    acked++;
    expect(jsonAck.feedback_id).to.equal(`${APP}:${jsonAck.stream_seq}`);
    expect(await storedCount()).to.equal(before + 2);
    // No uid means Clipper's default user "0", as for queries.
    const rec = msgpack.unpack((await jsm.streams.getMessage(subjects.feedbackStream(), { seq: jsonAck.stream_seq })).data) as { uid: string };
    expect(rec.uid).to.equal('0');
  });

  it('feedback - bad feedback gets coded errors and nothing is stored', async () => {
    const before = await storedCount();
    const httpCases: [string, unknown, number, string][] = [
      [APP, '{oops', 400, 'CLIPPER_ERR_PROTO_DECODE'],
      [APP, { input: [1, 2], label: 0 }, 400, 'CLIPPER_ERR_INPUT_SHAPE'],
      [APP, { input: [1, 2, 'x'], label: 0 }, 400, 'CLIPPER_ERR_INPUT_TYPE'],
      [APP, '{"input": [1, 2, 3], "label": 1e999}', 400, 'CLIPPER_ERR_FEEDBACK_LABEL'],
      [APP, { input: [1, 2, 3], label: '1' }, 400, 'CLIPPER_ERR_FEEDBACK_LABEL'],
      [APP, { input: [1, 2, 3] }, 400, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      [APP, { input: [1, 2, 3], label: 1, uid: [1] }, 400, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      [APP, { input: [1, 2, 3], label: 1, uid: 1.5 }, 400, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      [APP, { input: [1, 2, 3], label: 1, extra: true }, 400, 'CLIPPER_ERR_REQUEST_SCHEMA'],
      [APP, { v: 99, input: [1, 2, 3], label: 1 }, 400, 'CLIPPER_ERR_PROTO_VERSION'],
      ['nope', { input: [1, 2, 3], label: 1 }, 404, 'CLIPPER_ERR_APP_NOT_FOUND'],
      [APP, { input: new Array(600_000).fill(1), label: 1 }, 413, 'CLIPPER_ERR_REQUEST_TOO_LARGE'],
    ];
    for (const [app, body, status, code] of httpCases) {
      const res = await postJson(updateUrl(app), body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).to.equal(status);
      expect(res.body.code, JSON.stringify(body).slice(0, 80)).to.equal(code);
    }
    const natsCases: [string, Uint8Array, string][] = [
      [APP, msgpack.pack({ v: 99, input: [1, 2, 3], label: 1 }), 'CLIPPER_ERR_PROTO_VERSION'],
      [APP, msgpack.pack({ input: [1, 2, 3], label: NaN }), 'CLIPPER_ERR_FEEDBACK_LABEL'],
      [APP, msgpack.pack({ input: [1, 2, 3], label: Infinity }), 'CLIPPER_ERR_FEEDBACK_LABEL'],
      [APP, msgpack.pack({ input: [1, NaN, 3], label: 1 }), 'CLIPPER_ERR_INPUT_NOT_FINITE'],
      [APP, msgpack.pack({ input: [1, 2, 3, 4], label: 1 }), 'CLIPPER_ERR_INPUT_SHAPE'],
      [APP, msgpack.pack({ input: [1, 2, 3], label: 1, uid: { id: 1 } }), 'CLIPPER_ERR_REQUEST_SCHEMA'],
      [APP, new Uint8Array([0xc1]), 'CLIPPER_ERR_PROTO_DECODE'],
      ['nope', msgpack.pack({ input: [1, 2, 3], label: 1 }), 'CLIPPER_ERR_APP_NOT_FOUND'],
    ];
    for (const [app, data, code] of natsCases) {
      const reply = await nc.request(subjects.feedback(app), data, { timeout: 5_000 });
      expect(reply.headers?.get('Clipper-Error'), code).to.equal(code);
      expect((msgpack.unpack(reply.data) as { code: string }).code).to.equal(code);
    }
    expect(await storedCount()).to.equal(before);
  });

  it('feedback - the exp4 app learns from feedback: applied grows to every acknowledged observation and the right model outweighs the wrong one', async () => {
    acked += await sendAll(Array.from({ length: 60 }, (_, i) => observation(i + 1)));
    await caughtUp('learning');
    const { stdout } = await cli('feedback', 'stats', '--app', APP);
    const stats = JSON.parse(stdout) as { applied: number; stored: number; outcomes: number; lag: number; shards: { shard: number; applied: number }[] };
    expect(stats.applied).to.equal(acked);
    expect(stats.stored).to.equal(acked);
    expect(stats.outcomes).to.equal(acked);
    expect(stats.shards.map((s) => s.shard)).to.deep.equal([0, 1]);
    for (const s of await states()) {
      if (s.applied === 0) continue;
      const w = s.state!.population.weights;
      expect(w.right, `shard ${s.shard}`).to.be.greaterThan(w.wrong!);
    }
    // Both shards got observations (the uids spread over them).
    expect((await states()).every((s) => s.applied > 0)).to.equal(true);
  });

  it('feedback - a restarted policy process restores the same state from its snapshot and the OUTCOMES after it', async () => {
    await caughtUp('before the restart');
    const before = await states();
    // SIGKILL: no final snapshot, so the observations since the last one come from OUTCOMES.
    await restartPolicy('SIGKILL');
    await caughtUp('after the restart');
    expect(await states()).to.deep.equal(before);
    const stats = await policyStats();
    expect(Object.values(stats!).reduce((n, s) => n + s.restored, 0), 'outcomes replayed at start').to.be.greaterThan(0);
    // And it keeps learning.
    acked += await sendAll(Array.from({ length: 10 }, (_, i) => observation(100 + i)));
    await caughtUp('after more feedback');

    // SIGTERM: the process snapshots at stop, so the restart needs no outcome at all.
    const beforeStop = await states();
    await restartPolicy('SIGTERM');
    await caughtUp('after a graceful restart');
    expect(await states()).to.deep.equal(beforeStop);
    expect(Object.values((await policyStats())!).reduce((n, s) => n + s.restored, 0), 'outcomes replayed at start').to.equal(0);
  });

  it('feedback - SIGKILL of the policy process in the middle of a burst of 320 concurrent observations: each acknowledged one is applied exactly once', async () => {
    const start = acked;
    const burst = 320;
    const sent = sendAll(Array.from({ length: burst }, (_, i) => observation(1000 + i, i % 3 === 0 ? i : `burst-${i % 11}`)));
    // Direct requests to the shards (not $SRV.STATS, which waits for every service to answer): quick enough to kill mid-burst.
    const appliedAtKill = await eventually(async () => {
      const n = (await states()).reduce((a, st) => a + st.applied, 0);
      return n >= start + 20 ? n : undefined;
    }, 60_000, 'the burst to be partly applied');
    await restartPolicy('SIGKILL');
    const ok = await sent;
    acked += ok;
    expect(ok).to.equal(burst);
    expect(appliedAtKill, 'killed in the middle of the burst').to.be.below(start + burst);
    await caughtUp('after the crash', 90_000);
    await sleep(1_000);
    expect(await appliedOf(), 'nothing applied twice').to.equal(acked);
    const stats = await policyStats();
    for (const s of Object.values(stats!)) expect(s.lag, `shard ${s.shard} lag`).to.equal(0);

    // The state equals the one rebuilt by replaying every outcome from the beginning.
    const live = await states();
    const { stdout } = await cli('feedback', 'replay', '--app', APP);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { app: string; replayed: number; seconds: number; obs_per_s: number };
    expect(summary.replayed).to.equal(acked);
    expect(await states()).to.deep.equal(live);
  });

  it('feedback - clipper feedback replay re-applies the outcomes with progress, from a sequence too, and the consumer resumes after it', async () => {
    await caughtUp('before the replay');
    const live = await states();
    const { stdout, stderr } = await cli('feedback', 'replay', '--app', APP);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { app: string; replayed: number; seconds: number; obs_per_s: number };
    expect(summary).to.include({ app: APP, replayed: acked });
    expect(summary.seconds).to.be.a('number');
    expect(summary.obs_per_s).to.be.greaterThan(0);
    expect(stderr).to.match(new RegExp(`replay ${APP}: ${acked}/${acked} outcomes`));
    const after = await states();
    expect(after).to.deep.equal(live);
    expect(after.reduce((n, s) => n + s.applied, 0)).to.equal(acked);

    // From a feedback sequence on: only the observations at or after it.
    const cut = Math.max(...live.map((s) => s.feedback_seq)) - 30;
    const partial = JSON.parse((await cli('feedback', 'replay', '--app', APP, '--from', String(cut))).stdout.trim().split('\n').pop()!) as { replayed: number };
    expect(partial.replayed).to.be.within(1, 31);
    expect((await states()).reduce((n, s) => n + s.applied, 0)).to.equal(partial.replayed);
    // The consumer kept its place: new feedback is applied once, old feedback is not applied again.
    const more = await sendAll(Array.from({ length: 5 }, (_, i) => observation(5000 + i)));
    await eventually(async () => (await appliedOf()) === partial.replayed + more, 30_000, 'new feedback after a partial replay');
    acked += more;
    // From a time on: nothing was received after a time in the future.
    const future = JSON.parse((await cli('feedback', 'replay', '--app', APP, '--from', new Date(Date.now() + 3_600_000).toISOString())).stdout.trim().split('\n').pop()!) as { replayed: number };
    expect(future.replayed).to.equal(0);
    expect((await states()).map((s) => s.applied)).to.deep.equal([0, 0]);
    // An unknown app is refused, and the CLI says so.
    const refused = await cli('feedback', 'replay', '--app', 'nope').then(() => undefined, (e: { stderr: string }) => e.stderr);
    expect(refused).to.match(/CLIPPER_ERR_APP_NOT_FOUND/);
    // Back to everything.
    const full = JSON.parse((await cli('feedback', 'replay', '--app', APP)).stdout.trim().split('\n').pop()!) as { replayed: number };
    expect(full.replayed).to.equal(acked);
    await caughtUp('after the full replay');
  });

  it('feedback - the ingress answers 503 (retryable) and stores nothing when JetStream cannot store the observation', async () => {
    // Take the FEEDBACK stream's subjects away: JetStream has nowhere to store the observation.
    const info = await jsm.streams.info(subjects.feedbackStream());
    await jsm.streams.update(subjects.feedbackStream(), { ...info.config, subjects: ['clipper.elsewhere.>'] });
    try {
      const res = await postJson(updateUrl(), observation(7));
      expect(res.status).to.equal(503);
      expect(res.body.code).to.equal('CLIPPER_ERR_FEEDBACK_UNAVAILABLE');
      expect(res.headers.get('retry-after')).to.equal('1');
    } finally {
      await jsm.streams.update(subjects.feedbackStream(), info.config);
    }
    expect(await storedCount()).to.equal(info.state.messages);
  });
});
