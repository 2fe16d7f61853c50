/**
 * The subject scheme, built in one place. Every subject starts with a configurable prefix `<p>`
 * (default `clipper`) so that several deployments, or several tests, can share one NATS server.
 *
 *   <p>.predict.<app>                          public request/reply: a query → its prediction
 *   <p>.feedback.<app>                         public request/reply: an observation → its ack
 *   <p>.policy.<app>.<shard>                   internal: a query with its deadline, to the policy shard
 *                                              that owns hash(app, uid) mod P
 *   <p>.cache.<shard>.get | .put               internal: prediction cache lookup / insert
 *   <p>.batch.<model>.<version>                internal: one task into the scheduler of a model version
 *   <p>.worker.<model>.<version>.<replica>     internal: one batch to one worker replica
 *   <p>.events.<actor>.<id...>                 heartbeats, readiness and load; a worker's id is
 *                                              <model>.<version>.<replica>
 *   <p>.feedback.<app>.<shard>                 JetStream stream <P>_FEEDBACK: one stored observation,
 *                                              shard = the policy shard of hash(app, uid) mod P
 *   <p>.outcome.<app>.<shard>                  JetStream stream <P>_OUTCOMES: an observation with the
 *                                              linked models' outputs on its input, appended by the shard
 *   <p>.control.policy.<shard>                 internal request/reply: control of one policy shard
 *                                              (replay, state); not <p>.policy.control.<shard>, which
 *                                              an app named `control` would share with its queries
 *
 * Stream names are the prefix upper-cased with dots as underscores (`clipper` → CLIPPER_FEEDBACK,
 * CLIPPER_OUTCOMES); KV buckets are the prefix with dots as underscores (`clipper-registry`,
 * `clipper-policy-state`).
 * Names (apps, models, versions, replicas) match NAME_PATTERN, so they are always one subject token.
 */
export const NAME_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const NAME_RE = new RegExp(NAME_PATTERN);
const PREFIX_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

function token(name: string, what: string): string {
  if (!isValidName(name)) throw new Error(`invalid ${what} name ${JSON.stringify(name)}: must match ${NAME_PATTERN}`);
  return name;
}

export class Subjects {
  readonly prefix: string;

  constructor(prefix = 'clipper') {
    if (!PREFIX_RE.test(prefix)) throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
  }

  predict(app: string): string {
    return `${this.prefix}.predict.${token(app, 'app')}`;
  }

  /** Wildcard the ingress subscribes to: every app's predict subject. */
  predictAll(): string {
    return `${this.prefix}.predict.*`;
  }

  feedback(app: string): string {
    return `${this.prefix}.feedback.${token(app, 'app')}`;
  }

  /** Wildcard the ingress subscribes to: every app's public feedback subject. */
  feedbackAll(): string {
    return `${this.prefix}.feedback.*`;
  }

  policy(app: string, shard: number): string {
    return `${this.prefix}.policy.${token(app, 'app')}.${shardToken(shard)}`;
  }

  /** Wildcard a policy process subscribes to for one shard it owns, across all apps. */
  policyShard(shard: number): string {
    return `${this.prefix}.policy.*.${shardToken(shard)}`;
  }

  cacheGet(shard: number): string {
    return `${this.prefix}.cache.${shardToken(shard)}.get`;
  }

  cachePut(shard: number): string {
    return `${this.prefix}.cache.${shardToken(shard)}.put`;
  }

  batch(model: string, version: string): string {
    return `${this.prefix}.batch.${token(model, 'model')}.${token(version, 'version')}`;
  }

  worker(model: string, version: string, replica: string): string {
    return `${this.prefix}.worker.${token(model, 'model')}.${token(version, 'version')}.${token(replica, 'replica')}`;
  }

  /** Heartbeat subject of one actor instance; `id` may be several tokens joined by dots. */
  events(actor: string, ...id: string[]): string {
    return [this.prefix, 'events', token(actor, 'actor'), ...id.map((t) => token(t, 'id'))].join('.');
  }

  /** Heartbeats of every worker replica of one model version. */
  workerEvents(model: string, version: string): string {
    return `${this.prefix}.events.worker.${token(model, 'model')}.${token(version, 'version')}.*`;
  }

  /** Name of the JetStream KV bucket that holds the registry. */
  registryBucket(): string {
    return `${this.prefix.replaceAll('.', '_')}-registry`;
  }

  /** A stored observation of `app`, in the FEEDBACK stream, routed to its policy shard. */
  feedbackRecord(app: string, shard: number): string {
    return `${this.prefix}.feedback.${token(app, 'app')}.${shardToken(shard)}`;
  }

  /** FEEDBACK of one policy shard (every app), of one app (every shard), or all of it. */
  feedbackRecords(shard?: number, app?: string): string {
    return `${this.prefix}.feedback.${app === undefined ? '*' : token(app, 'app')}.${shard === undefined ? '*' : shardToken(shard)}`;
  }

  /** An evaluated observation of `app` (its models' outputs), in the OUTCOMES stream. */
  outcome(app: string, shard: number): string {
    return `${this.prefix}.outcome.${token(app, 'app')}.${shardToken(shard)}`;
  }

  /** OUTCOMES of one policy shard (every app), of one app (every shard), or all of them. */
  outcomes(shard?: number, app?: string): string {
    return `${this.prefix}.outcome.${app === undefined ? '*' : token(app, 'app')}.${shard === undefined ? '*' : shardToken(shard)}`;
  }

  /** Control requests (replay, state) to one policy shard's owner. */
  policyControl(shard: number): string {
    return `${this.prefix}.control.policy.${shardToken(shard)}`;
  }

  /** Name of the JetStream stream of stored feedback. */
  feedbackStream(): string {
    return `${this.streamPrefix()}_FEEDBACK`;
  }

  /** Name of the JetStream stream of evaluated feedback (outcomes). */
  outcomeStream(): string {
    return `${this.streamPrefix()}_OUTCOMES`;
  }

  /** Name of the JetStream KV bucket that holds the policy shards' state snapshots. */
  policyStateBucket(): string {
    return `${this.prefix.replaceAll('.', '_')}-policy-state`;
  }

  private streamPrefix(): string {
    return this.prefix.replaceAll('.', '_').toUpperCase();
  }

  /** The last token of a subject (the app of a predict subject, for example). */
  static lastToken(subject: string): string {
    return subject.slice(subject.lastIndexOf('.') + 1);
  }

  /** The token at `index` (0-based) of a subject. */
  static tokenAt(subject: string, index: number): string | undefined {
    return subject.split('.')[index];
  }
}

function shardToken(shard: number): string {
  if (!Number.isInteger(shard) || shard < 0) throw new Error(`invalid shard ${shard}`);
  return String(shard);
}
