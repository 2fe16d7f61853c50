/**
 * The policy actor. It owns shards of (app, user) state; for each query it asks its correction
 * policy which linked models to evaluate, sends them the query with its deadline, combines what
 * arrives before the deadline, and answers with the app's default output (`default: true` and an
 * explanation) when no model answered in time, as Clipper does.
 */
import type { Msg, NatsConnection, Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, reply, replyError, request } from '../../shared/nats.js';
import { endpoints, PROTOCOL_VERSION, type PolicyAnswer, type PolicyQuery } from '../../shared/protocol.js';
import { openRegistryBucket, RegistryView, type AppRecord, type PolicyName } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import type { Tensor } from '../../shared/tensor.js';
import { SinglePolicy } from './single-policy.js';
import { modelKey, type CorrectionPolicy, type ModelRef, type PolicyConfig, type PolicyContext } from './types.js';

export interface PolicyDeps {
  nc: NatsConnection;
  log: Logger;
}

const POLICY_FACTORIES: Record<PolicyName, () => CorrectionPolicy> = {
  single: () => new SinglePolicy(),
};

export class PolicyActor implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private readonly view: RegistryView;
  private readonly policies = new Map<PolicyName, CorrectionPolicy>();
  private service?: Service;
  private inFlight = 0;

  constructor(private readonly config: Readonly<PolicyConfig>, private readonly deps: PolicyDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
  }

  get ownedShards(): number[] {
    const all = Array.from({ length: this.config.shards }, (_, i) => i);
    return this.config.ownedShards.length ? this.config.ownedShards.filter((s) => s < this.config.shards) : all;
  }

  async start(): Promise<void> {
    await this.view.start(await openRegistryBucket(this.deps.nc, this.subjects));
    this.service = await this.deps.nc.services.add({ name: 'clipper-policy', version: '0.1.0', metadata: { shards: String(this.config.shards), owned: this.ownedShards.join(',') } });
    for (const shard of this.ownedShards) {
      this.service.addEndpoint(`shard-${shard}`, {
        subject: this.subjects.policyShard(shard),
        queue: `policy-${shard}`,
        handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : void this.onQuery(msg)),
      });
    }
  }

  private policyFor(app: AppRecord): CorrectionPolicy {
    let p = this.policies.get(app.policy);
    if (!p) {
      const factory = POLICY_FACTORIES[app.policy] ?? POLICY_FACTORIES.single;
      p = factory();
      this.policies.set(app.policy, p);
    }
    return p;
  }

  private async onQuery(msg: Msg): Promise<void> {
    this.inFlight++;
    try {
      const q = decodeRequest(msg, this.ep.policy.request);
      reply(msg, await this.answer(q));
    } catch (err) {
      replyError(msg, err);
    } finally {
      this.inFlight--;
    }
  }

  /** Evaluates one query under its deadline. */
  async answer(q: PolicyQuery): Promise<PolicyAnswer> {
    const app = this.view.apps.get(q.app);
    if (!app) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', q.app);
    const linked = this.view.links.get(q.app) ?? [];
    if (linked.length === 0) return this.fallback(q, app, `no model is linked to application ${q.app}`);
    const models: ModelRef[] = [];
    for (const name of linked) {
      const version = this.view.resolveVersion(name, q.version);
      if (version) models.push({ name, version });
    }
    if (models.length === 0) {
      if (q.version) throw new ClipperError('CLIPPER_ERR_VERSION_NOT_FOUND', `no model linked to ${q.app} has version ${q.version}`);
      return this.fallback(q, app, `no linked model of ${q.app} has a current version`);
    }
    const ctx: PolicyContext = { app: q.app, uid: q.uid, models };
    const policy = this.policyFor(app);
    const selected = policy.select(ctx);
    const outputs = new Map<string, Tensor>();
    const failures: string[] = [];
    await Promise.all(selected.map(async (m) => {
      try {
        const res = await request(this.deps.nc, this.subjects.batch(m.name, m.version), { v: PROTOCOL_VERSION, query_id: q.query_id, deadline_unix_ms: q.deadline_unix_ms, input: q.input }, this.ep.batch.response, {
          timeoutMs: q.deadline_unix_ms - Date.now(),
          noResponders: 'CLIPPER_ERR_MODEL_UNAVAILABLE',
          timeout: 'CLIPPER_ERR_QUERY_EXPIRED',
        });
        outputs.set(modelKey(m), res.output);
      } catch (err) {
        const e = ClipperError.from(err);
        failures.push(`${modelKey(m)}: ${e.message}`);
        this.deps.log.debug({ queryId: q.query_id, model: modelKey(m), code: e.code }, 'model did not answer');
      }
    }));
    const combined = policy.combine(ctx, outputs);
    if (!combined) return this.fallback(q, app, failures.join('; ') || 'no model answered before the deadline');
    return { v: PROTOCOL_VERSION, query_id: q.query_id, output: combined.output, default: false, models: combined.models };
  }

  private fallback(q: PolicyQuery, app: AppRecord, why: string): PolicyAnswer {
    this.deps.log.info({ queryId: q.query_id, app: app.name, why }, 'default output returned');
    return { v: PROTOCOL_VERSION, query_id: q.query_id, output: app.default_output, default: true, default_explanation: why };
  }

  async stop(graceMs = 5_000): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < until) await sleep(10);
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
