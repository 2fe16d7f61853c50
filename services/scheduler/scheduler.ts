/**
 * The scheduler actor of one model version. Tasks arrive on `<p>.batch.<model>.<version>` and wait
 * in an earliest-deadline-first queue. Whenever a worker replica has capacity (pull-style: a replica
 * gets a batch only when its previous one is done) the scheduler forms the next batch: as many
 * tasks as that replica's BatchSizer allows (fixed, AIMD or quantile regression: Clipper §4.3),
 * optionally waiting a little for a fuller batch (delayed batching) and no bigger than its most
 * urgent task can wait for. A task that is no longer expected to finish before its deadline (with
 * other tasks waiting, a lateness margin included) is dropped as soon as that is known: refused as
 * overload when waiting cost it its deadline, else answered "expired".
 * The worker answers each task's requester directly. Admission is
 * deadline-aware: a task that would miss its deadline in the queue, or that finds the queue full, is
 * refused at once with a retryable error instead of timing out later. A replica that misses
 * heartbeats or fails a batch is dropped and its in-flight tasks are re-queued.
 */
import { RequestStrategy, type Msg, type NatsConnection, type Service, type Subscription } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { decode, encode } from '../../shared/codec.js';
import { ClipperError, isOverloadRefusal } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, errorFromReply, natsRequestError, replyError, Requester } from '../../shared/nats.js';
import { cachePutOf, endpoints, heartbeatMessage, PROTOCOL_VERSION, SCHEDULER_REFUSAL_CAUSES, type Batch, type Heartbeat, type PolicyAnswer, type ProfilePoint, type SchedulerRefusalCause } from '../../shared/protocol.js';
import { DEFAULT_MAX_BATCH_SIZE, openRegistryBucket, RegistryView } from '../../shared/registry.js';
import { RunningQuantile } from '../../shared/running-quantile.js';
import { Subjects } from '../../shared/subjects.js';
import { checkTensor, type Tensor } from '../../shared/tensor.js';
import type { BatchSizer } from './batch-sizer.js';
import { createBatchSizer, startingBatchSize, type SizerKind } from './batch-sizers.js';
import { SchedulerMetrics } from './scheduler-metrics.js';
import { BatchLatencyModel, batchSizeFor, completionMs, type ReplicaOutlook } from './completion-estimate.js';
import { DeadlineQueue } from './deadline-queue.js';
import { isSheddable } from './refusal.js';
import type { SchedulerConfig } from './types.js';

interface PendingTask {
  msg: Msg;
  queryId: string;
  deadlineUnixMs: number;
  /** Task.budget_ms: how long it had in all until its deadline. */
  budgetMs?: number;
  enqueuedUnixMs: number;
  /** performance.now() at arrival: the queue-wait metric. */
  enqueuedMs: number;
  input: Tensor;
  /** A miss forwarded by the cache: the worker puts the result there. */
  cachePut?: string;
  cacheKey?: string;
  /** A direct query of this app (Task.client_app): a failure is answered with its default output. */
  clientApp?: string;
  /** A direct query whose batch overran its deadline: its client already has the default output. */
  answered?: boolean;
  /** performance.now() by which admission expected it done, for the lateness margin. */
  predictedDoneMs?: number;
}

interface InFlightBatch {
  id: string;
  tasks: PendingTask[];
  /** Set when the replica was declared dead and the tasks went back to the queue. */
  abandoned: boolean;
  /** performance.now() at dispatch. */
  sentMs: number;
  /** Wakes at the next deadline of its direct queries, to answer them if the batch overruns it. */
  overrun?: NodeJS.Timeout;
}

interface Replica {
  id: string;
  subject: string;
  lastSeenUnixMs: number;
  /** When this replica last finished a batch: latency estimates older than ESTIMATE_FRESH_MS are not trusted. */
  lastBatchUnixMs: number;
  /** Batch latency against size, from its recent batches: what admission and skipping go by. */
  latency: BatchLatencyModel;
  sizer: BatchSizer;
  inFlight: Map<string, InFlightBatch>;
  /** The worker process behind the replica id (from its heartbeats); undefined from older workers. */
  instance?: string;
  /** Said it is stopping: gets no new batches, leaves once its in-flight batches are done. */
  draining: boolean;
  /** Its warm-up's compute time per batch size (from its heartbeats), once seen. */
  profile?: readonly ProfilePoint[];
}

/** How batches are formed, from the model's registry record. */
interface BatchingSettings {
  kind: SizerKind;
  batchSize?: number;
  maxBatchSize: number;
  delayMs: number;
  budgetUs: number;
  maxQueueLength: number;
}

const DEFAULT_SLO_US = 100_000;
const DEFAULT_SLO_FRACTION = 0.4;
/**
 * Estimates only guide admission and skipping while fresh. A stale one (say from a burst of
 * contention) would otherwise refuse or skip every task, so no batch would run to correct it.
 */
const ESTIMATE_FRESH_MS = 1_000;

/** Whether a replica's latency estimate may guide admission, drops and cuts at `nowUnixMs`. */
const isFresh = (r: Replica, nowUnixMs: number): boolean => nowUnixMs - r.lastBatchUnixMs <= ESTIMATE_FRESH_MS;

/** How long a task took to reach this scheduler from the start of its SLO clock, ms; undefined without its budget. */
const upstreamMs = (t: PendingTask): number | undefined => (t.budgetMs === undefined ? undefined : t.enqueuedUnixMs - (t.deadlineUnixMs - t.budgetMs));

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
  private readonly requester: Requester;
  private settings: BatchingSettings;
  private service?: Service;
  private events?: Subscription;
  private sweeper?: NodeJS.Timeout;
  private expiryTimer?: NodeJS.Timeout;
  private expiryAt = Infinity;
  private delayTimer?: NodeJS.Timeout;
  private batchSeq = 0;
  private accepting = true;
  /** Counters for stats and tests. */
  readonly counters = { tasks: 0, batches: 0, expired: 0, rejected: 0, requeued: 0, replicas_dropped: 0, overrun: 0 };
  /** `rejected` by cause. */
  readonly rejectedBy = Object.fromEntries(SCHEDULER_REFUSAL_CAUSES.map((c) => [c, 0])) as Record<SchedulerRefusalCause, number>;
  private readonly metrics: SchedulerMetrics;
  /**
   * The lateness margin: the 98th percentile of how late tasks finish against admission's prediction,
   * so that about 2 % of tasks end up later. Admission, drops and batch cuts keep this much in hand:
   * on a busy machine the prediction misses process wake-ups and contention that a line fit of past
   * batches cannot see. With a step of 0.5 ms it falls 1 ms per 100 on-time batches once an overload
   * is over (with 0.05 ms and q = 0.99, 10 s at 1000/s, and the leftover margin refused most of the
   * load that followed). Why the 98th percentile: under overload about a share 1 − q of the admitted
   * tasks that wait to the limit still end late, as default answers. At 2× capacity (4600/s offered,
   * 2300/s served) the 95th left 250–290 default answers in 20 s, the 98th 90–150, the 99th 80–90,
   * with goodput within the runs' noise; on a slower VM, whose lateness had a heavier tail (P95 2–3
   * ms, P99 10–15 ms: a process preempted for a time slice), keeping the 99th in hand refused a share
   * of the load at rates well under capacity.
   */
  private readonly lateness = new RunningQuantile(0.98, 0.5);
  /** The usual time tasks take to reach this scheduler: the lower quartile (refusal.ts, `delayedUpstream`). */
  private readonly upstream = new RunningQuantile(0.25, 0.05, { startAtFirst: true });
  /** Lateness of the admitted tasks the current pump dropped undone, learnt as one batch when it ends. */
  private readonly droppedLateness: number[] = [];

  constructor(private readonly config: Readonly<SchedulerConfig>, private readonly deps: SchedulerDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
    this.view = new RegistryView(deps.log);
    this.requester = new Requester(deps.nc);
    this.metrics = new SchedulerMetrics({ model: config.model, version: config.version });
    this.settings = { kind: 'aimd', maxBatchSize: DEFAULT_MAX_BATCH_SIZE, delayMs: 0, budgetUs: DEFAULT_SLO_US * DEFAULT_SLO_FRACTION, maxQueueLength: config.maxQueueLength };
  }

  async start(): Promise<void> {
    const { nc } = this.deps;
    const { model, version } = this.config;
    await this.view.start(await openRegistryBucket(nc, this.subjects));
    this.applySettings();
    this.view.onChange(() => this.applySettings());

    this.events = nc.subscribe(this.subjects.workerEvents(model, version), { callback: (err, msg) => !err && this.onHeartbeat(msg) });
    await this.discoverReplicas();
    this.sweeper = setInterval(() => this.dropSilentReplicas(), Math.max(50, this.config.replicaTimeoutMs / 4));

    this.service = await nc.services.add({
      name: 'clipper-scheduler', version: '0.1.0', description: `queue of ${model}:${version}`, metadata: { model, version, prefix: this.config.prefix },
      statsHandler: async () => ({ ...this.stats(), metrics: await this.metrics.json() }),
    });
    this.service.addEndpoint('tasks', {
      subject: this.subjects.batch(model, version),
      queue: 'scheduler',
      handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : this.onTask(msg)),
    });
  }

  /** Queue, replicas and batch sizes, for `$SRV.STATS` and tests. */
  stats(): Record<string, unknown> {
    return {
      queued: this.queue.size,
      ...this.counters,
      rejected_by: { ...this.rejectedBy },
      admission_margin_ms: Math.round(this.lateness.ms * 100) / 100,
      settings: this.settings,
      replicas: [...this.replicas.values()].map((r) => ({ id: r.id, in_flight: r.inFlight.size, batch_size: r.sizer.batchSize(), draining: r.draining })),
    };
  }

  // ---- settings from the registry -------------------------------------------------------------

  private applySettings(): void {
    const record = this.view.model(this.config.model, this.config.version);
    if (!record) return;
    const b = record.batching ?? {};
    const sloUs = this.view.minLinkedSloUs(this.config.model) ?? DEFAULT_SLO_US;
    const next: BatchingSettings = {
      kind: record.batch_size > 0 ? 'fixed' : (b.sizer ?? 'aimd'),
      ...(record.batch_size > 0 ? { batchSize: record.batch_size } : {}),
      maxBatchSize: record.batch_size > 0 ? record.batch_size : (b.max_batch_size ?? DEFAULT_MAX_BATCH_SIZE),
      delayMs: b.delay_ms ?? 0,
      budgetUs: Math.max(100, (b.slo_fraction ?? DEFAULT_SLO_FRACTION) * sloUs),
      maxQueueLength: b.max_queue_length ?? this.config.maxQueueLength,
    };
    const prev = this.settings;
    this.settings = next;
    const resize = prev.kind !== next.kind || prev.batchSize !== next.batchSize || prev.maxBatchSize !== next.maxBatchSize;
    for (const r of this.replicas.values()) {
      if (resize) r.sizer = this.newSizer(r.profile);
      else if (prev.budgetUs !== next.budgetUs) r.sizer.setBudgetUs(next.budgetUs);
    }
    if (JSON.stringify(prev) !== JSON.stringify(next)) this.deps.log.info({ settings: next }, 'batching settings applied');
  }

  /** A sizer for the current settings; with a replica's warm-up profile, starting where that says. */
  private newSizer(profile?: readonly ProfilePoint[]): BatchSizer {
    const s = this.settings;
    return this.startFromProfile(createBatchSizer({ kind: s.kind, batchSize: s.batchSize, maxBatchSize: s.maxBatchSize, budgetUs: s.budgetUs }), profile);
  }

  /** Starts `sizer` at the largest profiled size that computes in half the budget, given a profile. */
  private startFromProfile(sizer: BatchSizer, profile?: readonly ProfilePoint[]): BatchSizer {
    if (profile) sizer.startAt(startingBatchSize(profile, this.settings.budgetUs));
    return sizer;
  }

  // ---- replicas ---------------------------------------------------------------------------------

  /** Finds replicas that were up before this scheduler, through NATS service discovery. */
  private async discoverReplicas(): Promise<void> {
    try {
      const infos = await this.deps.nc.services.client({ strategy: RequestStrategy.JitterTimer, maxWait: 300 }).info('clipper-worker');
      for await (const info of infos) {
        const md = info.metadata ?? {};
        const subject = info.endpoints[0]?.subject;
        if (md.model === this.config.model && md.version === this.config.version && md.replica && subject) {
          this.upsertReplica(`${md.model}.${md.version}.${md.replica}`, subject, md.instance);
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
    if (hb.state === 'ready' && hb.subject) {
      this.upsertReplica(hb.id, hb.subject, hb.instance);
      const replica = this.replicas.get(hb.id);
      if (replica && !replica.profile && hb.profile) this.seedReplica(replica, hb.profile);
    } else if (hb.state === 'stopping') {
      const r = this.replicas.get(hb.id);
      // A draining worker finishes what it has; it just gets nothing new. If its batch fails
      // after all, markDead still finds it here and re-queues the tasks.
      if (r && !r.draining) {
        r.draining = true;
        this.deps.log.info({ replica: hb.id, inFlight: r.inFlight.size }, 'replica draining');
        this.forgetIfDrained(r);
      }
    }
  }

  private upsertReplica(id: string, subject: string, instance?: string): void {
    const known = this.replicas.get(id);
    if (known && instance && known.instance && known.instance !== instance) {
      // Restarted under the same id (the agent does that): the old process, and the batches it
      // had, are gone, though its successor's heartbeats would otherwise keep it looking alive.
      this.markDead(known, 'restarted');
    } else if (known) {
      known.lastSeenUnixMs = Date.now();
      known.instance ??= instance;
      return;
    }
    this.replicas.set(id, { id, subject, instance, lastSeenUnixMs: Date.now(), lastBatchUnixMs: 0, latency: new BatchLatencyModel(), sizer: this.newSizer(), inFlight: new Map(), draining: false });
    this.deps.log.info({ replica: id, replicas: this.replicas.size }, 'replica joined');
    this.pump();
  }

  /**
   * A replica's warm-up profile (services/worker/warm-up.ts): unless it has run a batch already, its
   * sizer starts from the largest profiled size that computes in half the budget, instead of one.
   * (The latency estimate is left to the replica's own batches: the profile has no round trip in it,
   * and taking that from the first batch, often a cold one, put the estimate at 8 ms for batches that
   * took 3.)
   */
  private seedReplica(replica: Replica, profile: readonly ProfilePoint[]): void {
    replica.profile = profile;
    this.startFromProfile(replica.sizer, profile);
    this.deps.log.info({ replica: replica.id, batchSize: replica.sizer.batchSize(), profile }, 'replica seeded from its warm-up');
  }

  private forgetIfDrained(replica: Replica): void {
    if (replica.draining && replica.inFlight.size === 0 && this.replicas.get(replica.id) === replica) {
      this.replicas.delete(replica.id);
      this.deps.log.info({ replica: replica.id }, 'replica left');
    }
  }

  private dropSilentReplicas(): void {
    const cutoff = Date.now() - this.config.replicaTimeoutMs;
    for (const r of this.replicas.values()) {
      if (r.lastSeenUnixMs < cutoff) this.markDead(r, 'missed heartbeats');
    }
  }

  /** Drops a replica and sends its in-flight tasks back to the queue (those whose deadline allows). */
  private markDead(replica: Replica, why: string): void {
    if (this.replicas.get(replica.id) !== replica) return;
    this.replicas.delete(replica.id);
    let requeued = 0;
    for (const batch of replica.inFlight.values()) {
      batch.abandoned = true;
      this.disarmOverrun(batch);
      for (const t of batch.tasks) {
        if (t.answered) continue;
        if (t.deadlineUnixMs > Date.now()) {
          this.queue.push(t);
          requeued++;
        } else this.expire(t, `query ${t.queryId}: its replica ${replica.id} was dropped (${why}) after its deadline`);
      }
    }
    replica.inFlight.clear();
    this.counters.requeued += requeued;
    this.counters.replicas_dropped++;
    this.deps.log.warn({ replica: replica.id, why, requeued }, 'replica dropped');
    this.pump();
  }

  // ---- tasks ------------------------------------------------------------------------------------

  private onTask(msg: Msg): void {
    let task: PendingTask;
    try {
      const t = decodeRequest(msg, this.ep.batch.request);
      task = { msg, queryId: t.query_id, deadlineUnixMs: t.deadline_unix_ms, budgetMs: t.budget_ms, enqueuedUnixMs: Date.now(), enqueuedMs: performance.now(), input: checkTensor(t.input), cachePut: t.cache_put, cacheKey: t.cache_key, clientApp: t.client_app };
    } catch (err) {
      replyError(msg, err);
      return;
    }
    this.counters.tasks++;
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: task.queryId }, 'task received');
    if (!this.accepting) {
      this.reject(task, new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', 'scheduler is shutting down'), 'shutting_down');
      return;
    }
    const now = Date.now();
    // Arriving too late to be served means a backlog upstream (in front of the ingress, a busy ingress,
    // policy shard or NATS).
    if (task.deadlineUnixMs <= now + this.hopelessWithinMs(now, false)) {
      const left = Math.round(task.deadlineUnixMs - now);
      this.dropUnserved(task, `reached ${this.config.model}:${this.config.version} ${left > 0 ? `with ${left} ms left` : `${-left} ms after its deadline`}`, 'arrived_late');
      return;
    }
    if (this.queue.size >= this.settings.maxQueueLength) {
      this.reject(task, ClipperError.withoutStack('CLIPPER_ERR_QUEUE_FULL', `${this.queue.size} tasks queued for ${this.config.model}:${this.config.version}`), 'queue_full');
      return;
    }
    const inMs = this.predictCompletionMs(now, task);
    // An empty queue is always admitted: the task's own batch is what keeps the estimates honest.
    if (inMs !== undefined && this.queue.size > 0 && now + inMs + this.lateness.ms > task.deadlineUnixMs) {
      this.reject(task, ClipperError.withoutStack('CLIPPER_ERR_QUEUE_FULL', `${this.queue.size} tasks queued for ${this.config.model}:${this.config.version} would take ${Math.round(inMs + this.lateness.ms)} ms`), 'would_be_late');
      return;
    }
    // Every admitted task with a prediction teaches the margin, so it also falls again at light load.
    if (inMs !== undefined) task.predictedDoneMs = task.enqueuedMs + inMs;
    this.queue.push(task);
    const up = upstreamMs(task);
    if (up !== undefined) this.upstream.observe(up);
    this.pump();
  }

  /**
   * In how many ms a task queued now would be done (completion-estimate.ts): the replicas take the
   * queue ahead in batches of their current size limit as they become free, then the task's own batch
   * runs; with delayed batching a batch under the limit first waits for its head's delay, the first
   * one only when its head can afford it (fillWaitMs). Undefined, which admits, while any replica's
   * estimate is stale or missing.
   */
  private predictCompletionMs(now: number, task: PendingTask): number | undefined {
    const nowMs = performance.now();
    const outlooks: ReplicaOutlook[] = [];
    for (const r of this.replicas.values()) {
      if (r.draining) continue;
      if (!isFresh(r, now) || r.latency.count === 0) return undefined;
      const latencyMs = (size: number): number => r.latency.estimateUs(size)! / 1000;
      let freeInMs = 0;
      if (r.inFlight.size >= this.config.replicaCapacity) {
        freeInMs = Infinity;
        for (const b of r.inFlight.values()) freeInMs = Math.min(freeInMs, Math.max(0, latencyMs(b.tasks.length) - (nowMs - b.sentMs)));
      }
      outlooks.push({ freeInMs, batchSize: r.sizer.batchSize(), latencyMs });
    }
    return completionMs(this.queue.size, outlooks, this.fillWaitMs(now, task), this.settings.delayMs);
  }

  /**
   * How long from now a first batch under its replica's limit would wait for more tasks, were `task`
   * queued: until the head of the queue (earliest deadline) has waited `delay_ms`, unless the head
   * cannot afford that wait, in which case the batch goes at once (formBatches' rule, on the replica
   * it would pick now, or on any while all are busy).
   */
  private fillWaitMs(now: number, task: PendingTask): number {
    if (this.settings.delayMs <= 0) return 0;
    const queued = this.queue.peek();
    const head = queued && queued.deadlineUnixMs <= task.deadlineUnixMs ? queued : task;
    const waitUntil = head.enqueuedUnixMs + this.settings.delayMs;
    if (now >= waitUntil) return 0;
    const replica = this.pickReplica() ?? this.anyReplica();
    if (!replica) return 0;
    return head.deadlineUnixMs - waitUntil > this.waitCostMs(now, replica, this.queue.size + 1) ? waitUntil - now : 0;
  }

  /** A replica that takes batches (busy or not), if any. */
  private anyReplica(): Replica | undefined {
    for (const r of this.replicas.values()) if (!r.draining) return r;
    return undefined;
  }

  /**
   * What the head of the queue needs left after a wait for a fuller batch: the batch as it stands (the
   * replica's estimate, fresh or not: a stale one still says how slow the model is) plus the margin
   * while others wait, and no less than what would get it dropped as hopeless (hopelessWithinMs).
   */
  private waitCostMs(now: number, replica: Replica, queued: number, fastestMs = this.fastestBatchMs(now)): number {
    const contended = queued > 1;
    const batchMs = (replica.latency.estimateUs(queued) ?? 0) / 1000 + (contended ? this.lateness.ms : 0);
    return Math.max(batchMs, this.hopelessWithinMs(now, contended, fastestMs));
  }

  private expire(task: PendingTask, why: string): void {
    this.counters.expired++;
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: task.queryId }, 'task expired');
    this.fail(task, ClipperError.withoutStack('CLIPPER_ERR_QUERY_EXPIRED', why));
  }

  /**
   * A task that will get no model output. Its requester (the ingress or a policy) gets the error and
   * answers with the default output; a direct query's client gets that default answer from here.
   */
  private fail(task: PendingTask, err: ClipperError): void {
    this.putFailure(task, err);
    const app = task.clientApp === undefined ? undefined : this.view.apps.get(task.clientApp);
    if (!app || !task.msg.reply) {
      replyError(task.msg, err);
      return;
    }
    const answer: PolicyAnswer = { v: PROTOCOL_VERSION, query_id: task.queryId, output: app.default_output, default: true, default_explanation: `${this.config.model}:${this.config.version}: ${err.message}` };
    task.msg.respond(encode(answer));
  }

  private reject(task: PendingTask, err: ClipperError, cause: SchedulerRefusalCause): void {
    this.counters.rejected++;
    this.rejectedBy[cause]++;
    err.sheddable = this.sheddable(cause, task);
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: task.queryId, code: err.code }, 'task refused');
    // Overload is refused (retryable) to clients too; anything else is the default output's business.
    if (isOverloadRefusal(err.code)) {
      this.putFailure(task, err);
      replyError(task.msg, err);
    } else this.fail(task, err);
  }

  /** Whether less traffic would have prevented a refusal (refusal.ts). */
  private sheddable(cause: SchedulerRefusalCause, task: PendingTask): boolean | undefined {
    let nextBatches = 0;
    for (const r of this.replicas.values()) if (!r.draining) nextBatches += r.sizer.batchSize() * this.config.replicaCapacity;
    return isSheddable(cause, { queued: this.queue.size, nextBatches, upstreamMs: upstreamMs(task), usualUpstreamMs: this.upstream.known, upstreamSamples: this.upstream.count });
  }

  /**
   * A miss the cache forwarded gets no output: its shard hands the error to the queries parked on the
   * same input (coalesced) now, instead of their hearing "expired" at their deadline, and forgets the
   * evaluation, so the next miss asks again.
   */
  private putFailure(task: PendingTask, err: ClipperError): void {
    if (!task.cachePut || !task.cacheKey) return;
    this.deps.nc.publish(task.cachePut, encode(cachePutOf(this.config.model, this.config.version, task.cacheKey, task.input, err)));
  }

  /**
   * Sends batches while there are tasks and replicas with capacity. Admitted tasks dropped undone here
   * teach the lateness margin too, as one batch: they would otherwise never be observed, and the
   * margin would learn only from the tasks that made it, too little exactly when the queue is at the
   * admission limit (overload).
   */
  private pump(): void {
    this.formBatches();
    if (this.droppedLateness.length > 0) {
      this.lateness.observeBatch(this.droppedLateness);
      this.droppedLateness.length = 0;
    }
  }

  /**
   * A task that will not be served: it reached this scheduler (`arrived_late`), or waited in its queue
   * (`waited_too_long`), until it was no longer expected to finish before its deadline (`what`
   * happened to it). If its model could have served it in the time it had in all (Task.budget_ms;
   * without one, from its arrival here), a backlog here or upstream took that time: that is
   * overload, and the task is refused with the retryable CLIPPER_ERR_BACKLOGGED, so that its client
   * hears early that it may retry instead of getting a default output. (A code of its own: a
   * policy's fan-out limiter does not drop a model for it, since a model slower than the gap between
   * queries can lose a task this way at light load too.) A task its model is too slow for expires
   * (default output): retrying would not help.
   * The model's speed is any replica's estimate, fresh or not, without the lateness margin (that is
   * contention, which a retry may not meet); with none yet only a task that had no time at all
   * expires.
   */
  private dropUnserved(t: PendingTask, what: string, cause: 'arrived_late' | 'waited_too_long'): void {
    const hadMs = t.budgetMs ?? t.deadlineUnixMs - t.enqueuedUnixMs;
    const fastest = this.fastestBatchMs();
    const tooSlow = Number.isFinite(fastest) ? fastest >= hadMs : hadMs <= 0;
    const model = `${this.config.model}:${this.config.version}`;
    if (tooSlow) this.expire(t, `query ${t.queryId} ${what}: ${model} is too slow to serve it in the ${Math.max(0, Math.round(hadMs))} ms it had`);
    else this.reject(t, ClipperError.withoutStack('CLIPPER_ERR_BACKLOGGED', `query ${t.queryId} ${what}, too late to finish before its deadline`), cause);
  }

  /**
   * An admitted task leaves the queue undone. For the lateness margin it counts as done at the earliest
   * it could have been, `doneMs` (performance.now() clock): a lower bound, late only when even that is
   * later than the margin. Counting it as done at its deadline fed back on itself, since tasks are
   * dropped by the margin: a larger margin dropped more tasks, each of which raised it further
   * (measured at 2× capacity: batches of ~2 and goodput ~500/s where the model serves ~2300/s).
   */
  private dropQueued(t: PendingTask, doneMs: number, now: number): void {
    if (t.predictedDoneMs !== undefined) this.droppedLateness.push(doneMs - t.predictedDoneMs);
    this.dropUnserved(t, `waited ${now - t.enqueuedUnixMs} ms in the queue of ${this.config.model}:${this.config.version}`, 'waited_too_long');
  }

  /**
   * The fastest any replica is expected to run a batch of one task, in ms; Infinity without an
   * estimate. With `nowUnixMs`, only estimates still fresh then count.
   */
  private fastestBatchMs(nowUnixMs?: number): number {
    let fastest = Infinity;
    for (const r of this.replicas.values()) {
      if (nowUnixMs !== undefined && !isFresh(r, nowUnixMs)) continue;
      const us = r.latency.estimateUs(1);
      if (us !== undefined) fastest = Math.min(fastest, us / 1000);
    }
    return fastest;
  }

  /**
   * A task (queued, or just arrived) with no more time left than this (ms) is not expected to
   * finish before its deadline even if started now: the fastest fresh estimate of a batch of one,
   * plus, when `contended` (other tasks wait too), the lateness margin that admission keeps in
   * hand. Under overload a batch that only just fit by the estimate ran late about half the time:
   * those were the default answers that remained, and the time they took was other tasks'. A task
   * alone is still tried on the estimate.
   */
  private hopelessWithinMs(now: number, contended: boolean, fastestMs = this.fastestBatchMs(now)): number {
    return Number.isFinite(fastestMs) ? fastestMs + (contended ? this.lateness.ms : 0) : 0;
  }

  private formBatches(): void {
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    for (;;) {
      if (this.queue.size === 0) return;
      const now = Date.now();
      const fastestMs = this.fastestBatchMs(now);
      const hopeless = this.queue.popExpired(now + this.hopelessWithinMs(now, this.queue.size > 1, fastestMs));
      if (hopeless.length > 0) {
        const earliestDoneMs = performance.now() + (Number.isFinite(fastestMs) ? fastestMs : 0);
        for (const t of hopeless) this.dropQueued(t, earliestDoneMs, now);
      }
      const head = this.queue.peek();
      if (!head) return;
      const replica = this.pickReplica();
      if (!replica) break;
      const max = replica.sizer.batchSize();
      // Delayed batching: with a short queue, wait a little for a fuller batch, while the head of the
      // queue can afford the wait; one that cannot goes now rather than be dropped at the end of it.
      if (this.queue.size < max && this.settings.delayMs > 0) {
        const waitUntil = head.enqueuedUnixMs + this.settings.delayMs;
        if (now < waitUntil && head.deadlineUnixMs - waitUntil > this.waitCostMs(now, replica, this.queue.size, fastestMs)) {
          this.delayTimer = setTimeout(() => this.pump(), Math.ceil(waitUntil - now));
          break;
        }
      }
      // A stale estimate is not trusted: the batch goes as it is, and its latency renews the estimate.
      const fresh = isFresh(replica, now);
      const latencyMs = (size: number): number => (fresh ? (replica.latency.estimateUs(size) ?? 0) / 1000 : 0);
      // With others waiting, the lateness margin counts too; a task alone is tried on the estimate.
      const marginMs = fresh && this.queue.size > 1 ? this.lateness.ms : 0;
      const size = batchSizeFor(head.deadlineUnixMs - now, Math.min(max, this.queue.size), latencyMs, marginMs);
      if (size === 0) {
        // Not expected to finish before its deadline even in a batch of its own on this replica.
        this.queue.pop();
        this.dropQueued(head, performance.now() + latencyMs(1), now);
        continue;
      }
      const tasks: PendingTask[] = [];
      while (tasks.length < size) tasks.push(this.queue.pop()!);
      this.dispatch(replica, tasks);
    }
    this.armExpiry();
  }

  /** Least-loaded replica that still has capacity. */
  private pickReplica(): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.replicas.values()) {
      if (!r.draining && r.inFlight.size < this.config.replicaCapacity && (!best || r.inFlight.size < best.inFlight.size)) best = r;
    }
    return best;
  }

  /**
   * With work queued but no capacity, wake when the earliest-deadline task is no longer expected to
   * finish in time (hopelessWithinMs before its deadline), to answer it then rather than at its
   * deadline.
   */
  private armExpiry(): void {
    const head = this.queue.peek();
    if (!head) return;
    const now = Date.now();
    const at = head.deadlineUnixMs - this.hopelessWithinMs(now, this.queue.size > 1);
    if (at >= this.expiryAt) return;
    clearTimeout(this.expiryTimer);
    this.expiryAt = at;
    this.expiryTimer = setTimeout(() => {
      this.expiryAt = Infinity;
      this.pump();
    }, Math.max(0, at - now) + 1);
  }

  private dispatch(replica: Replica, tasks: PendingTask[]): void {
    const batch: InFlightBatch = { id: `${this.config.model}-${this.config.version}-${++this.batchSeq}`, tasks, abandoned: false, sentMs: performance.now() };
    replica.inFlight.set(batch.id, batch);
    this.counters.batches++;
    const sentMs = performance.now();
    const debug = this.deps.log.isLevelEnabled('debug');
    for (const t of tasks) {
      this.metrics.queued((sentMs - t.enqueuedMs) / 1000);
      if (debug) this.deps.log.debug({ queryId: t.queryId, batchId: batch.id, replica: replica.id }, 'task dispatched');
    }
    let deadline = 0;
    for (const t of tasks) deadline = Math.max(deadline, t.deadlineUnixMs);
    const wire: Batch = {
      v: PROTOCOL_VERSION, batch_id: batch.id, deadline_unix_ms: deadline,
      inputs: tasks.map((t) => t.input), reply_to: tasks.map((t) => t.msg.reply ?? ''),
    };
    if (tasks.some((t) => t.clientApp)) wire.client_query = tasks.map((t) => (t.clientApp ? t.queryId : ''));
    if (tasks.some((t) => t.cachePut)) {
      wire.cache_put = tasks.map((t) => t.cachePut ?? '');
      wire.cache_key = tasks.map((t) => t.cacheKey ?? '');
    }
    if (wire.client_query) this.armOverrun(batch);
    const started = process.hrtime.bigint();
    this.requester.request(replica.subject, encode(wire), Math.max(1_000, deadline - Date.now() + 1_000)).then(
      (res) => {
        if (batch.abandoned) return;
        const failure = errorFromReply(res);
        if (failure) {
          // The model itself failed: the same batch would fail elsewhere too.
          this.deps.log.warn({ replica: replica.id, batchSize: tasks.length, code: failure.code, err: failure.message }, 'batch failed');
          for (const t of tasks) if (!t.answered) this.fail(t, failure);
          return;
        }
        // The worker has answered each task's requester directly (reply_to).
        const result = this.ep.worker.response.parse(decode(res.data));
        this.metrics.batchDone(tasks.length, result.compute_us / 1e6);
        const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
        replica.sizer.observe(tasks.length, latencyUs);
        replica.lastBatchUnixMs = Date.now();
        replica.latency.observe(tasks.length, latencyUs);
        const doneMs = performance.now();
        const late: number[] = [];
        for (const t of tasks) if (t.predictedDoneMs !== undefined) late.push(doneMs - t.predictedDoneMs);
        if (late.length > 0) this.lateness.observeBatch(late);
        this.deps.log.debug({ replica: replica.id, batchSize: tasks.length, latencyUs }, 'batch done');
      },
      (err: unknown) => {
        if (batch.abandoned) return;
        const e = natsRequestError(err, replica.subject, { noResponders: 'CLIPPER_ERR_MODEL_UNAVAILABLE', timeout: 'CLIPPER_ERR_MODEL_UNAVAILABLE' });
        this.markDead(replica, e.message);
      },
    ).catch((err: unknown) => {
      this.deps.log.error({ err }, 'batch result not understood');
    }).finally(() => {
      this.disarmOverrun(batch);
      replica.inFlight.delete(batch.id);
      this.forgetIfDrained(replica);
      this.pump();
    });
  }

  /**
   * Anytime answers for direct queries: no ingress waits for them with a timer, so when a dispatched
   * batch runs past a direct query's deadline the scheduler answers that client with the default
   * output then. The worker's answer, if it comes after all, is a second reply the client's request
   * has no use for (NATS clients drop replies to a request that is already answered).
   */
  private armOverrun(batch: InFlightBatch): void {
    let next = Infinity;
    for (const t of batch.tasks) if (t.clientApp && !t.answered) next = Math.min(next, t.deadlineUnixMs);
    if (next === Infinity) return;
    // setImmediate: a batch reply already in the socket when the timer fires is read first.
    batch.overrun = setTimeout(() => setImmediate(() => {
      if (batch.abandoned || !batch.overrun) return;
      const now = Date.now();
      for (const t of batch.tasks) {
        if (!t.clientApp || t.answered || t.deadlineUnixMs > now) continue;
        t.answered = true;
        this.counters.overrun++;
        this.fail(t, ClipperError.withoutStack('CLIPPER_ERR_QUERY_EXPIRED', `query ${t.queryId}: its batch did not finish before the deadline`));
      }
      this.armOverrun(batch);
    }), Math.max(0, next - Date.now()));
  }

  /** The batch is over (done, its replica dead, or the scheduler stopping): no overrun answers for it. */
  private disarmOverrun(batch: InFlightBatch): void {
    clearTimeout(batch.overrun);
    batch.overrun = undefined;
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.accepting = false;
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    const busy = (): boolean => this.queue.size > 0 || [...this.replicas.values()].some((r) => r.inFlight.size > 0);
    while (busy() && Date.now() < until) await sleep(10);
    for (const t of this.queue.drain()) this.fail(t, new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', 'scheduler stopped'));
    for (const r of this.replicas.values()) for (const b of r.inFlight.values()) this.disarmOverrun(b);
    clearInterval(this.sweeper);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.delayTimer);
    this.events?.unsubscribe();
    this.view.stop();
    await this.deps.nc.drain().catch(() => undefined);
  }
}
