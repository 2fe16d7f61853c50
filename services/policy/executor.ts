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
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { request, Requester } from '../../shared/nats.js';
import { endpoints, PROTOCOL_VERSION, type PolicyAnswer, type PolicyQuery } from '../../shared/protocol.js';
import type { AppRecord, PolicyName, RegistryView } from '../../shared/registry.js';
import type { Subjects } from '../../shared/subjects.js';
import type { Tensor } from '../../shared/tensor.js';
import { SinglePolicy } from './single-policy.js';
import { modelKey, type CorrectionPolicy, type ModelRef, type PolicyContext } from './types.js';

const POLICY_FACTORIES: Record<PolicyName, () => CorrectionPolicy> = {
  single: () => new SinglePolicy(),
};

/** A new instance of the named policy. */
export function createPolicy(name: PolicyName): CorrectionPolicy {
  return (POLICY_FACTORIES[name] ?? POLICY_FACTORIES.single)();
}

const statelessByName = new Map<PolicyName, boolean>();

/** True when the named policy keeps no per-(app, user) state and may run anywhere. */
export function isStatelessPolicy(name: PolicyName): boolean {
  let stateless = statelessByName.get(name);
  if (stateless === undefined) {
    stateless = createPolicy(name).stateless;
    statelessByName.set(name, stateless);
  }
  return stateless;
}

export interface ExecutorDeps {
  nc: NatsConnection;
  log: Logger;
  subjects: Subjects;
  view: RegistryView;
}

export class QueryExecutor {
  private readonly policies = new Map<PolicyName, CorrectionPolicy>();
  private readonly ep;
  private readonly requester: Requester;

  constructor(private readonly deps: ExecutorDeps) {
    this.ep = endpoints(deps.subjects);
    this.requester = new Requester(deps.nc);
  }

  private policyFor(app: AppRecord): CorrectionPolicy {
    let p = this.policies.get(app.policy);
    if (!p) {
      p = createPolicy(app.policy);
      this.policies.set(app.policy, p);
    }
    return p;
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
    const policy = this.policyFor(app);
    const outputs = new Map<string, Tensor>();
    const failures: string[] = [];
    let overloaded: ClipperError | undefined;
    await Promise.all(policy.select(ctx).map(async (m) => {
      try {
        const res = await request(this.requester, this.deps.subjects.batch(m.name, m.version), { v: PROTOCOL_VERSION, query_id: q.query_id, deadline_unix_ms: q.deadline_unix_ms, input: q.input }, this.ep.batch.response, {
          timeoutMs: q.deadline_unix_ms - Date.now(),
          noResponders: 'CLIPPER_ERR_MODEL_UNAVAILABLE',
          timeout: 'CLIPPER_ERR_QUERY_EXPIRED',
        });
        outputs.set(modelKey(m), res.output);
      } catch (err) {
        const e = ClipperError.from(err);
        if (e.code === 'CLIPPER_ERR_QUEUE_FULL') overloaded = e;
        failures.push(`${modelKey(m)}: ${e.message}`);
        this.deps.log.debug({ queryId: q.query_id, model: modelKey(m), code: e.code }, 'model did not answer');
      }
    }));
    const combined = policy.combine(ctx, outputs);
    // Overload is answered by early rejection (retryable), not by a default output.
    if (!combined && overloaded && outputs.size === 0) throw overloaded;
    if (!combined) return this.fallback(q, app, failures.join('; ') || 'no model answered before the deadline');
    return { v: PROTOCOL_VERSION, query_id: q.query_id, output: combined.output, default: false, models: combined.models };
  }

  private fallback(q: PolicyQuery, app: AppRecord, why: string): PolicyAnswer {
    this.deps.log.debug({ queryId: q.query_id, app: app.name, why }, 'default output returned');
    return { v: PROTOCOL_VERSION, query_id: q.query_id, output: app.default_output, default: true, default_explanation: why };
  }
}
