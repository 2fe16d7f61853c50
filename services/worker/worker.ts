/**
 * The worker actor: one loaded replica of one model version. It answers batches from its scheduler
 * on `<p>.worker.<model>.<version>.<replica>`, one at a time, and heartbeats its state on
 * `<p>.events.worker.<model>.<version>.<replica>` so the scheduler knows it has capacity.
 */
import { nuid, type Msg, type NatsConnection, type Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { sleep } from '../../shared/actor.js';
import { ClipperError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { decodeRequest, publishError, reply, replyError } from '../../shared/nats.js';
import { encode } from '../../shared/codec.js';
import { cachePutOf, endpoints, PROTOCOL_VERSION, type Batch, type Heartbeat, type ProfilePoint } from '../../shared/protocol.js';
import { DEFAULT_MAX_BATCH_SIZE, Registry, type ModelRecord } from '../../shared/registry.js';
import { Subjects } from '../../shared/subjects.js';
import { checkTensor, type Tensor } from '../../shared/tensor.js';
import { loadWrapper, type ModelWrapper, type RowResult } from '../../wrappers/mod.js';
import type { WorkerConfig } from './types.js';
import { profileBatches } from './warm-up.js';

export interface WorkerDeps {
  nc: NatsConnection;
  log: Logger;
}

export class Worker implements Actor {
  private readonly subjects: Subjects;
  private readonly ep;
  private wrapper?: ModelWrapper;
  private service?: Service;
  private heartbeat?: NodeJS.Timeout;
  private state: Heartbeat['state'] = 'loading';
  /** This process, in heartbeats and discovery: tells the scheduler a restart from a live replica. */
  private readonly instance = nuid.next();
  /** Batches run one after another: the scheduler's pull-style dispatch assumes it. */
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  /** The warm-up's compute time per batch size, sent with the heartbeats. */
  private profile?: ProfilePoint[];

  constructor(private readonly config: Readonly<WorkerConfig>, private readonly deps: WorkerDeps) {
    this.subjects = new Subjects(config.prefix);
    this.ep = endpoints(this.subjects);
  }

  get subject(): string {
    return this.subjects.worker(this.config.model, this.config.version, this.config.replica);
  }

  async start(): Promise<void> {
    const { model, version, replica } = this.config;
    this.beat();
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatMs);
    const record = await this.waitForModel();
    this.wrapper = await loadWrapper(record, this.config.baseDir, this.deps.log);
    await this.warmUp(record, this.wrapper);
    this.service = await this.deps.nc.services.add({
      name: 'clipper-worker',
      version: '0.1.0',
      description: `replica ${replica} of ${model}:${version}`,
      metadata: { model, version, replica, wrapper: record.wrapper, instance: this.instance },
    });
    this.service.addEndpoint('batch', { subject: this.subject, handler: (err, msg) => (err ? this.deps.log.error({ err }, 'endpoint error') : this.onBatch(msg)) });
    this.state = 'ready';
    this.beat();
  }

  private async waitForModel(): Promise<ModelRecord> {
    const registry = await Registry.open(this.deps.nc, this.subjects);
    const until = Date.now() + this.config.registryWaitMs;
    for (;;) {
      const record = await registry.getModel(this.config.model, this.config.version);
      if (record) return record;
      if (Date.now() > until) throw new ClipperError('CLIPPER_ERR_MODEL_NOT_FOUND', `${this.config.model}:${this.config.version} is not in the registry`);
      await sleep(200);
    }
  }

  /**
   * Runs the warm-up (warm-up.ts) when the wrapper can make a sample row; its profile then goes out
   * with every heartbeat, so a scheduler that starts later still gets it.
   */
  private async warmUp(record: ModelRecord, wrapper: ModelWrapper): Promise<void> {
    const row = wrapper.sampleRow?.();
    if (!row) return;
    const maxBatchSize = record.batch_size > 0 ? record.batch_size : (record.batching?.max_batch_size ?? DEFAULT_MAX_BATCH_SIZE);
    const started = performance.now();
    const run = async (size: number): Promise<void> => {
      // A row that fails alone comes back as its error, not thrown: the run failed all the same.
      const failed = (await wrapper.predict(new Array<Tensor>(size).fill(row))).find((r) => r instanceof ClipperError);
      if (failed) throw failed;
    };
    const onFailure = (size: number, err: unknown): void => this.deps.log.warn({ err, size }, 'warm-up stopped: a batch of this size failed; the profile ends before it');
    this.profile = await profileBatches(run, { maxBatchSize, onFailure });
    this.deps.log.info({ profile: this.profile, ms: Math.round(performance.now() - started) }, 'warm-up done: compute time per batch size');
  }

  private beat(): void {
    const { model, version, replica } = this.config;
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION, actor: 'worker', id: `${model}.${version}.${replica}`, state: this.state,
      ts_unix_ms: Date.now(), model, version, replica, subject: this.subject, capacity: 1, instance: this.instance,
      ...(this.profile ? { profile: this.profile } : {}),
    };
    this.deps.nc.publish(this.subjects.events('worker', model, version, replica), encode(hb));
  }

  private onBatch(msg: Msg): void {
    this.inFlight++;
    this.chain = this.chain.then(async () => {
      try {
        const batch = decodeRequest(msg, this.ep.worker.request);
        const inputs = batch.inputs.map(checkTensor);
        const started = process.hrtime.bigint();
        if (batch.reply_to && batch.reply_to.length !== inputs.length) {
          throw new ClipperError('CLIPPER_ERR_REQUEST_SCHEMA', `${batch.reply_to.length} reply subjects for ${inputs.length} inputs`);
        }
        const outputs = await this.wrapper!.predict(inputs);
        const computeUs = Number(process.hrtime.bigint() - started) / 1000;
        if (batch.reply_to) {
          batch.reply_to.forEach((subject, i) => {
            const out = outputs[i]!;
            if (!subject) return;
            const queryId = batch.client_query?.[i];
            if (out instanceof ClipperError) publishError(this.deps.nc, subject, out);
            // A direct query: the client gets the ingress's answer format.
            else if (queryId) this.deps.nc.publish(subject, encode({ v: PROTOCOL_VERSION, query_id: queryId, output: out, default: false }));
            else this.deps.nc.publish(subject, encode({ v: PROTOCOL_VERSION, output: out }));
          });
          this.putInCache(batch, outputs);
          reply(msg, { v: PROTOCOL_VERSION, compute_us: computeUs });
        } else {
          const failed = outputs.find((o): o is ClipperError => o instanceof ClipperError);
          if (failed) throw failed;
          reply(msg, { v: PROTOCOL_VERSION, outputs, compute_us: computeUs });
        }
        this.deps.log.debug({ batchId: batch.batch_id, batchSize: inputs.length, computeUs }, 'batch done');
      } catch (err) {
        const e = ClipperError.from(err, 'CLIPPER_ERR_MODEL_FAILED');
        this.deps.log.warn({ err: e, code: e.code }, 'batch failed');
        replyError(msg, e);
      } finally {
        this.inFlight--;
      }
    }).catch((err: unknown) => this.deps.log.error({ err }, 'batch could not be answered'));
  }

  /** For tasks the cache forwarded: hand the result (or the failure) to the cache shard. */
  private putInCache(batch: Batch, outputs: readonly RowResult[]): void {
    if (!batch.cache_put || !batch.cache_key) return;
    const { model, version } = this.config;
    batch.cache_put.forEach((subject, i) => {
      const key = batch.cache_key![i];
      if (!subject || !key) return;
      this.deps.nc.publish(subject, encode(cachePutOf(model, version, key, batch.inputs[i]!, outputs[i]!)));
    });
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.state = 'stopping';
    this.beat();
    clearInterval(this.heartbeat);
    await this.service?.stop().catch(() => undefined);
    const until = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < until) await sleep(10);
    await this.wrapper?.close().catch(() => undefined);
    await this.deps.nc.drain().catch(() => undefined);
  }
}
