/**
 * The policy actor. It owns shards of (app, user) state and evaluates the queries routed to its
 * shards with a QueryExecutor (select models, query them under the deadline, combine, fall back).
 * Each owned shard has its own state store, shared by its query path and its feedback consumer
 * (feedback-consumer.ts), which restores the state at start and keeps it learning from FEEDBACK.
 */
import type { Msg, NatsConnection, Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { ClipperError } from '../../shared/errors.js';
import { ensureFeedbackStreams, openPolicyStateBucket } from '../../shared/feedback-stream.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, reply, replyError } from '../../shared/nats.js';
import { endpoints, policyControlRequestMessage, PROTOCOL_VERSION, type PolicyControlReply, type PolicyStatsPayload } from '../../shared/protocol.js';
import { openRegistryBucket, RegistryView } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { initHash } from '../../shared/hash.js';
import { encode } from '../../shared/codec.js';
import { contextLogWeights, softmax, type LogWeightState } from './exp3-policy.js';
import { policyNamed, QueryExecutor } from './executor.js';
import { ShardFeedbackConsumer } from './feedback-consumer.js';
import { PolicyStateStore } from './state-store.js';
import type { PolicyConfig } from './types.js';
import { ownedShards } from '../../shared/shards.js';

export interface PolicyDeps {
  nc: NatsConnection;
  log: Logger;
}

/** One owned shard: its state, the executor that answers its queries, its feedback consumer. */
interface OwnedShard {
  store: PolicyStateStore<unknown>;
  executor: QueryExecutor;
  feedback?: ShardFeedbackConsumer;
}

export class PolicyActor implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private readonly view: RegistryView;
  private readonly shards = new Map<number, OwnedShard>();
  private service?: Service;
  private inFlight = 0;

  constructor(private readonly config: Readonly<PolicyConfig>, private readonly deps: PolicyDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
    for (const shard of this.ownedShards) {
      const store = new PolicyStateStore<unknown>();
      this.shards.set(shard, { store, executor: new QueryExecutor({ ...deps, subjects: this.subjects, view: this.view, cacheShards: config.cacheShards, store }) });
    }
  }

  get ownedShards(): number[] {
    return ownedShards(this.config.shards, this.config.ownedShards);
  }

  async start(): Promise<void> {
    await initHash();
    await this.view.start(await openRegistryBucket(this.deps.nc, this.subjects));
    await this.startFeedback();
    this.service = await this.deps.nc.services.add({
      name: 'clipper-policy', version: '0.1.0', metadata: { shards: String(this.config.shards), owned: this.ownedShards.join(','), prefix: this.config.prefix },
      statsHandler: () => Promise.resolve(this.stats()),
    });
    for (const shard of this.ownedShards) {
      this.service.addEndpoint(`shard-${shard}`, {
        subject: this.subjects.policyShard(shard),
        queue: `policy-${shard}`,
        handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : void this.onQuery(shard, msg)),
      });
      this.service.addEndpoint(`control-${shard}`, {
        subject: this.subjects.policyControl(shard),
        queue: `policy-${shard}`,
        handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : void this.onControl(shard, msg)),
      });
    }
    for (const s of this.shards.values()) await s.feedback?.start();
  }

  /** Restores every owned shard's state (snapshot + OUTCOMES) before the shard serves queries. */
  private async startFeedback(): Promise<void> {
    const { nc, log } = this.deps;
    const jsm = await nc.jetstreamManager();
    await ensureFeedbackStreams(jsm, this.subjects, this.config);
    const kv = await openPolicyStateBucket(nc, this.subjects);
    const config = {
      snapshotEvery: this.config.feedbackSnapshotEvery, snapshotMs: this.config.feedbackSnapshotMs,
      evalTimeoutMs: this.config.feedbackEvalTimeoutMs, ackWaitMs: this.config.feedbackAckWaitMs,
    };
    for (const [shard, s] of this.shards) {
      s.feedback = new ShardFeedbackConsumer(shard, config, {
        nc, jsm, log, kv, subjects: this.subjects, view: this.view, executor: s.executor, store: s.store, policyFor: policyNamed,
      });
      await s.feedback.restore();
    }
  }


  /** `$SRV.STATS.clipper-policy`: the feedback counters and the population's model weights of every owned shard. */
  stats(): PolicyStatsPayload {
    return {
      feedback: Object.fromEntries([...this.shards].map(([shard, s]) => [String(shard), s.feedback?.stats()])),
      weights: Object.fromEntries([...this.shards].map(([shard, s]) => [String(shard), this.populationWeights(s.store)])),
    };
  }

  /**
   * Per app with log-weight state (exp3, exp4): softmax(log w) over its linked models, what the
   * population's queries are drawn or combined by (a model without a weight yet gets the mean).
   */
  private populationWeights(store: PolicyStateStore<unknown>): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const app of store.apps()) {
      const population = store.population(app) as Partial<LogWeightState> | undefined;
      const linked = this.view.links.get(app) ?? [];
      if (!population || typeof population.weights !== 'object' || population.weights === null || linked.length === 0) continue;
      const w = softmax(contextLogWeights(linked.map((name) => ({ name, version: this.view.current.get(name) ?? '' })), population.weights));
      out[app] = Object.fromEntries(linked.map((name, i) => [name, w[i]!]));
    }
    return out;
  }

  private async onQuery(shard: number, msg: Msg): Promise<void> {
    this.inFlight++;
    try {
      const q = decodeRequest(msg, this.ep.policy.request);
      if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: q.query_id, app: q.app, shard }, 'query received');
      reply(msg, await this.shards.get(shard)!.executor.answer(q));
    } catch (err) {
      replyError(msg, err);
    } finally {
      this.inFlight--;
    }
  }

  /** Replay (with progress messages while it runs) or the state of one app on one shard. */
  private async onControl(shard: number, msg: Msg): Promise<void> {
    this.inFlight++;
    try {
      const req = decodeRequest(msg, policyControlRequestMessage);
      if (!this.view.apps.has(req.app)) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', req.app);
      const feedback = this.shards.get(shard)!.feedback!;
      const base = { v: PROTOCOL_VERSION, shard, app: req.app };
      if (req.op === 'replay') {
        const progress = req.progress_subject;
        const { replayed, seconds } = await feedback.replay(req, progress ? (p) => this.deps.nc.publish(progress, encode(p)) : undefined);
        const { applied, feedback_seq } = feedback.state(req.app);
        reply(msg, { ...base, applied, feedback_seq, replayed, seconds } satisfies PolicyControlReply);
      } else {
        reply(msg, { ...base, ...feedback.state(req.app) } satisfies PolicyControlReply);
      }
    } catch (err) {
      replyError(msg, err);
    } finally {
      this.inFlight--;
    }
  }

  async stop(graceMs = 5_000): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < until) await sleep(10);
    for (const s of this.shards.values()) await s.feedback?.stop().catch((err: unknown) => this.deps.log.error({ err }, 'feedback consumer stop failed'));
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
