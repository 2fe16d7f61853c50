/**
 * The policy actor. It owns shards of (app, user) state and evaluates the queries routed to its
 * shards with a QueryExecutor (select models, query them under the deadline, combine, fall back).
 */
import type { Msg, NatsConnection, Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, reply, replyError } from '../../shared/nats.js';
import { endpoints } from '../../shared/protocol.js';
import { openRegistryBucket, RegistryView } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { initHash } from '../../shared/hash.js';
import { QueryExecutor } from './executor.js';
import type { PolicyConfig } from './types.js';
import { ownedShards } from '../../shared/shards.js';

export interface PolicyDeps {
  nc: NatsConnection;
  log: Logger;
}

export class PolicyActor implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private readonly view: RegistryView;
  private readonly executor: QueryExecutor;
  private service?: Service;
  private inFlight = 0;

  constructor(private readonly config: Readonly<PolicyConfig>, private readonly deps: PolicyDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
    this.executor = new QueryExecutor({ ...deps, subjects: this.subjects, view: this.view, cacheShards: config.cacheShards });
  }

  get ownedShards(): number[] {
    return ownedShards(this.config.shards, this.config.ownedShards);
  }

  async start(): Promise<void> {
    await initHash();
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

  private async onQuery(msg: Msg): Promise<void> {
    this.inFlight++;
    try {
      const q = decodeRequest(msg, this.ep.policy.request);
      reply(msg, await this.executor.answer(q));
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
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
