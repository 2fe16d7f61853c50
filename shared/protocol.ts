/**
 * Every message that crosses NATS, declared once: its subject, its ajv schema and its TypeScript type
 * (`defineEndpoint`). Wire names are snake_case; every message carries `v`, the protocol version.
 * Public requests may omit `v` (it means the current version); a version we do not know is refused.
 */
import { Ajv, type SchemaObject, type ValidateFunction } from 'ajv';
import { ClipperError } from './errors.js';
import { DTYPES, type Tensor } from './tensor.js';
import { NAME_PATTERN } from './subjects.js';

export const PROTOCOL_VERSION = 1;

const ajv = new Ajv({ allErrors: false, strict: true, strictRequired: false });

/** A message schema compiled once, with a type guard that throws a coded error. */
export interface MessageType<T> {
  readonly schema: SchemaObject;
  /** Returns the value typed, or throws CLIPPER_ERR_PROTO_VERSION / CLIPPER_ERR_REQUEST_SCHEMA. */
  parse(value: unknown): T;
}

export function defineMessage<T>(schema: SchemaObject): MessageType<T> {
  const validate: ValidateFunction = ajv.compile(schema);
  return {
    schema,
    parse(value: unknown): T {
      if (value !== null && typeof value === 'object' && 'v' in value && (value as { v: unknown }).v !== PROTOCOL_VERSION) {
        throw new ClipperError('CLIPPER_ERR_PROTO_VERSION', `got v=${JSON.stringify((value as { v: unknown }).v)}, this server speaks v=${PROTOCOL_VERSION}`);
      }
      if (!validate(value)) {
        const e = validate.errors?.[0];
        throw new ClipperError('CLIPPER_ERR_REQUEST_SCHEMA', e ? `${e.instancePath || 'body'} ${e.message}` : 'invalid');
      }
      return value as T;
    },
  };
}

/** A request/reply endpoint: subject builder plus request and response types. */
export interface Endpoint<Req, Res, A extends unknown[]> {
  readonly name: string;
  readonly subject: (...args: A) => string;
  readonly request: MessageType<Req>;
  readonly response: MessageType<Res>;
}

export function defineEndpoint<Req, Res, A extends unknown[]>(
  name: string,
  subject: (...args: A) => string,
  requestSchema: SchemaObject,
  responseSchema: SchemaObject,
): Endpoint<Req, Res, A> {
  return { name, subject, request: defineMessage<Req>(requestSchema), response: defineMessage<Res>(responseSchema) };
}

// ---- shared schema pieces ----------------------------------------------------------------------

const version = { type: 'integer', const: PROTOCOL_VERSION };
const name = { type: 'string', pattern: NAME_PATTERN };
/** A tensor; `data` is checked by the tensor codec (bytes in msgpack, a flat array in JSON). */
export const tensorSchema = {
  type: 'object',
  required: ['dtype', 'shape', 'data'],
  properties: {
    dtype: { type: 'string', enum: [...DTYPES] },
    shape: { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 8 },
    data: {},
  },
  additionalProperties: false,
} as const;
const uid = { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'integer' }] };

// ---- public: predict -----------------------------------------------------------------------------

/** What a client sends to `<p>.predict.<app>` or `POST /<app>/predict`. */
export interface PredictRequest {
  v?: number;
  input?: unknown;
  input_batch?: unknown[];
  version?: string;
  uid?: string | number;
  /** false: skip the prediction cache for this query. */
  cache?: boolean;
}

/** One prediction: Clipper's response fields. */
export interface Prediction {
  query_id: string;
  output: unknown;
  default: boolean;
  default_explanation?: string;
  /** Linked models the policy asked that had not answered by the deadline (their expected output stood in). */
  missing_models?: string[];
  /** Agreement of the models that answered, 0..1; only for policies that ask several models. */
  confidence?: number;
}

export type PredictResponse = ({ v: number } & Prediction) | { v: number; batch_predictions: Prediction[] };

const predictionSchema = {
  type: 'object',
  required: ['query_id', 'output', 'default'],
  properties: {
    query_id: { type: 'string' },
    output: {},
    default: { type: 'boolean' },
    default_explanation: { type: 'string' },
    missing_models: { type: 'array', items: { type: 'string' } },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
  },
};

export const predictRequestSchema = {
  type: 'object',
  properties: {
    v: version,
    input: {},
    input_batch: { type: 'array', minItems: 1, maxItems: 1024 },
    version: name,
    uid,
    cache: { type: 'boolean' },
  },
  oneOf: [{ required: ['input'] }, { required: ['input_batch'] }],
  additionalProperties: false,
} as const;

// ---- internal: ingress → policy ------------------------------------------------------------------

export interface PolicyQuery {
  v: number;
  query_id: string;
  app: string;
  uid: string;
  version?: string;
  input: Tensor;
  deadline_unix_ms: number;
  /** Skip the prediction cache. */
  no_cache?: boolean;
}

/** The policy's answer: a tensor from the models, or the app's default output (a string). */
export interface PolicyAnswer {
  v: number;
  query_id: string;
  output: Tensor | string;
  default: boolean;
  default_explanation?: string;
  /** `model:version` of each model whose output was used. */
  models?: string[];
  /** `model:version` of each asked model that missed the deadline, replaced by its expected output. */
  missing?: string[];
  /** Agreement of the models that answered, 0..1. */
  confidence?: number;
}

// ---- internal: policy → scheduler, scheduler → worker --------------------------------------------

export interface Task {
  v: number;
  query_id: string;
  deadline_unix_ms: number;
  /**
   * How long the task had in all: from its query's SLO clock start to `deadline_unix_ms`. With it a
   * scheduler tells a task that reached it, or waited in its queue, until too late to be served
   * (overload, here or upstream: refused, retryable) from one whose model is too slow for that time
   * (expired: the default output). Without it, the time from the task's arrival counts.
   */
  budget_ms?: number;
  input: Tensor;
  /** Set by the cache on a forwarded miss: where the worker puts the result, under which key. */
  cache_put?: string;
  cache_key?: string;
  /**
   * Set by the ingress when it forwards a client's NATS query with the client's own reply subject
   * (a direct query): the answer goes to the client in the ingress's reply format (`{v, query_id,
   * output, default}`), and an expired or failed task gets this app's default output.
   */
  client_app?: string;
}

/** A cache lookup: the task plus the model version and the input's exact key. */
export interface CacheGet extends Task {
  model: string;
  version: string;
  key: string;
  /** Approximate lookup: the model's LSH settings and tolerance. */
  approx?: { metric: 'l2' | 'cosine'; tolerance: number; bits: number; tables: number; bucket_width: number; seed: number };
}

/** A worker's result for the cache, or the failure the waiting requesters should get. */
export interface CachePut {
  v: number;
  model: string;
  version: string;
  key: string;
  input: Tensor;
  output?: Tensor;
  error?: { code: string; cause: string };
}

/** The put for one input the cache forwarded: the model's output, or the failure its waiters should get. */
export function cachePutOf(model: string, version: string, key: string, input: Tensor, result: Tensor | ClipperError): CachePut {
  return result instanceof ClipperError
    ? { v: PROTOCOL_VERSION, model, version, key, input, error: { code: result.code, cause: result.message } }
    : { v: PROTOCOL_VERSION, model, version, key, input, output: result };
}

export interface TaskResult {
  v: number;
  output: Tensor;
}

/**
 * A batch for a worker. With `reply_to` (one subject per input) the worker sends each output
 * straight to its requester, saving the hop back through the scheduler, and its reply to the
 * scheduler carries no outputs.
 */
export interface Batch {
  v: number;
  batch_id: string;
  deadline_unix_ms: number;
  inputs: Tensor[];
  reply_to?: string[];
  /** Per input: the cache put subject ('' for none) and key, for tasks forwarded by the cache. */
  cache_put?: string[];
  cache_key?: string[];
  /** Per input: the query id of a direct query ('' for none), whose answer has the client's format. */
  client_query?: string[];
}

export interface BatchResult {
  v: number;
  outputs?: Tensor[];
  compute_us: number;
}

/** A heartbeat / readiness record on `<p>.events.<actor>.<id>`. */
export interface Heartbeat {
  v: number;
  actor: string;
  id: string;
  state: 'loading' | 'ready' | 'stopping';
  ts_unix_ms: number;
  model?: string;
  version?: string;
  replica?: string;
  subject?: string;
  capacity?: number;
  /** Unique per process: a replica id seen with a new instance was restarted, its old process is gone. */
  instance?: string;
  /** A worker's warm-up at load: compute time per batch size, in order of size (services/worker/warm-up.ts). */
  profile?: ProfilePoint[];
}

/** Compute time of one batch size in a worker's warm-up (the median of its runs), µs. */
export interface ProfilePoint {
  size: number;
  compute_us: number;
}

export function endpoints(s: import('./subjects.js').Subjects) {
  return {
    predict: defineEndpoint<PredictRequest, PredictResponse, [string]>(
      'predict', (app) => s.predict(app), predictRequestSchema,
      { type: 'object', required: ['v'], properties: { v: version } },
    ),
    policy: defineEndpoint<PolicyQuery, PolicyAnswer, [string, number]>(
      'policy', (app, shard) => s.policy(app, shard),
      {
        type: 'object',
        required: ['v', 'query_id', 'app', 'uid', 'input', 'deadline_unix_ms'],
        properties: { v: version, query_id: { type: 'string' }, app: name, uid: { type: 'string' }, version: name, input: tensorSchema, deadline_unix_ms: { type: 'number' }, no_cache: { type: 'boolean' } },
        additionalProperties: false,
      },
      {
        type: 'object',
        required: ['v', 'query_id', 'output', 'default'],
        properties: { v: version, query_id: { type: 'string' }, output: { anyOf: [{ type: 'string' }, tensorSchema] }, default: { type: 'boolean' }, default_explanation: { type: 'string' }, models: { type: 'array', items: { type: 'string' } }, missing: { type: 'array', items: { type: 'string' } }, confidence: { type: 'number', minimum: 0, maximum: 1 } },
        additionalProperties: false,
      },
    ),
    batch: defineEndpoint<Task, TaskResult, [string, string]>(
      'batch', (model, ver) => s.batch(model, ver),
      {
        type: 'object',
        required: ['v', 'query_id', 'deadline_unix_ms', 'input'],
        properties: { v: version, query_id: { type: 'string' }, deadline_unix_ms: { type: 'number' }, budget_ms: { type: 'number', minimum: 0 }, input: tensorSchema, cache_put: { type: 'string' }, cache_key: { type: 'string' }, client_app: name },
        additionalProperties: false,
      },
      { type: 'object', required: ['v', 'output'], properties: { v: version, output: tensorSchema }, additionalProperties: false },
    ),
    worker: defineEndpoint<Batch, BatchResult, [string, string, string]>(
      'worker', (model, ver, replica) => s.worker(model, ver, replica),
      {
        type: 'object',
        required: ['v', 'batch_id', 'deadline_unix_ms', 'inputs'],
        properties: { v: version, batch_id: { type: 'string' }, deadline_unix_ms: { type: 'number' }, inputs: { type: 'array', items: tensorSchema, minItems: 1 }, reply_to: { type: 'array', items: { type: 'string' } }, cache_put: { type: 'array', items: { type: 'string' } }, cache_key: { type: 'array', items: { type: 'string' } }, client_query: { type: 'array', items: { type: 'string' } } },
        additionalProperties: false,
      },
      {
        type: 'object',
        required: ['v', 'compute_us'],
        properties: { v: version, outputs: { type: 'array', items: tensorSchema }, compute_us: { type: 'number' } },
        additionalProperties: false,
      },
    ),
  };
}

export type Endpoints = ReturnType<typeof endpoints>;

export const cacheGetMessage = defineMessage<CacheGet>({
  type: 'object',
  required: ['v', 'query_id', 'deadline_unix_ms', 'input', 'model', 'version', 'key'],
  properties: {
    v: version, query_id: { type: 'string' }, deadline_unix_ms: { type: 'number' }, budget_ms: { type: 'number', minimum: 0 }, input: tensorSchema, model: name, version: name, key: { type: 'string', maxLength: 64 },
    approx: {
      type: 'object',
      required: ['metric', 'tolerance', 'bits', 'tables', 'bucket_width', 'seed'],
      properties: { metric: { enum: ['l2', 'cosine'] }, tolerance: { type: 'number', minimum: 0 }, bits: { type: 'integer', minimum: 1, maximum: 64 }, tables: { type: 'integer', minimum: 1, maximum: 64 }, bucket_width: { type: 'number', exclusiveMinimum: 0 }, seed: { type: 'integer' } },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
});

export const cachePutMessage = defineMessage<CachePut>({
  type: 'object',
  required: ['v', 'model', 'version', 'key', 'input'],
  properties: {
    v: version, model: name, version: name, key: { type: 'string', maxLength: 64 }, input: tensorSchema, output: tensorSchema,
    error: { type: 'object', required: ['code', 'cause'], properties: { code: { type: 'string' }, cause: { type: 'string' } } },
  },
  additionalProperties: false,
});

export const heartbeatMessage = defineMessage<Heartbeat>({
  type: 'object',
  required: ['v', 'actor', 'id', 'state', 'ts_unix_ms'],
  properties: {
    v: version,
    actor: { type: 'string' },
    id: { type: 'string' },
    state: { enum: ['loading', 'ready', 'stopping'] },
    ts_unix_ms: { type: 'number' },
    model: { type: 'string' },
    version: { type: 'string' },
    replica: { type: 'string' },
    subject: { type: 'string' },
    capacity: { type: 'integer', minimum: 1 },
    instance: { type: 'string' },
    profile: {
      type: 'array', maxItems: 32,
      items: { type: 'object', required: ['size', 'compute_us'], properties: { size: { type: 'integer', minimum: 1 }, compute_us: { type: 'number', minimum: 0 } }, additionalProperties: false },
    },
  },
  // A newer worker's heartbeat may carry fields an older scheduler does not know (as `profile` once
  // was): they are ignored rather than the heartbeat, which would drop a live replica in a rolling upgrade.
  additionalProperties: true,
});

// ---- feedback: public request, stored record, outcome, policy shard control ---------------------

/** What a client sends to `<p>.feedback.<app>` or `POST /<app>/update` (Clipper's update body). */
export interface FeedbackRequest {
  v?: number;
  uid?: string | number;
  input: unknown;
  /** Checked by the ingress: a finite number (the class index, or the target of a regression). */
  label: unknown;
}

/** The answer once the observation is stored: its id `<app>:<seq>` and its FEEDBACK stream sequence. */
export interface FeedbackAck {
  v: number;
  feedback_id: string;
  stream_seq: number;
}

/** One observation as stored in the FEEDBACK stream (subject `<p>.feedback.<app>.<shard>`). */
export interface FeedbackRecord {
  v: number;
  app: string;
  /** '' when the client named no user. */
  uid: string;
  input: Tensor;
  label: number;
  ts_unix_ms: number;
}

/**
 * An observation after its policy shard evaluated the app's linked models on it, appended to the
 * OUTCOMES stream (subject `<p>.outcome.<app>.<shard>`, msgID `<shard>-<feedback_seq>`). Replaying
 * these rebuilds policy state with no model evaluation.
 */
export interface OutcomeRecord {
  v: number;
  /** The FEEDBACK stream sequence of the observation. */
  feedback_seq: number;
  app: string;
  uid: string;
  label: number;
  /** Output of each model that answered, keyed `name:version`, in link order. */
  outputs: Record<string, Tensor>;
  /** `name:version` of every model linked when it was evaluated (answered or not), in link order. */
  models?: string[];
  ts_unix_ms: number;
}

/** A control request to the owner of one policy shard (`<p>.control.policy.<shard>`). */
export interface PolicyControlRequest {
  v: number;
  op: 'replay' | 'state';
  app: string;
  /** replay: apply only observations with feedback_seq ≥ this (default: all). */
  from_seq?: number;
  /** replay: apply only observations received at or after this time. */
  from_unix_ms?: number;
  /** replay: where the owner publishes progress (`ReplayProgress`) while it runs. */
  progress_subject?: string;
}

/** Progress of a replay on one shard. */
export interface ReplayProgress {
  v: number;
  shard: number;
  app: string;
  processed: number;
  total: number;
}

/** The answer to a control request: a replay's result, or the app's state on the shard. */
export interface PolicyControlReply {
  v: number;
  shard: number;
  app: string;
  /** replay: observations re-applied; state: observations the state covers. */
  applied: number;
  replayed?: number;
  seconds?: number;
  /** The last FEEDBACK sequence the state covers for the app. */
  feedback_seq: number;
  /** state: the app's `AppStateSnapshot` on this shard (absent when it has none). */
  state?: unknown;
}

// ---- service stats: the `data` of an actor's `$SRV.STATS` reply (first endpoint), read by the ingress's metrics ----

/** One worker replica as its scheduler sees it. */
export interface SchedulerReplicaStats {
  /** `<model>.<version>.<replica>` */
  id: string;
  in_flight: number;
  /** The batch size the replica's sizer (AIMD, quantile or fixed) allows now. */
  batch_size: number;
  draining: boolean;
}

/**
 * Why a scheduler refused a task (retryable), for `SchedulerStatsPayload.rejected_by` and the `cause`
 * label of `clipper_scheduler_rejected_total`:
 * - `queue_full`: the queue held `max_queue_length` tasks;
 * - `would_be_late`: admission expected the queue ahead and its own batch, with the lateness margin, to
 *   take it past its deadline;
 * - `arrived_late`: it reached the scheduler too late to be served (a backlog upstream: in front of the
 *   ingress, in the ingress or a policy, or in NATS);
 * - `waited_too_long`: admitted, it waited in the queue until it no longer could finish in time;
 * - `shutting_down`: the scheduler was stopping.
 */
export const SCHEDULER_REFUSAL_CAUSES = ['queue_full', 'would_be_late', 'arrived_late', 'waited_too_long', 'shutting_down'] as const;
export type SchedulerRefusalCause = typeof SCHEDULER_REFUSAL_CAUSES[number];

/** `$SRV.STATS.clipper-scheduler`: one model version's queue; counters are cumulative since the process started. */
export interface SchedulerStatsPayload {
  queued: number;
  tasks: number;
  batches: number;
  expired: number;
  rejected: number;
  /** `rejected` by cause (absent from schedulers older than the field). */
  rejected_by?: Record<SchedulerRefusalCause, number>;
  requeued: number;
  replicas_dropped: number;
  replicas: SchedulerReplicaStats[];
  /** The scheduler's histograms (queue wait, batch size, compute time) in prom-client's JSON form, cumulative. */
  metrics?: unknown[];
}

/** Counters of one model version in one cache process, cumulative since it started. */
export interface CacheModelStats {
  lookups: number;
  /** Every hit, approximate ones included. */
  hits: number;
  approx_hits: number;
  misses: number;
  coalesced: number;
  puts: number;
}

/** `$SRV.STATS.clipper-cache`; `models` is keyed `<model>:<version>`. */
export interface CacheStatsPayload {
  entries: number;
  bytes: number;
  evictions: number;
  pending: number;
  models: Record<string, CacheModelStats>;
}

/** Feedback counters of one policy shard (the fields the metrics read). */
export interface FeedbackShardStats {
  shard: number;
  /** Per app: observations its state covers (a replay resets it), the last FEEDBACK sequence applied. */
  apps: Record<string, { applied: number; feedback_seq: number }>;
  lag: number;
  /** Observations evaluated and applied since the process started. */
  processed: number;
  skipped: number;
}

/** `$SRV.STATS.clipper-policy`, keyed by shard: feedback counters, and softmax(log w) per app and model. */
export interface PolicyStatsPayload {
  feedback: Record<string, FeedbackShardStats | undefined>;
  weights?: Record<string, Record<string, Record<string, number>>>;
}

export const feedbackRequestMessage = defineMessage<FeedbackRequest>({
  type: 'object',
  required: ['input', 'label'],
  properties: { v: version, uid, input: {}, label: {} },
  additionalProperties: false,
});

export const feedbackAckMessage = defineMessage<FeedbackAck>({
  type: 'object',
  required: ['v', 'feedback_id', 'stream_seq'],
  properties: { v: version, feedback_id: { type: 'string' }, stream_seq: { type: 'integer', minimum: 1 } },
  additionalProperties: false,
});

export const feedbackRecordMessage = defineMessage<FeedbackRecord>({
  type: 'object',
  required: ['v', 'app', 'uid', 'input', 'label', 'ts_unix_ms'],
  properties: { v: version, app: name, uid: { type: 'string', maxLength: 256 }, input: tensorSchema, label: { type: 'number' }, ts_unix_ms: { type: 'number' } },
  additionalProperties: false,
});

export const outcomeRecordMessage = defineMessage<OutcomeRecord>({
  type: 'object',
  required: ['v', 'feedback_seq', 'app', 'uid', 'label', 'outputs', 'ts_unix_ms'],
  properties: {
    v: version, feedback_seq: { type: 'integer', minimum: 1 }, app: name, uid: { type: 'string', maxLength: 256 }, label: { type: 'number' },
    outputs: { type: 'object', additionalProperties: tensorSchema }, models: { type: 'array', items: { type: 'string' } }, ts_unix_ms: { type: 'number' },
  },
  additionalProperties: false,
});

export const policyControlRequestMessage = defineMessage<PolicyControlRequest>({
  type: 'object',
  required: ['v', 'op', 'app'],
  properties: {
    v: version, op: { enum: ['replay', 'state'] }, app: name, from_seq: { type: 'integer', minimum: 1 },
    from_unix_ms: { type: 'number', minimum: 0 }, progress_subject: { type: 'string', maxLength: 256 },
  },
  additionalProperties: false,
});

export const replayProgressMessage = defineMessage<ReplayProgress>({
  type: 'object',
  required: ['v', 'shard', 'app', 'processed', 'total'],
  properties: { v: version, shard: { type: 'integer', minimum: 0 }, app: name, processed: { type: 'integer', minimum: 0 }, total: { type: 'integer', minimum: 0 } },
  additionalProperties: false,
});

export const policyControlReplyMessage = defineMessage<PolicyControlReply>({
  type: 'object',
  required: ['v', 'shard', 'app', 'applied', 'feedback_seq'],
  properties: {
    v: version, shard: { type: 'integer', minimum: 0 }, app: name, applied: { type: 'integer', minimum: 0 }, replayed: { type: 'integer', minimum: 0 },
    seconds: { type: 'number', minimum: 0 }, feedback_seq: { type: 'integer', minimum: 0 }, state: {},
  },
  additionalProperties: false,
});

export { predictionSchema };
