/**
 * The feedback consumer of one policy shard: the learning half of the feedback path (DESIGN.md "The
 * feedback path"). It keeps the shard's policy state (a PolicyStateStore shared with the query path)
 * equal to the fold, in FEEDBACK stream order, of every stored observation of the shard, each applied
 * exactly once, across crashes and restarts:
 *
 * 1. Restore: load the shard's snapshot from the KV bucket `<p>-policy-state` (per app: the state and
 *    the last feedback_seq it covers; per shard: the OUTCOMES sequence it covers), then replay the
 *    shard's OUTCOMES after that sequence (an ordered consumer), applying each outcome whose
 *    feedback_seq is above its app's. Outcomes carry the models' outputs, so this needs no model.
 * 2. Consume FEEDBACK through the durable pull consumer `policy-<shard>` strictly in stream order
 *    (max_ack_pending 1): skip what the state already covers; else evaluate the app's linked models on
 *    the input, append the outcome to OUTCOMES (msgID `<shard>-<feedback_seq>`, awaiting its PubAck),
 *    apply it, then acknowledge the message.
 * 3. Snapshot every `snapshotEvery` observations or `snapshotMs`, after a replay, and at stop.
 *
 * Exactly once: an observation changes the state only through its outcome, applied when the outcome
 * is stored and skipped whenever its feedback_seq is not above the app's last applied one. Outcomes
 * of a shard are appended in feedback_seq order (one message in flight, processed before the next is
 * delivered), so replaying them in stream order applies each feedback_seq once, in the same order and
 * with the same seeded rng as the live path did. A crash before the outcome is stored leaves the
 * message unacknowledged: it is evaluated again. A crash after leaves an outcome the restart replays,
 * and the redelivered message is then skipped.
 */
import { AckPolicy, DeliverPolicy, nanos, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type KV, type NatsConnection } from 'nats';
import { sleep } from '../../shared/actor.js';
import { decode, decodeView, encode } from '../../shared/codec.js';
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { feedbackRecordMessage, outcomeRecordMessage, PROTOCOL_VERSION, type FeedbackRecord, type OutcomeRecord, type PolicyControlRequest, type ReplayProgress } from '../../shared/protocol.js';
import { mulberry32 } from '../../shared/random.js';
import type { PolicyName, RegistryView } from '../../shared/registry.js';
import type { Subjects } from '../../shared/subjects.js';
import { checkTensor, type Tensor } from '../../shared/tensor.js';
import type { PolicyStateStore, AppStateSnapshot } from './state-store.js';
import type { CorrectionPolicy, ModelRef, Observation, PolicyContext } from './types.js';

/** What the consumer needs of the query executor: every linked model's output on an input. */
export interface OutputsSource {
  outputsFor(app: string, input: Tensor, timeoutMs: number): Promise<Map<string, Tensor>>;
}

export interface FeedbackConsumerDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  log: Logger;
  subjects: Subjects;
  view: RegistryView;
  /** The KV bucket of snapshots (`openPolicyStateBucket`). */
  kv: KV;
  executor: OutputsSource;
  /** The shard's state, shared with its query path. */
  store: PolicyStateStore<unknown>;
  /** One policy instance per policy name. */
  policyFor(name: PolicyName): CorrectionPolicy;
}

export interface FeedbackConsumerConfig {
  snapshotEvery: number;
  snapshotMs: number;
  evalTimeoutMs: number;
  ackWaitMs: number;
}

/** Counters of one shard, for `$SRV.STATS.clipper-policy` and `clipper feedback stats`. */
export interface ShardFeedbackStats {
  shard: number;
  /** Per app: observations its state covers, and the last FEEDBACK sequence applied. */
  apps: Record<string, { applied: number; feedback_seq: number }>;
  /** The last FEEDBACK sequence handled (applied or skipped). */
  last_feedback_seq: number;
  /** The last OUTCOMES sequence the state covers. */
  outcome_seq: number;
  /** Observations stored but not handled yet (as of the last delivery). */
  lag: number;
  /** Observations evaluated and applied / skipped as already covered, since start. */
  processed: number;
  skipped: number;
  /** Outcomes applied while restoring at start. */
  restored: number;
  snapshots: number;
  replaying: boolean;
}

/** A snapshot of one app on one shard, as stored under `apps.<app>.<shard>` (JSON). */
export interface AppSnapshotRecord extends AppStateSnapshot {
  v: number;
  app: string;
  shard: number;
  /** The last FEEDBACK sequence the state covers for this app. */
  feedback_seq: number;
  /** The shard's OUTCOMES sequence at the time: every outcome up to it is in the state. */
  outcome_seq: number;
  ts_unix_ms: number;
}

/** The shard's manifest, `shards.<shard>`: written after every app of a snapshot round. */
interface ShardManifest {
  v: number;
  shard: number;
  outcome_seq: number;
  apps: string[];
  ts_unix_ms: number;
}

/** Outcomes per replay pull, fewer when they are big: a pull brings about FETCH_BYTES at most. */
const FETCH_BATCH = 10_000;
const FETCH_BYTES = 16 * 1024 * 1024;
/** Evaluation attempts of one observation when no linked model answers (a model restarting). */
const EVAL_ATTEMPTS = 3;
const PROGRESS_EVERY_MS = 200;

const json = {
  encode: (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v)),
  decode: <T>(b: Uint8Array): T => JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')) as T,
};

export class ShardFeedbackConsumer {
  private readonly js: JetStreamClient;
  private readonly log: Logger;
  /** Per app: the last FEEDBACK sequence whose outcome is in the state. */
  private readonly appliedSeq = new Map<string, number>();
  private outcomeSeq = 0;
  private lastFeedbackSeq = 0;
  private lag = 0;
  private processed = 0;
  private skipped = 0;
  private restored = 0;
  private snapshots = 0;
  private sinceSnapshot = 0;
  private snapshotChain: Promise<void> = Promise.resolve();
  private snapshotTimer?: NodeJS.Timeout;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private current: Promise<void> = Promise.resolve();
  /** Set while a replay holds the consumer: the loop waits on it before the next message. */
  private gate?: { wait: Promise<void>; open: () => void };
  private replaying = false;
  /** Settles when the running replay (if any) has finished, snapshot included. */
  private replayDone: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(readonly shard: number, private readonly config: Readonly<FeedbackConsumerConfig>, private readonly deps: FeedbackConsumerDeps) {
    this.js = deps.nc.jetstream();
    this.log = deps.log.child({ shard });
  }

  private get durable(): string {
    return `policy-${this.shard}`;
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /** Restores the state (snapshot + OUTCOMES); call before the shard serves queries. */
  async restore(): Promise<void> {
    const started = Date.now();
    const fromOutcome = await this.loadSnapshot();
    const { applied, processed } = await this.replayOutcomes({ startSeq: fromOutcome + 1, wholeShard: true });
    this.restored = applied;
    if (applied > 0) await this.snapshot();
    this.log.info({ fromOutcome, outcomes: processed, applied, ms: Date.now() - started, apps: this.deps.store.apps().length }, 'feedback state restored');
  }

  /** Starts consuming FEEDBACK. */
  async start(): Promise<void> {
    await this.ensureConsumer();
    this.snapshotTimer = setInterval(() => {
      if (this.sinceSnapshot > 0 && !this.replaying) void this.snapshot();
    }, this.config.snapshotMs);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.snapshotTimer);
    // A half-done replay must not be snapshotted as if it covered everything.
    await this.replayDone;
    this.openGate();
    await this.messages?.close().catch(() => undefined);
    await this.current;
    await this.loop;
    await this.snapshot();
    await this.snapshotChain;
  }

  // ---- consuming FEEDBACK ---------------------------------------------------------------------------

  /**
   * Creates the durable consumer, or takes over an existing one. Messages the previous owner held
   * unacknowledged would come back only after the ack wait, and behind newer ones; recreating the
   * consumer at its ack floor redelivers them at once, in order (the state skips what it covers).
   */
  private async ensureConsumer(): Promise<void> {
    const { jsm, subjects } = this.deps;
    const stream = subjects.feedbackStream();
    const config = {
      durable_name: this.durable,
      filter_subject: subjects.feedbackRecords(this.shard),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.config.ackWaitMs),
      max_ack_pending: 1,
      max_deliver: -1,
    };
    const info = await jsm.consumers.info(stream, this.durable).catch((err: Error) => {
      if (/consumer not found/i.test(err.message)) return undefined;
      throw err;
    });
    if (info && info.num_ack_pending === 0 && info.config.ack_wait === config.ack_wait && info.config.max_ack_pending === 1 && info.config.filter_subject === config.filter_subject) return;
    if (info) {
      await jsm.consumers.delete(stream, this.durable);
      await jsm.consumers.add(stream, { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: info.ack_floor.stream_seq + 1 });
      this.log.info({ fromSeq: info.ack_floor.stream_seq + 1, unacked: info.num_ack_pending }, 'feedback consumer recreated at its ack floor');
    } else {
      await jsm.consumers.add(stream, { ...config, deliver_policy: DeliverPolicy.All });
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const consumer = await this.js.consumers.get(this.deps.subjects.feedbackStream(), this.durable);
        this.messages = await consumer.consume({ max_messages: 16 });
        if (this.stopping) await this.messages.close();
        for await (const m of this.messages) {
          while (this.gate) await this.gate.wait;
          if (this.stopping) {
            m.nak();
            break;
          }
          this.current = this.handle(m);
          await this.current;
        }
      } catch (err) {
        if (!this.stopping) this.log.error({ err }, 'feedback consumer failed; retrying');
      }
      if (this.stopping) break;
      await sleep(1_000);
      // The consumer may be gone (deleted by an operator, the stream recreated): take it over again.
      await this.ensureConsumer().catch((err: unknown) => this.log.error({ err }, 'feedback consumer setup failed; retrying'));
    }
  }

  /** One FEEDBACK message: skip, or evaluate → store the outcome → apply → ack. Never throws. */
  private async handle(m: JsMsg): Promise<void> {
    this.lag = m.info.pending;
    let rec: FeedbackRecord;
    try {
      rec = feedbackRecordMessage.parse(decode(m.data));
      checkTensor(rec.input);
    } catch (err) {
      this.log.warn({ seq: m.seq, err: (err as Error).message }, 'unreadable feedback record dropped');
      m.term();
      this.lastFeedbackSeq = m.seq;
      return;
    }
    if (m.seq <= (this.appliedSeq.get(rec.app) ?? 0)) {
      m.ack();
      this.skipped++;
      this.lastFeedbackSeq = Math.max(this.lastFeedbackSeq, m.seq);
      return;
    }
    const app = this.deps.view.apps.get(rec.app);
    if (!app) {
      this.log.warn({ seq: m.seq, app: rec.app }, 'feedback for an unknown application dropped');
      m.ack();
      this.lastFeedbackSeq = m.seq;
      return;
    }
    if (this.deps.policyFor(app.policy).stateless) {
      // Stored for offline use (retraining), but a stateless policy has nothing to learn.
      m.ack();
      this.skipped++;
      this.lastFeedbackSeq = m.seq;
      return;
    }
    try {
      const models = this.linkedModels(rec.app);
      const outputs = await this.evaluate(rec, models.length, m);
      const outcome: OutcomeRecord = {
        v: PROTOCOL_VERSION, feedback_seq: m.seq, app: rec.app, uid: rec.uid, label: rec.label,
        outputs: Object.fromEntries(outputs), models, ts_unix_ms: rec.ts_unix_ms,
      };
      const stream = this.deps.subjects.outcomeStream();
      const ack = await this.js.publish(this.deps.subjects.outcome(rec.app, this.shard), encode(outcome), { msgID: `${this.shard}-${m.seq}`, expect: { streamName: stream } });
      // Stored before by an earlier delivery: apply what is stored, so that live state equals replayed state.
      const applied = ack.duplicate ? outcomeRecordMessage.parse(decode((await this.deps.jsm.streams.getMessage(stream, { seq: ack.seq })).data)) : outcome;
      this.applyOutcome(applied, ack.seq);
      m.ack();
      this.processed++;
      this.lastFeedbackSeq = m.seq;
      if (++this.sinceSnapshot >= this.config.snapshotEvery) await this.snapshot();
    } catch (err) {
      // Not applied: leave it to be delivered again (nothing else is delivered before it).
      this.log.error({ seq: m.seq, app: rec.app, err: (err as Error).message }, 'feedback not applied; will retry');
      m.nak(1_000);
    }
  }

  private linkedModels(app: string): string[] {
    const { view } = this.deps;
    return (view.links.get(app) ?? []).flatMap((name) => {
      const version = view.resolveVersion(name);
      return version ? [`${name}:${version}`] : [];
    });
  }

  /** The models' outputs; when none answers (a model restarting), a few more tries before giving up. */
  private async evaluate(rec: FeedbackRecord, linked: number, m: JsMsg): Promise<Map<string, Tensor>> {
    for (let attempt = 1; ; attempt++) {
      const outputs = await this.deps.executor.outputsFor(rec.app, rec.input, this.config.evalTimeoutMs);
      // Stopping (the models may be stopping too): leave the observation to the next owner rather
      // than store it with no outputs for good.
      if (outputs.size === 0 && linked > 0 && this.stopping) throw new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', 'stopping before any model answered');
      if (outputs.size > 0 || linked === 0 || attempt >= EVAL_ATTEMPTS) {
        if (outputs.size === 0 && linked > 0) this.log.warn({ seq: m.seq, app: rec.app }, 'no linked model answered a feedback input; applied without outputs');
        return outputs;
      }
      m.working();
      await sleep(250 * attempt);
    }
  }

  // ---- applying outcomes ----------------------------------------------------------------------------

  /** Applies one outcome (synchronously, so a snapshot never sees half of it). */
  private applyOutcome(rec: OutcomeRecord, outcomeSeq: number): boolean {
    this.outcomeSeq = Math.max(this.outcomeSeq, outcomeSeq);
    if (rec.feedback_seq <= (this.appliedSeq.get(rec.app) ?? 0)) return false;
    this.appliedSeq.set(rec.app, rec.feedback_seq);
    const app = this.deps.view.apps.get(rec.app);
    if (!app) return false;
    const models = modelRefsOf(rec.models ?? Object.keys(rec.outputs));
    const ctx: PolicyContext = { app: rec.app, uid: rec.uid, models };
    const obs: Observation = { uid: rec.uid, label: rec.label, outputs: new Map(Object.entries(rec.outputs)) };
    try {
      // Seeded by the observation, so a replay draws the same numbers as the live update did.
      this.deps.store.apply(ctx, this.deps.policyFor(app.policy), obs, mulberry32(rec.feedback_seq));
      return true;
    } catch (err) {
      // Handled all the same (the replay fails on it the same way), or the shard would stall on it.
      this.log.error({ app: rec.app, feedbackSeq: rec.feedback_seq, err: (err as Error).message }, 'policy update failed; observation skipped');
      return false;
    }
  }

  /**
   * Reads the shard's OUTCOMES (or one app's) from `startSeq` / `startTime` to the end with an
   * ordered consumer in big batches and applies those above their app's applied sequence and at
   * or after `fromSeq` / `fromUnixMs`. Messages are handled in the consumer's callback: no await,
   * no promise per message, which is what lets a replay run at tens of thousands per second.
   */
  private async replayOutcomes(opts: {
    startSeq?: number; startTime?: Date; app?: string; fromSeq?: number; fromUnixMs?: number; wholeShard: boolean;
    onProgress?: (processed: number, total: number) => void;
  }): Promise<{ applied: number; processed: number; total: number }> {
    const { subjects } = this.deps;
    const consumer = await this.js.consumers.get(subjects.outcomeStream(), {
      filterSubjects: subjects.outcomes(this.shard, opts.app),
      ...(opts.startTime ? { opt_start_time: opts.startTime.toISOString() } : { opt_start_seq: Math.max(1, opts.startSeq ?? 1) }),
    });
    const total = (await consumer.info()).num_pending;
    let processed = 0;
    let applied = 0;
    if (total > 0) {
      let lastProgress = Date.now();
      let lastMessage = Date.now();
      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      const messages = await consumer.consume({
        max_messages: await this.replayBatch(),
        callback: (m) => {
          processed++;
          lastMessage = Date.now();
          const rec = readOutcome(m.data);
          if (!rec) {
            this.log.warn({ seq: m.seq }, 'unreadable outcome skipped');
          } else if ((opts.fromSeq === undefined || rec.feedback_seq >= opts.fromSeq) && (opts.fromUnixMs === undefined || rec.ts_unix_ms >= opts.fromUnixMs)) {
            if (this.applyOutcome(rec, opts.wholeShard ? m.seq : 0)) applied++;
          } else {
            // Covered but left out: later outcomes of the app still apply, earlier ones never do.
            this.appliedSeq.set(rec.app, Math.max(this.appliedSeq.get(rec.app) ?? 0, rec.feedback_seq));
          }
          if (opts.onProgress && (processed & 1023) === 0 && lastMessage - lastProgress >= PROGRESS_EVERY_MS) {
            lastProgress = lastMessage;
            opts.onProgress(processed, total);
          }
          if (m.info.pending === 0) finish();
        },
      });
      // Outcomes that expired (max age) after the count was taken never arrive: stop when none is left.
      const watchdog = setInterval(() => {
        if (Date.now() - lastMessage > 2_000) void consumer.info().then((i) => i.num_pending === 0 && finish(), () => undefined);
      }, 2_000);
      await done;
      clearInterval(watchdog);
      await messages.close().catch(() => undefined);
    }
    await consumer.delete().catch(() => undefined);
    opts.onProgress?.(processed, Math.max(total, processed));
    return { applied, processed, total };
  }

  /** Outcomes per pull: FETCH_BATCH, fewer when outcomes are big (outputs of many classes). */
  private async replayBatch(): Promise<number> {
    const { state } = await this.deps.jsm.streams.info(this.deps.subjects.outcomeStream());
    const average = state.messages > 0 ? state.bytes / state.messages : 0;
    return Math.max(100, Math.min(FETCH_BATCH, Math.floor(FETCH_BYTES / Math.max(1, average))));
  }

  // ---- control: replay and state ---------------------------------------------------------------------

  /**
   * Resets the app's state on this shard and re-applies its OUTCOMES from the given point, with the
   * FEEDBACK consumer held (it finishes the observation in hand first, then waits).
   */
  async replay(req: PolicyControlRequest, progress?: (p: ReplayProgress) => void): Promise<{ replayed: number; seconds: number }> {
    if (this.replaying) throw new ClipperError('CLIPPER_ERR_REPLAY_BUSY', `shard ${this.shard}`);
    if (this.stopping) throw new ClipperError('CLIPPER_ERR_SERVICE_UNAVAILABLE', `shard ${this.shard} is stopping`);
    this.replaying = true;
    let done!: () => void;
    this.replayDone = new Promise<void>((resolve) => (done = resolve));
    const started = process.hrtime.bigint();
    try {
      await this.pause();
      const before = this.appliedSeq.get(req.app) ?? 0;
      this.deps.store.reset(req.app);
      this.appliedSeq.delete(req.app);
      const { applied } = await this.replayOutcomes({
        app: req.app, wholeShard: false,
        ...(req.from_unix_ms !== undefined ? { startTime: new Date(req.from_unix_ms), fromUnixMs: req.from_unix_ms } : { startSeq: 1 }),
        ...(req.from_seq !== undefined ? { fromSeq: req.from_seq } : {}),
        onProgress: (processed, total) => progress?.({ v: PROTOCOL_VERSION, shard: this.shard, app: req.app, processed, total }),
      });
      // Outcomes before a time cut are not read at all; what the consumer handled stays handled.
      if ((this.appliedSeq.get(req.app) ?? 0) < before) this.appliedSeq.set(req.app, before);
      // An app left with no observation keeps an (initial) entry, so the snapshot replaces the old one.
      const app = this.deps.view.apps.get(req.app);
      if (app) this.deps.store.stateFor(req.app, '', this.deps.policyFor(app.policy));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.sinceSnapshot++;
      await this.snapshot();
      this.log.info({ app: req.app, replayed: applied, seconds }, 'feedback replayed');
      return { replayed: applied, seconds };
    } finally {
      this.replaying = false;
      done();
      this.openGate();
    }
  }

  /** The app's state on this shard, with the sequence it covers. */
  state(app: string): { applied: number; feedback_seq: number; state?: AppStateSnapshot } {
    const state = this.deps.store.snapshot(app);
    return { applied: this.deps.store.applied(app), feedback_seq: this.appliedSeq.get(app) ?? 0, ...(state ? { state } : {}) };
  }

  stats(): ShardFeedbackStats {
    const apps: ShardFeedbackStats['apps'] = {};
    for (const app of new Set([...this.deps.store.apps(), ...this.appliedSeq.keys()])) {
      apps[app] = { applied: this.deps.store.applied(app), feedback_seq: this.appliedSeq.get(app) ?? 0 };
    }
    return {
      shard: this.shard, apps, last_feedback_seq: this.lastFeedbackSeq, outcome_seq: this.outcomeSeq, lag: this.lag,
      processed: this.processed, skipped: this.skipped, restored: this.restored, snapshots: this.snapshots, replaying: this.replaying,
    };
  }

  private async pause(): Promise<void> {
    let open!: () => void;
    const wait = new Promise<void>((resolve) => (open = resolve));
    this.gate = { wait, open };
    await this.current;
  }

  private openGate(): void {
    const gate = this.gate;
    this.gate = undefined;
    gate?.open();
  }

  // ---- snapshots -------------------------------------------------------------------------------------

  /**
   * Loads the shard's snapshot into the store; returns the OUTCOMES sequence from which to replay
   * (0: from the start). Every app of a snapshot round is written before the round's manifest, so an
   * app missing from the bucket has no outcome at or before the manifest's sequence.
   */
  private async loadSnapshot(): Promise<number> {
    const { kv, store } = this.deps;
    const manifestEntry = await kv.get(`shards.${this.shard}`);
    const manifest = manifestEntry?.operation === 'PUT' ? json.decode<ShardManifest>(manifestEntry.value) : undefined;
    let from = manifest?.outcome_seq ?? 0;
    const keys: string[] = [];
    for await (const k of await kv.keys(`apps.*.${this.shard}`)) keys.push(k);
    for (const key of keys) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      try {
        const snap = json.decode<AppSnapshotRecord>(e.value);
        store.restore(snap.app, { policy: snap.policy, population: snap.population, users: snap.users, applied: snap.applied });
        this.appliedSeq.set(snap.app, snap.feedback_seq);
        from = Math.min(from, snap.outcome_seq);
      } catch (err) {
        // Without it the app's outcomes must all be replayed.
        this.log.warn({ key, err: (err as Error).message }, 'unreadable snapshot ignored');
        from = 0;
      }
    }
    if (!manifest) from = 0;
    this.outcomeSeq = Math.max(this.outcomeSeq, from);
    return from;
  }

  /** Captures every app's state now (synchronously) and writes it; rounds are written one after another. */
  private snapshot(): Promise<void> {
    const { store } = this.deps;
    const now = Date.now();
    const apps = store.apps();
    const values: [string, Uint8Array][] = [];
    for (const app of apps) {
      const state = store.snapshot(app);
      if (!state) continue;
      const rec: AppSnapshotRecord = { v: PROTOCOL_VERSION, app, shard: this.shard, feedback_seq: this.appliedSeq.get(app) ?? 0, outcome_seq: this.outcomeSeq, ts_unix_ms: now, ...state };
      values.push([`apps.${app}.${this.shard}`, json.encode(rec)]);
    }
    const manifest: ShardManifest = { v: PROTOCOL_VERSION, shard: this.shard, outcome_seq: this.outcomeSeq, apps, ts_unix_ms: now };
    values.push([`shards.${this.shard}`, json.encode(manifest)]);
    this.sinceSnapshot = 0;
    this.snapshotChain = this.snapshotChain.then(async () => {
      try {
        for (const [key, value] of values) await this.deps.kv.put(key, value);
        this.snapshots++;
      } catch (err) {
        // The state is still rebuilt from OUTCOMES, from an older snapshot.
        this.log.warn({ err: (err as Error).message }, 'policy state snapshot failed');
      }
    });
    return this.snapshotChain;
  }
}

/**
 * An outcome from the stream, checked by hand rather than by the full schema: this runs once per
 * replayed observation, and the stream only holds what policy shards wrote. Undefined when unreadable.
 */
function readOutcome(data: Uint8Array): OutcomeRecord | undefined {
  let r: Partial<OutcomeRecord>;
  try {
    // Views, not copies: the record is applied and dropped before the message is.
    r = decodeView(data) as Partial<OutcomeRecord>;
  } catch {
    return undefined;
  }
  const ok = r !== null && typeof r === 'object' && r.v === PROTOCOL_VERSION && Number.isInteger(r.feedback_seq) && typeof r.app === 'string' && typeof r.uid === 'string'
    && typeof r.label === 'number' && typeof r.ts_unix_ms === 'number' && r.outputs !== null && typeof r.outputs === 'object' && (r.models === undefined || Array.isArray(r.models));
  return ok ? (r as OutcomeRecord) : undefined;
}

const modelRefs = new Map<string, ModelRef[]>();

/** The model refs of an outcome's `name:version` keys (cached: every outcome of an app repeats them). */
function modelRefsOf(keys: readonly string[]): ModelRef[] {
  const id = keys.join(',');
  let refs = modelRefs.get(id);
  if (!refs) {
    refs = keys.map(parseModelKey);
    if (modelRefs.size > 1_000) modelRefs.clear();
    modelRefs.set(id, refs);
  }
  return refs;
}

function parseModelKey(key: string): ModelRef {
  const i = key.indexOf(':');
  return i < 0 ? { name: key, version: '' } : { name: key.slice(0, i), version: key.slice(i + 1) };
}
