/**
 * The cache actor: shards of model predictions, keyed by (model, version, xxhash64 of the input
 * bytes). A hit is answered at once, after checking the stored input bytes are the query's (so a
 * hash collision can never return a wrong answer). A miss is forwarded to the model's scheduler
 * with the requester's own reply subject (one message leg, not a round trip); the worker answers the
 * requester and puts the result here. Identical misses in flight wait for that one evaluation
 * (coalescing). Each shard holds at most its byte budget (CLOCK eviction); keys include the version,
 * so a new version never serves an old one's predictions.
 */
import type { Msg, NatsConnection, Service } from 'nats';
import type { Actor } from '../../shared/actor.js';
import { decode, encode } from '../../shared/codec.js';
import { ClipperError, isErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { publishError, reply, replyError } from '../../shared/nats.js';
import { cacheGetMessage, cachePutMessage, PROTOCOL_VERSION, type CacheGet, type Task } from '../../shared/protocol.js';
import { Subjects } from '../../shared/subjects.js';
import { checkTensor, toTypedArray, type Tensor } from '../../shared/tensor.js';
import { sameBytes } from '../../shared/hash.js';
import { ClockCache } from './clock-cache.js';
import { distance, LshSignature, type LshMetric } from './lsh-signature.js';
import type { CacheActorConfig } from './types.js';
import { ownedShards } from '../../shared/shards.js';

interface Entry {
  input: Uint8Array;
  output: Tensor;
  /** In an approximate index: its model version and LSH bucket keys, to unlink it on eviction. */
  approx?: { index: string; keys: string[]; vector: Float32Array | Float64Array };
}

/** The LSH buckets of one model version in approximate mode. */
interface ApproxIndex {
  settings: string;
  lsh: LshSignature;
  metric: LshMetric;
  tolerance: number;
  buckets: Map<string, Set<string>>;
}

interface Waiting {
  /** Reply subjects of the coalesced requesters (not the first one: the worker answers it). */
  waiters: string[];
  deadlineUnixMs: number;
}

/** Counters per model version. */
interface ModelStats {
  lookups: number;
  hits: number;
  /** Hits on a nearby (not identical) input, approximate mode. */
  approx_hits: number;
  misses: number;
  coalesced: number;
  puts: number;
}

/** Bytes an entry costs: the input kept for verification, the output, and bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 96;

export interface CacheDeps {
  nc: NatsConnection;
  log: Logger;
}

export class CacheActor implements Actor {
  private readonly subjects: Subjects;
  private readonly stores = new Map<number, ClockCache<Entry>>();
  private readonly pending = new Map<string, Waiting>();
  private readonly approx = new Map<string, ApproxIndex>();
  private readonly stats = new Map<string, ModelStats>();
  private service?: Service;
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly config: Readonly<CacheActorConfig>, private readonly deps: CacheDeps) {
    this.subjects = new Subjects(config.prefix);
  }

  get ownedShards(): number[] {
    return ownedShards(this.config.shards, this.config.ownedShards);
  }

  async start(): Promise<void> {
    this.service = await this.deps.nc.services.add({
      name: 'clipper-cache', version: '0.1.0', metadata: { shards: String(this.config.shards), owned: this.ownedShards.join(','), prefix: this.config.prefix },
      statsHandler: () => Promise.resolve(this.snapshot()),
    });
    for (const shard of this.ownedShards) {
      this.stores.set(shard, new ClockCache<Entry>(this.config.budgetBytes, (key, entry) => this.unlink(key, entry)));
      const handler = (kind: 'get' | 'put') => (err: Error | null, msg: Msg) => {
        if (err) this.deps.log.error({ err }, 'endpoint error');
        else if (kind === 'get') this.onGet(shard, msg);
        else this.onPut(shard, msg);
      };
      this.service.addEndpoint(`get-${shard}`, { subject: this.subjects.cacheGet(shard), queue: `cache-${shard}`, handler: handler('get') });
      this.service.addEndpoint(`put-${shard}`, { subject: this.subjects.cachePut(shard), queue: `cache-${shard}`, handler: handler('put') });
    }
    this.sweeper = setInterval(() => this.expireWaiting(), 50);
  }

  /** Entries, bytes and counters, for `$SRV.STATS.clipper-cache` and tests. */
  snapshot(): Record<string, unknown> {
    let entries = 0;
    let bytes = 0;
    let evictions = 0;
    for (const s of this.stores.values()) {
      entries += s.size;
      bytes += s.bytes;
      evictions += s.evictions;
    }
    return { entries, bytes, evictions, pending: this.pending.size, models: Object.fromEntries(this.stats) };
  }

  private statsFor(model: string, version: string): ModelStats {
    const k = `${model}:${version}`;
    let s = this.stats.get(k);
    if (!s) {
      s = { lookups: 0, hits: 0, approx_hits: 0, misses: 0, coalesced: 0, puts: 0 };
      this.stats.set(k, s);
    }
    return s;
  }

  private onGet(shard: number, msg: Msg): void {
    let get;
    try {
      get = cacheGetMessage.parse(decode(msg.data));
      checkTensor(get.input);
    } catch (err) {
      replyError(msg, err);
      return;
    }
    const stats = this.statsFor(get.model, get.version);
    stats.lookups++;
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ queryId: get.query_id, model: get.model, version: get.version, shard }, 'cache lookup');
    const fullKey = `${get.model}@${get.version}:${get.key}`;
    const entry = this.stores.get(shard)!.get(fullKey);
    if (entry && sameBytes(entry.input, get.input.data)) {
      stats.hits++;
      reply(msg, { v: PROTOCOL_VERSION, output: entry.output });
      return;
    }
    if (get.approx) {
      const near = this.nearest(shard, `${get.model}@${get.version}`, get.approx, get.input);
      if (near) {
        stats.hits++;
        stats.approx_hits++;
        reply(msg, { v: PROTOCOL_VERSION, output: near.output });
        return;
      }
    }
    stats.misses++;
    const waiting = this.pending.get(fullKey);
    if (waiting && msg.reply) {
      stats.coalesced++;
      waiting.waiters.push(msg.reply);
      waiting.deadlineUnixMs = Math.max(waiting.deadlineUnixMs, get.deadline_unix_ms);
      return;
    }
    this.pending.set(fullKey, { waiters: [], deadlineUnixMs: get.deadline_unix_ms });
    const task: Task = {
      v: PROTOCOL_VERSION, query_id: get.query_id, deadline_unix_ms: get.deadline_unix_ms, input: get.input,
      ...(get.budget_ms !== undefined ? { budget_ms: get.budget_ms } : {}),
      cache_put: this.subjects.cachePut(shard), cache_key: get.key,
    };
    this.deps.nc.publish(this.subjects.batch(get.model, get.version), encode(task), msg.reply ? { reply: msg.reply } : undefined);
  }

  private onPut(shard: number, msg: Msg): void {
    let put;
    try {
      put = cachePutMessage.parse(decode(msg.data));
      checkTensor(put.input);
    } catch (err) {
      this.deps.log.warn({ err }, 'bad cache put ignored');
      return;
    }
    const fullKey = `${put.model}@${put.version}:${put.key}`;
    const waiting = this.pending.get(fullKey);
    this.pending.delete(fullKey);
    if (put.output) {
      checkTensor(put.output);
      this.statsFor(put.model, put.version).puts++;
      const bytes = put.input.data.byteLength + put.output.data.byteLength + ENTRY_OVERHEAD_BYTES;
      const entry: Entry = { input: put.input.data, output: put.output };
      const index = this.approx.get(`${put.model}@${put.version}`);
      if (index && this.stores.get(shard)?.set(fullKey, entry, bytes)) this.link(fullKey, entry, `${put.model}@${put.version}`, index, put.input);
      else this.stores.get(shard)?.set(fullKey, entry, bytes);
      for (const w of waiting?.waiters ?? []) this.deps.nc.publish(w, encode({ v: PROTOCOL_VERSION, output: put.output }));
    } else {
      const code = put.error && isErrorCode(put.error.code) ? put.error.code : 'CLIPPER_ERR_MODEL_FAILED';
      const err = ClipperError.fromWire(code, put.error?.cause);
      for (const w of waiting?.waiters ?? []) publishError(this.deps.nc, w, err);
    }
  }

  /** The approximate index of a model version, (re)built when its settings change. */
  private indexFor(name: string, settings: NonNullable<CacheGet['approx']>, dim: number): ApproxIndex {
    const key = JSON.stringify({ ...settings, dim });
    let index = this.approx.get(name);
    if (!index || index.settings !== key) {
      index = {
        settings: key, metric: settings.metric, tolerance: settings.tolerance, buckets: new Map(),
        lsh: new LshSignature({ metric: settings.metric, dim, bits: settings.bits, tables: settings.tables, seed: settings.seed, bucketWidth: settings.bucket_width }),
      };
      this.approx.set(name, index);
    }
    return index;
  }

  /** The cached entry nearest to `input` within the tolerance, among the LSH candidates. */
  private nearest(shard: number, name: string, settings: NonNullable<CacheGet['approx']>, input: Tensor): Entry | undefined {
    if (input.dtype !== 'FP32' && input.dtype !== 'FP64') return undefined;
    const x = toTypedArray(input) as Float32Array | Float64Array;
    const index = this.indexFor(name, settings, x.length);
    const store = this.stores.get(shard)!;
    let best: string | undefined;
    let bestDistance = Infinity;
    const seen = new Set<string>();
    for (const bucket of index.lsh.keys(x)) {
      for (const key of index.buckets.get(bucket) ?? []) {
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = store.peek(key);
        if (!entry?.approx) continue;
        const d = distance(index.metric, x, entry.approx.vector);
        if (d <= index.tolerance && d < bestDistance) {
          best = key;
          bestDistance = d;
        }
      }
    }
    return best === undefined ? undefined : store.get(best);
  }

  private link(fullKey: string, entry: Entry, name: string, index: ApproxIndex, input: Tensor): void {
    if (input.dtype !== 'FP32' && input.dtype !== 'FP64') return;
    const vector = toTypedArray(input) as Float32Array | Float64Array;
    if (vector.length !== index.lsh.options.dim) return;
    const keys = index.lsh.keys(vector);
    entry.approx = { index: name, keys, vector };
    for (const k of keys) {
      let set = index.buckets.get(k);
      if (!set) index.buckets.set(k, (set = new Set()));
      set.add(fullKey);
    }
  }

  private unlink(fullKey: string, entry: Entry): void {
    if (!entry.approx) return;
    const index = this.approx.get(entry.approx.index);
    for (const k of entry.approx.keys) {
      const set = index?.buckets.get(k);
      set?.delete(fullKey);
      if (set && set.size === 0) index!.buckets.delete(k);
    }
  }

  /** Coalesced requesters whose evaluation never came back by their deadline get "expired". */
  private expireWaiting(): void {
    const now = Date.now();
    for (const [key, w] of this.pending) {
      if (w.deadlineUnixMs > now) continue;
      this.pending.delete(key);
      const err = new ClipperError('CLIPPER_ERR_QUERY_EXPIRED', 'the evaluation this query waited for did not come back in time');
      for (const subject of w.waiters) publishError(this.deps.nc, subject, err);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.service?.stop().catch(() => undefined);
    await this.deps.nc.drain().catch(() => undefined);
  }
}
