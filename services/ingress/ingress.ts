/**
 * The ingress actor: Clipper's query API over HTTP (`POST /<app>/predict`) and NATS
 * (`<p>.predict.<app>`). It checks each input against its application, stamps the query with an id
 * and an absolute deadline (now + the app's latency SLO), and asks the policy shard that owns
 * hash(app, uid), or, for stateless policies such as `single`, evaluates the query in-process
 * (same QueryExecutor, one round trip fewer). It holds no state, so any number of copies can run
 * (queue group `ingress`).
 *
 * Feedback (`POST /<app>/update`, `<p>.feedback.<app>`) is checked the same way and appended to the
 * FEEDBACK stream on the subject of its policy shard; the client gets its id only once JetStream
 * has stored it (the PubAck), so an acknowledged observation is never lost.
 *
 * It also serves what an operator watches (monitoring.ts): `/metrics`, `/status` and the dashboard,
 * from its own per-query counters and a periodic poll of the other actors' `$SRV.STATS`.
 */
import http from 'node:http';
import { ErrorCode as NatsErrorCode, Match, NatsError, nuid, type JetStreamClient, type Msg, type NatsConnection, type Service } from 'nats';
import xxhash from 'xxhash-wasm';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { decode, decodeJson, encode, isJsonContentType } from '../../shared/codec.js';
import { ensureFeedbackStreams } from '../../shared/feedback-stream.js';
import { initHash } from '../../shared/hash.js';
import { isMsgpackContentType, readBody, sendError, sendJson, sendMsgpack } from '../../shared/http.js';
import { ClipperError, isOverloadRefusal } from '../../shared/errors.js';
import { parseInput, parseInputBatch } from '../../shared/input.js';
import { parseRequestStart, REQUEST_START_HEADER } from '../../shared/request-start.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, isJsonMsg, reply, replyError, request, Requester } from '../../shared/nats.js';
import { endpoints, feedbackRequestMessage, PROTOCOL_VERSION, type FeedbackAck, type FeedbackRecord, type FeedbackRequest, type PolicyAnswer, type PolicyQuery, type PredictRequest, type Prediction, type Task } from '../../shared/protocol.js';
import { openRegistryBucket, RegistryView, type AppRecord } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { toJsonValue, type Tensor } from '../../shared/tensor.js';
import { isStatelessPolicy, QueryExecutor, taskBudgetMs } from '../policy/mod.js';
import { AnswerTimes, tooLittleLeft } from './answer-times.js';
import { ClusterStats } from './cluster-stats.js';
import { IngressMetrics, type EdgeRefusalCause } from './ingress-metrics.js';
import { LoadShedder } from './load-shedder.js';
import { MonitoringEndpoints } from './monitoring.js';
import type { IngressConfig } from './types.js';

export interface IngressDeps {
  nc: NatsConnection;
  log: Logger;
}

type Encoding = 'json' | 'msgpack';

/** node:http lower-cases header names. */
const REQUEST_START_HEADER_LOWER = REQUEST_START_HEADER.toLowerCase();

/** Clipper's default user: queries and feedback without a `uid` share this user's state and shard. */
const DEFAULT_UID = '0';

export class Ingress implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private readonly view: RegistryView;
  private readonly executor: QueryExecutor;
  private readonly requester: Requester;
  private readonly shedder = new LoadShedder();
  /** How soon models answer each app's queries after the read: the edge refuses what has less left. */
  private readonly answerTimes = new AnswerTimes();
  readonly metrics: IngressMetrics;
  private readonly cluster: ClusterStats;
  private readonly monitoring: MonitoringEndpoints;
  private server?: http.Server;
  private service?: Service;
  private hash32?: (input: string, seed?: number) => number;
  private js?: JetStreamClient;
  private ready = false;
  private natsConnected = true;
  private inFlight = 0;

  constructor(private readonly config: Readonly<IngressConfig>, private readonly deps: IngressDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
    this.executor = new QueryExecutor({ ...deps, subjects: this.subjects, view: this.view, cacheShards: config.cacheShards, nearCacheBytes: config.nearCacheBytes });
    this.requester = new Requester(deps.nc);
    this.metrics = new IngressMetrics(this.view, {
      inFlight: () => this.inFlight, near: () => this.executor.near?.counters, shedShare: (app) => this.shedder.probability(app), answerTimeMs: (app) => this.answerTimes.fastestMs(app),
    });
    this.cluster = new ClusterStats({ ...deps, view: this.view, prefix: config.prefix }, config.statsPollMs);
    this.monitoring = new MonitoringEndpoints({ ...deps, view: this.view, metrics: this.metrics, cluster: this.cluster });
  }

  /** The HTTP port actually bound (useful with port 0). */
  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : this.config.httpPort;
  }

  async start(): Promise<void> {
    this.hash32 = (await xxhash()).h32;
    await initHash();
    void (async () => {
      for await (const s of this.deps.nc.status()) {
        if (s.type === 'disconnect') this.natsConnected = false;
        else if (s.type === 'reconnect') this.natsConnected = true;
      }
    })();
    await this.view.start(await openRegistryBucket(this.deps.nc, this.subjects));
    await ensureFeedbackStreams(await this.deps.nc.jetstreamManager(), this.subjects, this.config);
    this.js = this.deps.nc.jetstream({ timeout: this.config.feedbackPublishTimeoutMs });
    if (this.config.natsPredict) {
      this.service = await this.deps.nc.services.add({ name: 'clipper-ingress', version: '0.1.0' });
      this.service.addEndpoint('predict', {
        subject: this.subjects.predictAll(),
        queue: 'ingress',
        handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : void this.onNatsPredict(msg)),
      });
      this.service.addEndpoint('feedback', {
        subject: this.subjects.feedbackAll(),
        queue: 'ingress',
        handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : void this.onNatsFeedback(msg)),
      });
    }
    this.server = http.createServer((req, res) => void this.onHttp(req, res));
    this.server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.httpPort, this.config.httpHost, () => resolve());
    });
    this.cluster.start();
    this.ready = true;
    this.deps.log.info({ port: this.port }, 'ingress listening');
  }

  // ---- the query path shared by HTTP and NATS --------------------------------------------------

  /**
   * Checks a request against its app and evaluates it; throws ClipperError on bad input. The SLO
   * clock starts at `sloStartUnixMs`: when the request reached this process, or its X-Request-Start
   * stamp (admitAtEdge), so the time spent reading and parsing it counts against the deadline too.
   */
  async predict(appName: string, body: PredictRequest, encoding: Encoding, sloStartUnixMs = Date.now(), startedMs = performance.now()): Promise<Record<string, unknown>> {
    const app = this.view.apps.get(appName);
    if (!app) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', `no application named ${appName}`);
    if (body.version !== undefined && !(this.view.links.get(appName) ?? []).some((m) => this.view.model(m, body.version!))) {
      throw new ClipperError('CLIPPER_ERR_VERSION_NOT_FOUND', `no model linked to ${appName} has version ${body.version}`);
    }
    const spec = { inputType: app.input_type, inputShape: app.input_shape };
    const uid = body.uid === undefined ? DEFAULT_UID : String(body.uid);
    if (body.input_batch !== undefined) {
      const inputs = parseInputBatch(body.input_batch, spec);
      const batch = await Promise.all(inputs.map((input) => this.query(app, uid, body.version, input, encoding, sloStartUnixMs, body.cache === false, startedMs)));
      return { v: PROTOCOL_VERSION, batch_predictions: batch };
    }
    return { v: PROTOCOL_VERSION, ...(await this.query(app, uid, body.version, parseInput(body.input, spec), encoding, sloStartUnixMs, body.cache === false, startedMs)) };
  }

  private async query(app: AppRecord, uid: string, version: string | undefined, input: Tensor, encoding: Encoding, sloStartUnixMs: number, noCache: boolean, startedMs: number): Promise<Prediction> {
    const sloMs = app.latency_slo_micros / 1000;
    const queryId = nuid.next();
    const deadlineUnixMs = sloStartUnixMs + sloMs;
    const shard = this.policyShard(app.name, uid);
    const q: PolicyQuery = { v: PROTOCOL_VERSION, query_id: queryId, app: app.name, uid, ...(version ? { version } : {}), input, deadline_unix_ms: deadlineUnixMs, ...(noCache ? { no_cache: true } : {}) };
    let answer: PolicyAnswer;
    try {
      answer = this.config.localStatelessPolicies && isStatelessPolicy(app.policy)
        ? await this.executor.answer(q)
        : await request(this.requester, this.subjects.policy(app.name, shard), q, this.ep.policy.response, {
          timeoutMs: sloMs + this.config.policyGraceMs, noResponders: 'CLIPPER_ERR_SERVICE_UNAVAILABLE', timeout: 'CLIPPER_ERR_SERVICE_UNAVAILABLE',
        });
    } catch (err) {
      const refused = err instanceof ClipperError && isOverloadRefusal(err.code);
      // Refusals that less traffic would not have prevented (a short queue, a model's latency varying) teach the shedder nothing.
      if (refused && err.sheddable !== false) this.shedder.refused(app.name);
      this.metrics.query(app, refused ? 'refused' : 'error', startedMs);
      if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId, app: app.name, code: ClipperError.from(err).code }, 'query failed');
      throw err;
    }
    this.shedder.answered(app.name);
    this.answerTimes.observe(app.name, answer, performance.now() - startedMs);
    this.metrics.query(app, answer.default ? 'default' : 'ok', startedMs);
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId, app: app.name, default: answer.default, models: answer.models }, 'query answered');
    const output = typeof answer.output === 'string' || encoding === 'msgpack' ? answer.output : toJsonValue(answer.output);
    const prediction: Prediction = { query_id: queryId, output, default: answer.default };
    if (answer.default_explanation) prediction.default_explanation = answer.default_explanation;
    if (answer.missing) prediction.missing_models = answer.missing;
    if (answer.confidence !== undefined) prediction.confidence = answer.confidence;
    return prediction;
  }

  // ---- the feedback path shared by HTTP and NATS -------------------------------------------------

  /**
   * Checks an observation against its app and stores it in the FEEDBACK stream on the subject of
   * the policy shard that owns (app, uid); resolves only once JetStream has acknowledged it.
   */
  async feedback(appName: string, body: FeedbackRequest): Promise<FeedbackAck> {
    const app = this.view.apps.get(appName);
    if (!app) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', `no application named ${appName}`);
    if (typeof body.label !== 'number' || !Number.isFinite(body.label)) {
      throw new ClipperError('CLIPPER_ERR_FEEDBACK_LABEL', `got ${typeof body.label === 'number' ? String(body.label) : typeof body.label}`);
    }
    const input = parseInput(body.input, { inputType: app.input_type, inputShape: app.input_shape });
    const uid = body.uid === undefined ? DEFAULT_UID : String(body.uid);
    const record: FeedbackRecord = { v: PROTOCOL_VERSION, app: app.name, uid, input, label: body.label, ts_unix_ms: Date.now() };
    const shard = this.policyShard(app.name, uid);
    let seq: number;
    try {
      const ack = await this.js!.publish(this.subjects.feedbackRecord(app.name, shard), encode(record), { expect: { streamName: this.subjects.feedbackStream() } });
      seq = ack.seq;
    } catch (err) {
      this.metrics.feedbackDone(app.name, 'error');
      if (err instanceof NatsError && err.code === NatsErrorCode.MaxPayloadExceeded) throw new ClipperError('CLIPPER_ERR_REQUEST_TOO_LARGE', err.message);
      throw new ClipperError('CLIPPER_ERR_FEEDBACK_UNAVAILABLE', `JetStream did not store it: ${(err as Error).message}`);
    }
    this.metrics.feedbackDone(app.name, 'stored');
    return { v: PROTOCOL_VERSION, feedback_id: `${app.name}:${seq}`, stream_seq: seq };
  }

  /** The policy shard that owns (app, uid): the same hash as the query path's. */
  private policyShard(app: string, uid: string): number {
    return this.config.policyShards === 1 ? 0 : this.hash32!(`${app}\u0000${uid}`) % this.config.policyShards;
  }

  // ---- NATS ---------------------------------------------------------------------------------------

  private async onNatsFeedback(msg: Msg): Promise<void> {
    const json = isJsonMsg(msg);
    this.inFlight++;
    try {
      if (msg.data.byteLength > this.config.maxBodyBytes) {
        throw new ClipperError('CLIPPER_ERR_REQUEST_TOO_LARGE', `${msg.data.byteLength} bytes, the limit is ${this.config.maxBodyBytes}`);
      }
      const body = decodeRequest(msg, feedbackRequestMessage);
      reply(msg, await this.feedback(Subjects.lastToken(msg.subject), body), json);
    } catch (err) {
      this.logFailure(err, msg.subject);
      replyError(msg, err, json);
    } finally {
      this.inFlight--;
    }
  }

  private async onNatsPredict(msg: Msg): Promise<void> {
    const receivedUnixMs = Date.now();
    const startedMs = performance.now();
    const json = isJsonMsg(msg);
    this.inFlight++;
    try {
      if (msg.data.byteLength > this.config.maxBodyBytes) {
        throw new ClipperError('CLIPPER_ERR_REQUEST_TOO_LARGE', `${msg.data.byteLength} bytes, the limit is ${this.config.maxBodyBytes}`);
      }
      const app = Subjects.lastToken(msg.subject);
      const sloStartUnixMs = this.admitAtEdge(app, msg.headers?.get(REQUEST_START_HEADER, Match.IgnoreCase) || undefined, receivedUnixMs);
      if (sloStartUnixMs instanceof ClipperError) {
        this.logFailure(sloStartUnixMs, msg.subject);
        replyError(msg, sloStartUnixMs, json);
        return;
      }
      const body = decodeRequest(msg, this.ep.predict.request);
      if (!json && this.forwardDirect(app, body, msg, sloStartUnixMs, startedMs)) return;
      reply(msg, await this.predict(app, body, json ? 'json' : 'msgpack', sloStartUnixMs, startedMs), json);
    } catch (err) {
      this.logFailure(err, msg.subject);
      replyError(msg, err, json);
    } finally {
      this.inFlight--;
    }
  }

  /**
   * A direct query: when no combination is needed (one linked model, a stateless policy run here, no
   * prediction cache) the task goes to the model's scheduler with the client's own reply subject, and
   * the worker answers the client: one message and one wake-up of this process fewer per query. The
   * scheduler answers an expired or failed task, or one whose batch overruns its deadline, with the
   * app's default output, and refuses overload as the ingress would. What is given up: this process
   * does not see the answer, so the query counts as `forwarded` in its metrics, without a latency.
   * Returns false (nothing sent) when the query needs the full path.
   */
  private forwardDirect(appName: string, body: PredictRequest, msg: Msg, sloStartUnixMs: number, startedMs: number): boolean {
    if (!this.config.directReplies || !msg.reply || body.input === undefined || !this.config.localStatelessPolicies) return false;
    const app = this.view.apps.get(appName);
    const linked = this.view.links.get(appName);
    if (!app || linked?.length !== 1 || !isStatelessPolicy(app.policy)) return false;
    const model = linked[0]!;
    const version = this.view.resolveVersion(model, body.version);
    const mode = version === undefined ? undefined : this.view.model(model, version)?.cache?.mode;
    if (version === undefined || ((mode === 'exact' || mode === 'approx') && body.cache !== false)) return false;
    const input = parseInput(body.input, { inputType: app.input_type, inputShape: app.input_shape });
    const budgetMs = taskBudgetMs(app.latency_slo_micros);
    const task: Task = { v: PROTOCOL_VERSION, query_id: nuid.next(), input, client_app: app.name, deadline_unix_ms: sloStartUnixMs + budgetMs, budget_ms: budgetMs };
    this.deps.nc.publish(this.subjects.batch(model, version), encode(task), { reply: msg.reply });
    this.metrics.query(app, 'forwarded', startedMs);
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: task.query_id, app: app.name, model: `${model}:${version}` }, 'query forwarded');
    return true;
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  private async onHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const receivedUnixMs = Date.now();
    const startedMs = performance.now();
    this.inFlight++;
    // msgpack bodies skip JSON parsing of large numeric inputs; the answer uses the same encoding.
    const msgpack = isMsgpackContentType(req.headers['content-type']);
    try {
      const url = req.url ?? '/';
      const path = url.split('?')[0]!;
      if (path === '/health') return this.sendHealth(req, res);
      if (MonitoringEndpoints.handles(path)) return await this.monitoring.handle(req, res, path);
      const match = /^\/([^/]+)\/(predict|update)$/.exec(path);
      if (!match) throw new ClipperError('CLIPPER_ERR_ROUTE_NOT_FOUND', `${req.method} ${path}`);
      if (req.method !== 'POST') throw new ClipperError('CLIPPER_ERR_METHOD_NOT_ALLOWED', `${req.method} ${path}: use POST`);
      if (!msgpack && !isJsonContentType(req.headers['content-type'])) {
        throw new ClipperError('CLIPPER_ERR_REQUEST_CONTENT_TYPE', `Content-Type must be application/json or application/msgpack, got ${req.headers['content-type'] ?? 'none'}`);
      }
      let app: string;
      try {
        app = decodeURIComponent(match[1]!);
      } catch {
        throw new ClipperError('CLIPPER_ERR_ROUTE_NOT_FOUND', `bad application name in ${path}`);
      }
      if (match[2] === 'update') {
        const raw = await readBody(req, this.config.maxBodyBytes);
        const ack = await this.feedback(app, feedbackRequestMessage.parse(msgpack ? decode(raw) : decodeJson(raw)));
        if (msgpack) sendMsgpack(res, 200, ack);
        else sendJson(res, 200, ack);
        return;
      }
      const stamp = req.headers[REQUEST_START_HEADER_LOWER];
      const sloStartUnixMs = this.admitAtEdge(app, typeof stamp === 'string' ? stamp : undefined, receivedUnixMs);
      if (sloStartUnixMs instanceof ClipperError) {
        this.logFailure(sloStartUnixMs, req.url);
        sendError(res, sloStartUnixMs, msgpack);
        return;
      }
      const raw = await readBody(req, this.config.maxBodyBytes);
      const body = this.ep.predict.request.parse(msgpack ? decode(raw) : decodeJson(raw));
      if (msgpack) sendMsgpack(res, 200, await this.predict(app, body, 'msgpack', sloStartUnixMs, startedMs));
      else sendJson(res, 200, await this.predict(app, body, 'json', sloStartUnixMs, startedMs));
    } catch (err) {
      const e = ClipperError.from(err);
      this.logFailure(e, req.url);
      sendError(res, e, msgpack);
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Admission at the edge, before the body is read. Returns when the query's SLO clock started: the
   * client's `X-Request-Start` stamp where it sent a plausible one (shared/request-start.ts), else its
   * arrival here; the wait in front of this process goes into `clipper_request_queue_seconds`. Or
   * returns the refusal (retryable CLIPPER_ERR_QUEUE_FULL, counted): for a query that arrives with no
   * more of its SLO left than the reply margin (answering it could only be late), or with less left
   * than its models take to answer nine times in ten (answer-times.ts), and for the share of an
   * overloaded app's queries the shedder holds back. Returned, not thrown: a refused request cost
   * this process 76–83 µs of CPU thrown and caught, 66–79 returned (medians 77 and 68.5, six runs each
   * at 3000/s; a bare node:http server answering 503 spends 49–64), paid exactly when the CPU is short.
   */
  private admitAtEdge(appName: string, header: string | undefined, receivedUnixMs: number): number | ClipperError {
    const app = this.view.apps.get(appName);
    const startUnixMs = app ? parseRequestStart(header, receivedUnixMs) : undefined;
    if (app && startUnixMs !== undefined) {
      const waitedMs = receivedUnixMs - startUnixMs;
      this.metrics.queued(app, waitedMs);
      const budgetMs = taskBudgetMs(app.latency_slo_micros);
      if (waitedMs >= budgetMs) {
        return this.refusal(app, 'slo_spent', `${appName}: the query waited ${Math.round(waitedMs)} ms before the ingress read it, its ${app.latency_slo_micros / 1000} ms SLO is spent; the ingress is overloaded`);
      }
      const answerMs = this.answerTimes.fastestMs(appName);
      if (answerMs !== undefined && tooLittleLeft(waitedMs, budgetMs, answerMs)) {
        return this.refusal(app, 'too_little_left', `${appName}: the query waited ${Math.round(waitedMs)} ms before the ingress read it, which leaves ${(budgetMs - waitedMs).toFixed(1)} ms of its ${app.latency_slo_micros / 1000} ms SLO; its models take ${answerMs.toFixed(1)} ms or more to answer nine times in ten; the ingress is overloaded`);
      }
    }
    if (this.shedder.shouldShed(appName)) return this.refusal(app, 'shed', `${appName} is overloaded; refused at the ingress`);
    return startUnixMs ?? receivedUnixMs;
  }

  /** A refusal at the edge: counted, by `cause`, as the retryable CLIPPER_ERR_QUEUE_FULL that `message` explains. */
  private refusal(app: AppRecord | undefined, cause: EdgeRefusalCause, message: string): ClipperError {
    if (app) this.metrics.edgeRefusal(app, cause);
    return ClipperError.withoutStack('CLIPPER_ERR_QUEUE_FULL', message);
  }

  private sendHealth(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET') throw new ClipperError('CLIPPER_ERR_METHOD_NOT_ALLOWED', 'use GET /health');
    const natsUp = this.natsConnected && !this.deps.nc.isClosed() && !this.deps.nc.isDraining();
    const ready = this.ready && natsUp;
    sendJson(res, ready ? 200 : 503, { live: true, ready, nats: natsUp ? 'connected' : 'disconnected', apps: this.view.apps.size });
  }

  private logFailure(err: unknown, where: string | undefined): void {
    const e = ClipperError.from(err);
    if (e.status >= 500 && !e.retryable) this.deps.log.warn({ code: e.code, err: e.message, where }, 'request failed');
    else this.deps.log.debug({ code: e.code, err: e.message, where }, 'request refused');
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.ready = false;
    this.monitoring.stop();
    this.server?.close();
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < until) await sleep(10);
    this.server?.closeAllConnections();
    this.cluster.stop();
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
