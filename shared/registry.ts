/**
 * The registry: apps, models, current versions and app→model links in a JetStream KV bucket (file
 * storage, so it survives restarts). Values are JSON, readable with any NATS tool.
 *
 *   apps.<app>                 AppRecord
 *   models.<model>.<version>   ModelRecord
 *   current.<model>            { version }
 *   links.<app>                { models: [model, ...] }   (order matters: `single` uses the first)
 *
 * Writers (the admin API) go through `Registry`; every actor keeps a `RegistryView`, a live copy kept
 * current by a KV watch, and reacts to changes without restarting.
 */
import { StorageType, type KV, type KvEntry, type NatsConnection } from 'nats';
import { ClipperError } from './errors.js';
import type { InputType } from './tensor.js';
import type { Subjects } from './subjects.js';
import type { Logger } from './logging.js';

export const POLICIES = ['single', 'exp3', 'exp4'] as const;
export type PolicyName = (typeof POLICIES)[number];
export const WRAPPERS = ['onnx', 'js'] as const;
export type WrapperKind = (typeof WRAPPERS)[number];

/** An application: Clipper's fields plus the policy and optional input shape. */
export interface AppRecord {
  name: string;
  input_type: InputType;
  input_shape?: number[];
  default_output: string;
  latency_slo_micros: number;
  policy: PolicyName;
  created_unix_ms: number;
}

/** Largest batch an adaptive sizer sends when the model sets no `batching.max_batch_size`. */
export const DEFAULT_MAX_BATCH_SIZE = 256;

/** How a model's scheduler forms batches (all optional; defaults in the scheduler). */
export interface BatchingConfig {
  /** Adaptive sizer for `batch_size: -1`: AIMD (default) or quantile regression. */
  sizer?: 'aimd' | 'quantile';
  /** Upper bound for adaptive batch sizes (default DEFAULT_MAX_BATCH_SIZE, 256). */
  max_batch_size?: number;
  /** Delayed batching: wait up to this long for a fuller batch when the queue is short (default 0). */
  delay_ms?: number;
  /** Share of the tightest linked app's SLO a batch may take (default 0.4: queueing takes the rest). */
  slo_fraction?: number;
  /** Tasks queued beyond this are refused at once (default 10 000). */
  max_queue_length?: number;
}

/** Prediction caching of a model (per version; keys include the version). */
export interface CacheConfig {
  /**
   * `exact` answers repeated inputs from the cache; `approx` also answers inputs within `tolerance`
   * of a cached one (LSH candidates, nearest wins); `off` (default) always asks the model.
   */
  mode?: 'off' | 'exact' | 'approx';
  /** Approximate mode: distance metric (default l2). */
  metric?: 'l2' | 'cosine';
  /** Approximate mode: largest distance at which a cached prediction is reused. */
  tolerance?: number;
  /** Approximate mode: LSH hash functions per table (default 4) and tables (default 12). */
  bits?: number;
  tables?: number;
  /** Approximate mode, l2: projection bucket width (default 4 × tolerance). */
  bucket_width?: number;
  seed?: number;
}

/** One version of a model. `batch_size` -1 means adaptive. */
export interface ModelRecord {
  name: string;
  version: string;
  input_type: InputType;
  wrapper: WrapperKind;
  model_data_path: string;
  wrapper_config?: Record<string, unknown>;
  batch_size: number;
  batching?: BatchingConfig;
  cache?: CacheConfig;
  num_replicas: number;
  labels?: string[];
  created_unix_ms: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const toBytes = (v: unknown): Uint8Array => textEncoder.encode(JSON.stringify(v));
const fromBytes = <T>(b: Uint8Array): T => JSON.parse(textDecoder.decode(b)) as T;

export async function openRegistryBucket(nc: NatsConnection, subjects: Subjects): Promise<KV> {
  const js = nc.jetstream();
  return js.views.kv(subjects.registryBucket(), { storage: StorageType.File, history: 5 });
}

/** Read/write access to the registry (used by the admin API). */
export class Registry {
  constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, subjects: Subjects): Promise<Registry> {
    return new Registry(await openRegistryBucket(nc, subjects));
  }

  private async read<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: fromBytes<T>(e.value), revision: e.revision };
  }

  private async keys(filter: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys(filter)) out.push(k);
    return out.sort();
  }

  async addApp(app: AppRecord): Promise<void> {
    try {
      await this.kv.create(`apps.${app.name}`, toBytes(app));
    } catch (err) {
      if (await this.read(`apps.${app.name}`)) throw new ClipperError('CLIPPER_ERR_APP_EXISTS', app.name);
      throw err;
    }
  }

  async getApp(name: string): Promise<AppRecord | undefined> {
    return (await this.read<AppRecord>(`apps.${name}`))?.value;
  }

  async requireApp(name: string): Promise<AppRecord> {
    const app = await this.getApp(name);
    if (!app) throw new ClipperError('CLIPPER_ERR_APP_NOT_FOUND', name);
    return app;
  }

  async listApps(): Promise<AppRecord[]> {
    const apps = await Promise.all((await this.keys('apps.*')).map((k) => this.read<AppRecord>(k)));
    return apps.flatMap((a) => (a ? [a.value] : []));
  }

  async deleteApp(name: string): Promise<void> {
    await this.requireApp(name);
    await this.kv.delete(`links.${name}`);
    await this.kv.delete(`apps.${name}`);
  }

  async addModel(model: ModelRecord): Promise<void> {
    try {
      await this.kv.create(`models.${model.name}.${model.version}`, toBytes(model));
    } catch (err) {
      if (await this.read(`models.${model.name}.${model.version}`)) throw new ClipperError('CLIPPER_ERR_MODEL_EXISTS', `${model.name}:${model.version}`);
      throw err;
    }
    // As in Clipper, a newly added version becomes the current one.
    await this.kv.put(`current.${model.name}`, toBytes({ version: model.version }));
  }

  async getModel(name: string, version: string): Promise<ModelRecord | undefined> {
    return (await this.read<ModelRecord>(`models.${name}.${version}`))?.value;
  }

  async listModels(): Promise<ModelRecord[]> {
    const models = await Promise.all((await this.keys('models.*.*')).map((k) => this.read<ModelRecord>(k)));
    return models.flatMap((m) => (m ? [m.value] : []));
  }

  async getCurrentVersion(name: string): Promise<string | undefined> {
    return (await this.read<{ version: string }>(`current.${name}`))?.value.version;
  }

  async setCurrentVersion(name: string, version: string): Promise<void> {
    if (!(await this.getModel(name, version))) {
      const known = (await this.keys(`models.${name}.*`)).length > 0;
      throw new ClipperError(known ? 'CLIPPER_ERR_VERSION_NOT_FOUND' : 'CLIPPER_ERR_MODEL_NOT_FOUND', `${name}:${version}`);
    }
    await this.kv.put(`current.${name}`, toBytes({ version }));
  }

  /** Changes the desired replica count of a model version (the current one when `version` is absent). */
  async setNumReplicas(name: string, numReplicas: number, version?: string): Promise<ModelRecord> {
    const v = version ?? (await this.getCurrentVersion(name));
    if (!v) throw new ClipperError('CLIPPER_ERR_MODEL_NOT_FOUND', name);
    for (let attempt = 0; ; attempt++) {
      const current = await this.read<ModelRecord>(`models.${name}.${v}`);
      if (!current) throw new ClipperError(version ? 'CLIPPER_ERR_VERSION_NOT_FOUND' : 'CLIPPER_ERR_MODEL_NOT_FOUND', `${name}:${v}`);
      const updated = { ...current.value, num_replicas: numReplicas };
      try {
        await this.kv.update(`models.${name}.${v}`, toBytes(updated), current.revision);
        return updated;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }

  async getLinks(app: string): Promise<string[]> {
    return (await this.read<{ models: string[] }>(`links.${app}`))?.value.models ?? [];
  }

  /** Adds (or removes) links with compare-and-set, so concurrent admins never lose an update. */
  async changeLinks(app: string, models: readonly string[], remove = false): Promise<string[]> {
    await this.requireApp(app);
    if (!remove) {
      for (const m of models) {
        if (!(await this.getCurrentVersion(m))) throw new ClipperError('CLIPPER_ERR_MODEL_NOT_FOUND', m);
      }
    }
    for (let attempt = 0; ; attempt++) {
      const current = await this.read<{ models: string[] }>(`links.${app}`);
      const before = current?.value.models ?? [];
      const after = remove ? before.filter((m) => !models.includes(m)) : [...before, ...models.filter((m) => !before.includes(m))];
      try {
        if (current) await this.kv.update(`links.${app}`, toBytes({ models: after }), current.revision);
        else await this.kv.create(`links.${app}`, toBytes({ models: after }));
        return after;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }
}

/** A live, in-memory copy of the registry, kept current by a KV watch. */
export class RegistryView {
  readonly apps = new Map<string, AppRecord>();
  readonly models = new Map<string, Map<string, ModelRecord>>();
  readonly current = new Map<string, string>();
  readonly links = new Map<string, string[]>();
  private readonly listeners = new Set<() => void>();
  private stopWatch?: () => void;

  constructor(private readonly log?: Logger) {}

  /** Loads every key, then keeps watching; resolves once the initial values are in. */
  async start(kv: KV): Promise<void> {
    // The watch delivers the last value of every key in stream order, so the initial values are all
    // in once the entry with the bucket's last sequence number has been applied. (nats.js's own
    // initializedFn may fire while entries are still queued in the iterator.)
    const lastSeq = (await kv.status()).streamInfo.state.last_seq;
    let resolveReady!: () => void;
    const ready = new Promise<void>((r) => (resolveReady = r));
    if (lastSeq === 0) resolveReady();
    const iter = await kv.watch({ key: '>' });
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        try {
          this.apply(e);
        } catch (err) {
          this.log?.warn({ err, key: e.key }, 'registry entry ignored');
        }
        for (const l of this.listeners) {
          try {
            l();
          } catch (err) {
            this.log?.error({ err, key: e.key }, 'registry change listener failed');
          }
        }
        if (e.revision >= lastSeq) resolveReady();
      }
    })();
    await ready;
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** Calls `listener` after every change. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(e: KvEntry): void {
    const [kind, a, b] = e.key.split('.');
    const deleted = e.operation !== 'PUT';
    if (kind === 'apps' && a) {
      if (deleted) this.apps.delete(a);
      else this.apps.set(a, fromBytes<AppRecord>(e.value));
    } else if (kind === 'models' && a && b) {
      const versions = this.models.get(a) ?? new Map<string, ModelRecord>();
      if (deleted) versions.delete(b);
      else versions.set(b, fromBytes<ModelRecord>(e.value));
      if (versions.size) this.models.set(a, versions);
      else this.models.delete(a);
    } else if (kind === 'current' && a) {
      if (deleted) this.current.delete(a);
      else this.current.set(a, fromBytes<{ version: string }>(e.value).version);
    } else if (kind === 'links' && a) {
      if (deleted) this.links.delete(a);
      else this.links.set(a, fromBytes<{ models: string[] }>(e.value).models);
    }
  }

  model(name: string, version: string): ModelRecord | undefined {
    return this.models.get(name)?.get(version);
  }

  /** The version a query should use: the one it asked for, else the current one. */
  resolveVersion(model: string, requested?: string): string | undefined {
    if (requested !== undefined) return this.model(model, requested) ? requested : undefined;
    return this.current.get(model);
  }

  /** The tightest latency SLO (µs) among the apps linked to `model`; undefined when none is linked. */
  minLinkedSloUs(model: string): number | undefined {
    let min: number | undefined;
    for (const [app, models] of this.links) {
      const slo = this.apps.get(app)?.latency_slo_micros;
      if (slo !== undefined && models.includes(model) && (min === undefined || slo < min)) min = slo;
    }
    return min;
  }

  /** Every model version that should be running: the current version of each model. */
  deployed(): ModelRecord[] {
    const out: ModelRecord[] = [];
    for (const [name, version] of this.current) {
      const m = this.model(name, version);
      if (m) out.push(m);
    }
    return out;
  }
}
