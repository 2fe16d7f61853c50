/**
 * The scheduler actor of one model version. Tasks arrive on `<p>.batch.<model>.<version>` and wait
 * in an earliest-deadline-first queue; whenever a worker replica has capacity the scheduler takes
 * the next batch (size from a BatchSizer), skipping tasks whose deadline has passed (they are
 * answered "expired"), and sends it to that replica. Each task's answer goes straight back to the
 * task's requester: the worker sends it there directly.
 */
import { RequestStrategy, type Msg, type NatsConnection, type Service, type Subscription } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { decode, encode } from '../../shared/codec.js';
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, natsRequestError, errorFromReply, replyError } from '../../shared/nats.js';
import { endpoints, heartbeatMessage, PROTOCOL_VERSION, type Batch, type Heartbeat } from '../../shared/protocol.js';
import { openRegistryBucket, RegistryView } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { checkTensor, type Tensor } from '../../shared/tensor.js';
import { createBatchSizer, type BatchSizer } from './batch-sizer.js';
import { DeadlineQueue } from './deadline-queue.js';
import type { SchedulerConfig } from './types.js';

interface PendingTask {
  msg: Msg;
  queryId: string;
  deadlineUnixMs: number;
  input: Tensor;
}

interface Replica {
  id: string;
  subject: string;
  inFlight: number;
  lastSeenUnixMs: number;
}

export interface SchedulerDeps {
  nc: NatsConnection;
  log: Logger;
}

export class Scheduler implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private readonly queue = new DeadlineQueue<PendingTask>();
  private readonly replicas = new Map<string, Replica>();
  private readonly view: RegistryView;
  private sizer: BatchSizer = createBatchSizer(-1);
  private batchSizeSetting = Number.NaN;
  private service?: Service;
  private events?: Subscription;
  private sweeper?: NodeJS.Timeout;
  private expiryTimer?: NodeJS.Timeout;
  private expiryAt = Infinity;
  private batchSeq = 0;
  private inFlightBatches = 0;
  private accepting = true;

  constructor(private readonly config: Readonly<SchedulerConfig>, private readonly deps: SchedulerDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
  }

  async start(): Promise<void> {
    const { nc } = this.deps;
    const { model, version } = this.config;
    await this.view.start(await openRegistryBucket(nc, this.subjects));
    this.applyModelSettings();
    this.view.onChange(() => this.applyModelSettings());

    this.events = nc.subscribe(this.subjects.workerEvents(model, version), { callback: (err, msg) => !err && this.onHeartbeat(msg) });
    await this.discoverReplicas();
    this.sweeper = setInterval(() => this.dropSilentReplicas(), Math.max(100, this.config.replicaTimeoutMs / 3));

    this.service = await nc.services.add({ name: 'clipper-scheduler', version: '0.1.0', description: `queue of ${model}:${version}`, metadata: { model, version } });
    this.service.addEndpoint('tasks', {
      subject: this.subjects.batch(model, version),
      queue: 'scheduler',
      handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : this.onTask(msg)),
    });
  }

  private applyModelSettings(): void {
    const record = this.view.model(this.config.model, this.config.version);
    if (!record || record.batch_size === this.batchSizeSetting) return;
    this.batchSizeSetting = record.batch_size;
    this.sizer = createBatchSizer(record.batch_size);
    this.deps.log.info({ batchSize: record.batch_size, maxBatch: this.sizer.batchSize() }, 'batch size set');
  }

  /** Finds replicas that were up before this scheduler, through NATS service discovery. */
  private async discoverReplicas(): Promise<void> {
    try {
      const infos = await this.deps.nc.services.client({ strategy: RequestStrategy.JitterTimer, maxWait: 300 }).info('clipper-worker');
      for await (const info of infos) {
        const md = info.metadata ?? {};
        const subject = info.endpoints[0]?.subject;
        if (md.model === this.config.model && md.version === this.config.version && md.replica && subject) {
          this.upsertReplica(`${md.model}.${md.version}.${md.replica}`, subject);
        }
      }
    } catch (err) {
      this.deps.log.debug({ err }, 'worker discovery found nothing');
    }
  }

  private onHeartbeat(msg: Msg): void {
    let hb: Heartbeat;
    try {
      hb = heartbeatMessage.parse(decode(msg.data));
    } catch (err) {
      this.deps.log.warn({ err }, 'bad heartbeat ignored');
      return;
    }
    if (hb.state === 'ready' && hb.subject) this.upsertReplica(hb.id, hb.subject);
    else if (hb.state === 'stopping' && this.replicas.delete(hb.id)) this.deps.log.info({ replica: hb.id }, 'replica left');
  }

  private upsertReplica(id: string, subject: string): void {
    const known = this.replicas.get(id);
    if (known) {
      known.lastSeenUnixMs = Date.now();
      return;
    }
    this.replicas.set(id, { id, subject, inFlight: 0, lastSeenUnixMs: Date.now() });
    this.deps.log.info({ replica: id, replicas: this.replicas.size }, 'replica joined');
    this.pump();
  }

  private dropSilentReplicas(): void {
    const cutoff = Date.now() - this.config.replicaTimeoutMs;
    for (const r of this.replicas.values()) {
      if (r.lastSeenUnixMs < cutoff) {
        this.replicas.delete(r.id);
        this.deps.log.warn({ replica: r.id }, 'replica missed heartbeats, dropped');
      }
    }
  }

  private onTask(msg: Msg): void {
    let task: PendingTask;
    try {
      const t = decodeRequest(msg, this.ep.batch.request);
      task = { msg, queryId: t.query_id, deadlineUnixMs: t.deadline_unix_ms, input: checkTensor(t.input) };
    } catch (err) {
      replyError(msg, err);
      return;
    }
    if (!this.accepting) {
      replyError(msg, new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', 'scheduler is shutting down'));
      return;
    }
    if (task.deadlineUnixMs <= Date.now()) {
      this.expire(task);
      return;
    }
    if (this.queue.size >= this.config.maxQueueLength) {
      replyError(msg, new ClipperError('CLIPPER_ERR_QUEUE_FULL', `${this.queue.size} tasks queued for ${this.config.model}:${this.config.version}`));
      return;
    }
    this.queue.push(task);
    this.pump();
  }

  private expire(task: PendingTask): void {
    replyError(task.msg, new ClipperError('CLIPPER_ERR_QUERY_EXPIRED', `query ${task.queryId} expired in the queue of ${this.config.model}:${this.config.version}`));
  }

  /** Sends batches while there are tasks and replicas with capacity. */
  private pump(): void {
    for (;;) {
      for (const t of this.queue.popExpired(Date.now())) this.expire(t);
      if (this.queue.size === 0) return;
      const replica = this.pickReplica();
      if (!replica) break;
      const max = this.sizer.batchSize();
      const tasks: PendingTask[] = [];
      const now = Date.now();
      while (tasks.length < max && this.queue.size > 0) {
        const t = this.queue.pop()!;
        if (t.deadlineUnixMs <= now) this.expire(t);
        else tasks.push(t);
      }
      if (tasks.length > 0) void this.dispatch(replica, tasks);
    }
    this.armExpiry();
  }

  /** Least-loaded replica that still has capacity. */
  private pickReplica(): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.replicas.values()) {
      if (r.inFlight < this.config.replicaCapacity && (!best || r.inFlight < best.inFlight)) best = r;
    }
    return best;
  }

  /** With work queued but no capacity, wake at the earliest deadline to answer expired tasks. */
  private armExpiry(): void {
    const head = this.queue.peek();
    if (!head || head.deadlineUnixMs >= this.expiryAt) return;
    clearTimeout(this.expiryTimer);
    this.expiryAt = head.deadlineUnixMs;
    this.expiryTimer = setTimeout(() => {
      this.expiryAt = Infinity;
      this.pump();
    }, Math.max(0, head.deadlineUnixMs - Date.now()) + 1);
  }

  private async dispatch(replica: Replica, tasks: PendingTask[]): Promise<void> {
    replica.inFlight++;
    this.inFlightBatches++;
    const deadline = Math.max(...tasks.map((t) => t.deadlineUnixMs));
    const batch: Batch = {
      v: PROTOCOL_VERSION, batch_id: `${this.config.model}-${++this.batchSeq}`, deadline_unix_ms: deadline,
      inputs: tasks.map((t) => t.input), reply_to: tasks.map((t) => t.msg.reply ?? ''),
    };
    const started = process.hrtime.bigint();
    try {
      const res = await this.deps.nc.request(replica.subject, encode(batch), { timeout: Math.max(1_000, deadline - Date.now() + 1_000) });
      const failure = errorFromReply(res);
      if (failure) throw failure;
      const result = this.ep.worker.response.parse(decode(res.data));
      // The worker has answered each task's requester directly (reply_to).
      const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
      this.sizer.observe(tasks.length, latencyUs);
      this.deps.log.debug({ replica: replica.id, batchSize: tasks.length, latencyUs, computeUs: result.compute_us }, 'batch done');
    } catch (err) {
      const e = err instanceof ClipperError ? err : natsRequestError(err, replica.subject, { noResponders: 'CLIPPER_ERR_MODEL_UNAVAILABLE', timeout: 'CLIPPER_ERR_MODEL_UNAVAILABLE' });
      this.deps.log.warn({ replica: replica.id, batchSize: tasks.length, code: e.code, err: e.message }, 'batch failed');
      if (e.code === 'CLIPPER_ERR_MODEL_UNAVAILABLE') this.replicas.delete(replica.id);
      for (const t of tasks) replyError(t.msg, e);
    } finally {
      replica.inFlight--;
      this.inFlightBatches--;
      this.pump();
    }
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.accepting = false;
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    while ((this.queue.size > 0 || this.inFlightBatches > 0) && Date.now() < until) await sleep(10);
    for (const t of this.queue.drain()) replyError(t.msg, new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', 'scheduler stopped'));
    clearInterval(this.sweeper);
    clearTimeout(this.expiryTimer);
    this.events?.unsubscribe();
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
