/**
 * Evaluating one query under its deadline with a correction policy: ask the policy which linked
 * models to query, send each the query (one message to its scheduler; the worker answers us
 * directly), combine what arrives before the deadline, and fall back to the app's default output
 * with `default: true` and an explanation when nothing usable arrives, as Clipper does.
 *
 * The policy actor runs this for the shards it owns. Stateless policies (`single`) need no shard,
 * so the ingress runs the same code in-process and saves a round trip.
 */
import type { NatsConnection } from 'nats';
import { ClipperError, isOverloadRefusal } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { bytesKey, shardOf } from '../../shared/hash.js';
import { NearCache } from './near-cache.js';
import { request, Requester } from '../../shared/nats.js';
import { endpoints, PROTOCOL_VERSION, type CacheGet, type PolicyAnswer, type PolicyQuery } from '../../shared/protocol.js';
import type { AppRecord, CacheConfig, PolicyName, RegistryView } from '../../shared/registry.js';
import type { Subjects } from '../../shared/subjects.js';
import type { Tensor } from '../../shared/tensor.js';
import { Exp3Policy } from './exp3-policy.js';
import { Exp4Policy } from './exp4-policy.js';
import { SinglePolicy } from './single-policy.js';
import { ExpectedOutputTracker } from './expected-outputs.js';
import { countsForFanOut, FanOutLimiter } from './fan-out-limiter.js';
import type { PolicyStateStore } from './state-store.js';
import { mulberry32 } from '../../shared/random.js';
import { modelKey, type CorrectionPolicy, type ModelRef, type PolicyContext } from './types.js';

const POLICY_FACTORIES: Record<PolicyName, () => CorrectionPolicy> = {
  single: () => new SinglePolicy(),
  exp3: () => new Exp3Policy(),
  exp4: () => new Exp4Policy(),
};

/** A new instance of the named policy. */
export function createPolicy(name: PolicyName): CorrectionPolicy {
  return (POLICY_FACTORIES[name] ?? POLICY_FACTORIES.single)();
}

const instances = new Map<PolicyName, CorrectionPolicy>();

/** The shared instance of the named policy: policies are pure, their state lives in the store. */
export function policyNamed(name: PolicyName): CorrectionPolicy {
  let p = instances.get(name);
  if (!p) {
    p = createPolicy(name);
    instances.set(name, p);
  }
  return p;
}

/** A model's approximate-cache settings with their defaults. */
function approxSettings(c: CacheConfig): NonNullable<CacheGet['approx']> {
  const tolerance = c.tolerance ?? 0;
  return {
    metric: c.metric ?? 'l2', tolerance, bits: c.bits ?? 4, tables: c.tables ?? 12,
    bucket_width: c.bucket_width ?? Math.max(1e-6, 4 * tolerance), seed: c.seed ?? 1,
  };
}

/** True when the named policy keeps no per-(app, user) state and may run anywhere. */
export function isStatelessPolicy(name: PolicyName): boolean {
  return policyNamed(name).stateless;
}

/**
 * How long before the deadline the policy answers: the reply still has to reach the client. A
 * tenth of the SLO, at most 2 ms.
 */
export function replyMarginMs(sloMicros: number): number {
  return Math.min(2, sloMicros / 10_000);
}

/** How long a model's task has in all (Task.budget_ms): the SLO less the reply margin. */
export function taskBudgetMs(sloMicros: number): number {
  return sloMicros / 1000 - replyMarginMs(sloMicros);
}

/**
 * How long after the deadline a model's answer is still awaited: too late for its query, it still
 * updates the model's expected output, which stands in for it when it straggles again.
 */
export const LATE_ANSWER_GRACE_MS = 1_000;

export interface ExecutorDeps {
  nc: NatsConnection;
  log: Logger;
  subjects: Subjects;
  view: RegistryView;
  /** Cache shards C; queries of models with caching on go to shard hash(model@version, key) mod C. */
  cacheShards?: number;
  /** Per-(app, user) policy state, owned by the policy shard; stateless policies need none. */
  store?: PolicyStateStore<unknown>;
  /** Randomness for policies that sample (Exp3); seeded in tests. */
  rng?: () => number;
  /** Byte budget of the near cache of exact-mode predictions in this process (near-cache.ts); 0 or none: off. */
  nearCacheBytes?: number;
}

export class QueryExecutor {
  private readonly ep;
  private readonly requester: Requester;
  /** Running expected output per (app, model): the substitute for a model that misses the deadline. */
  readonly expected = new ExpectedOutputTracker();
  private readonly fanOut = new FanOutLimiter();
  private readonly rng: () => number;
  /** Exact-mode predictions this process has seen, in front of the cache shards. */
  readonly near?: NearCache;

  constructor(private readonly deps: ExecutorDeps) {
    this.rng = deps.rng ?? mulberry32(Date.now() >>> 0);
    if (deps.nearCacheBytes && deps.nearCacheBytes > 0) this.near = new NearCache(deps.nearCacheBytes);
    this.ep = endpoints(deps.subjects);
    this.requester = new Requester(deps.nc);
  }

  async answer(q: PolicyQuery): Promise<PolicyAnswer> {
    const { view } = this.deps;
    const app = view.apps.get(q.app);
    if (!app) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', q.app);
    const linked = view.links.get(q.app) ?? [];
    if (linked.length === 0) return this.fallback(q, app, `no model is linked to application ${q.app}`);
    const models: ModelRef[] = [];
    for (const name of linked) {
      const version = view.resolveVersion(name, q.version);
      if (version) models.push({ name, version });
    }
    if (models.length === 0) {
      if (q.version) throw new ClipperError('CLIPPER_ERR_VERSION_NOT_FOUND', `no model linked to ${q.app} has version ${q.version}`);
      return this.fallback(q, app, `no linked model of ${q.app} has a current version`);
    }
    const ctx: PolicyContext = { app: q.app, uid: q.uid, models };
    const policy = policyNamed(app.policy);
    const state = this.deps.store ? this.deps.store.stateFor(q.app, q.uid, policy) : policy.initialState();
    // Graceful degradation: under overload only the most valuable models are asked.
    const wanted = policy.select(ctx, state, this.rng);
    const selected = this.fanOut.limit(q.app, wanted);
    const outputs = new Map<string, Tensor>();
    const failures: string[] = [];
    let overloaded: ClipperError | undefined;
    const refused = new Set<string>();
    // Anytime predictions: answer shortly before the deadline with what has arrived; stragglers
    // still finish in the background and update the expected outputs. The models are asked to be
    // done by then, so their schedulers admit only what can make it in time.
    const answerBy = q.deadline_unix_ms - replyMarginMs(app.latency_slo_micros);
    const budgetMs = taskBudgetMs(app.latency_slo_micros);
    const pending = selected.map(async (m) => {
      try {
        const output = await this.evaluate(m, q, answerBy, budgetMs);
        outputs.set(modelKey(m), output);
        this.expected.observe(q.app, m.name, output);
      } catch (err) {
        const e = ClipperError.from(err);
        // Both overload refusals make a query that nothing answered a refusal too; only a model that
        // refused to take the task on for a backlog counts for the fan-out limit (countsForFanOut).
        if (isOverloadRefusal(e.code)) overloaded = e;
        if (countsForFanOut(e)) refused.add(modelKey(m));
        failures.push(`${modelKey(m)}: ${e.message}`);
        this.deps.log.debug({ queryId: q.query_id, model: modelKey(m), code: e.code }, 'model did not answer');
      }
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      // At the deadline, answers already in the socket still count: setImmediate runs after the
      // event loop's I/O phase, so a busy process does not call them late for being read late.
      new Promise<void>((resolve) => (timer = setTimeout(() => setImmediate(resolve), Math.max(0, answerBy - Date.now())))),
    ]);
    clearTimeout(timer);
    const arrived = new Map(outputs);
    this.fanOut.record(q.app, selected, wanted.length, refused);
    // Overload is answered by early rejection (retryable), not by a default output.
    if (arrived.size === 0 && overloaded) throw overloaded;
    // Expected outputs stand in for stragglers, never for every model: no answer at all is the default.
    const combined = arrived.size > 0 ? policy.combine(ctx, state, selected, arrived, (m) => this.expected.expected(q.app, m.name)) : undefined;
    if (!combined) {
      const late = selected.filter((m) => !arrived.has(modelKey(m)) && !failures.some((f) => f.startsWith(`${modelKey(m)}:`)));
      const why = [...failures, ...late.map((m) => `${modelKey(m)}: no answer before the deadline`)].join('; ');
      return this.fallback(q, app, why || 'no model answered before the deadline');
    }
    const answer: PolicyAnswer = { v: PROTOCOL_VERSION, query_id: q.query_id, output: combined.output, default: false, models: combined.models };
    if (combined.missing && combined.missing.length > 0) answer.missing = combined.missing;
    if (combined.confidence !== undefined && selected.length > 1) answer.confidence = combined.confidence;
    return answer;
  }

  /**
   * One model's output for a query: through its cache shard when caching is on, else its scheduler.
   * `answerByUnixMs` is when the output is needed (the task's deadline), `budgetMs` how long the task
   * had in all until then; the output is still awaited until LATE_ANSWER_GRACE_MS after the query's
   * deadline.
   */
  private async evaluate(m: ModelRef, q: PolicyQuery, answerByUnixMs = q.deadline_unix_ms, budgetMs?: number): Promise<Tensor> {
    const task = { v: PROTOCOL_VERSION, query_id: q.query_id, deadline_unix_ms: answerByUnixMs, ...(budgetMs !== undefined ? { budget_ms: budgetMs } : {}), input: q.input };
    const opts = { noResponders: 'CLIPPER_ERR_MODEL_UNAVAILABLE', timeout: 'CLIPPER_ERR_QUERY_EXPIRED' } as const;
    const record = this.deps.view.model(m.name, m.version);
    const cache = record?.cache;
    if ((cache?.mode === 'exact' || cache?.mode === 'approx') && !q.no_cache) {
      // The cache forwards a miss to the scheduler with our reply subject: one leg, not a round trip.
      const key = bytesKey(q.input.data);
      const approx = cache.mode === 'approx' ? approxSettings(cache) : undefined;
      const modelVersion = `${m.name}@${m.version}`;
      if (!approx && this.near) {
        const hit = this.near.get(modelVersion, key, q.input.data);
        if (hit) return hit;
      }
      // Approximate lookups need every entry of the model version in one shard.
      const shard = shardOf(approx ? modelVersion : `${modelVersion}:${key}`, this.deps.cacheShards ?? 1);
      try {
        const res = await request(this.requester, this.deps.subjects.cacheGet(shard), { ...task, model: m.name, version: m.version, key, ...(approx ? { approx } : {}) }, this.ep.batch.response, {
          ...opts, timeoutMs: q.deadline_unix_ms + LATE_ANSWER_GRACE_MS - Date.now(), noResponders: 'CLIPPER_ERR_SERVICE_UNAVAILABLE',
        });
        // An exact answer is the model's output for exactly these bytes (an approximate one is not).
        if (!approx) this.near?.put(modelVersion, key, q.input.data, res.output);
        return res.output;
      } catch (err) {
        // No cache shard is running: ask the model directly rather than fail the query.
        if (!(err instanceof ClipperError) || err.code !== 'CLIPPER_ERR_SERVICE_UNAVAILABLE') throw err;
        this.deps.log.warn({ shard }, 'cache shard unavailable, asking the model directly');
      }
    }
    const res = await request(this.requester, this.deps.subjects.batch(m.name, m.version), task, this.ep.batch.response, { ...opts, timeoutMs: q.deadline_unix_ms + LATE_ANSWER_GRACE_MS - Date.now() });
    return res.output;
  }

  private fallback(q: PolicyQuery, app: AppRecord, why: string): PolicyAnswer {
    this.deps.log.debug({ queryId: q.query_id, app: app.name, why }, 'default output returned');
    return { v: PROTOCOL_VERSION, query_id: q.query_id, output: app.default_output, default: true, default_explanation: why };
  }

  // ---- the feedback path ---------------------------------------------------------------------------

  private feedbackQueries = 0;

  /**
   * The output of every model linked to `app` (its current version) on `input`, keyed `name:version`
   * in link order. Models that fail or do not answer within `timeoutMs` are absent. The policy
   * shard's feedback consumer evaluates each observation with it (through the cache when it is on).
   */
  async outputsFor(app: string, input: Tensor, timeoutMs: number): Promise<Map<string, Tensor>> {
    const { view } = this.deps;
    const models: ModelRef[] = [];
    for (const name of view.links.get(app) ?? []) {
      const version = view.resolveVersion(name);
      if (version) models.push({ name, version });
    }
    const q: PolicyQuery = { v: PROTOCOL_VERSION, query_id: `feedback-${(++this.feedbackQueries).toString(36)}`, app, uid: '', input, deadline_unix_ms: Date.now() + timeoutMs };
    const results = await Promise.all(models.map((m) => this.evaluate(m, q).catch((err: unknown) => {
      this.deps.log.debug({ app, model: modelKey(m), code: ClipperError.from(err).code }, 'model did not answer a feedback input');
      return undefined;
    })));
    const outputs = new Map<string, Tensor>();
    models.forEach((m, i) => {
      const t = results[i];
      if (t) outputs.set(modelKey(m), t);
    });
    return outputs;
  }
}
