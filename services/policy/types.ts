import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { shardConfigProperties } from '../../shared/shards.js';
import { feedbackRetentionConfigProperties, type FeedbackRetention } from '../../shared/feedback-stream.js';
import type { Tensor } from '../../shared/tensor.js';

/** Policy settings: the shard count P and the shards this process owns. */
export interface PolicyConfig extends CommonConfig, FeedbackRetention {
  shards: number;
  /** Shards owned by this process; all of them when empty. */
  ownedShards: number[];
  /** Prediction cache shards C. */
  cacheShards: number;
  /** Snapshot a shard's state to the KV bucket after this many applied observations… */
  feedbackSnapshotEvery: number;
  /** …or this long after the first observation not in a snapshot yet. */
  feedbackSnapshotMs: number;
  /** How long the models have to answer on one feedback input. */
  feedbackEvalTimeoutMs: number;
  /** The FEEDBACK consumer's ack wait: an unacknowledged observation is redelivered after it. */
  feedbackAckWaitMs: number;
}

export const policyConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    ...shardConfigProperties,
    cacheShards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
    feedbackSnapshotEvery: { type: 'integer', minimum: 1, default: 1000 },
    feedbackSnapshotMs: { type: 'integer', minimum: 10, default: 5000 },
    feedbackEvalTimeoutMs: { type: 'integer', minimum: 10, default: 2000 },
    feedbackAckWaitMs: { type: 'integer', minimum: 1000, default: 30_000 },
    ...feedbackRetentionConfigProperties,
  },
  additionalProperties: false,
} as const;

/** A model version a policy can query. */
export interface ModelRef {
  name: string;
  version: string;
}

/** What a policy knows about the query it decides for. */
export interface PolicyContext {
  app: string;
  uid: string;
  /** The app's linked models, in link order, resolved to the versions to use. */
  models: readonly ModelRef[];
}

/** The outcome of combining model outputs into one prediction. */
export interface Combined {
  output: Tensor;
  /** `name:version` of each model whose own output went into `output`. */
  models: string[];
  /** `name:version` of each selected model that had not answered, replaced by its expected output. */
  missing?: string[];
  /** Agreement of the models that answered, 0..1 (1 when they all agree with the combined answer). */
  confidence?: number;
}

/**
 * Substitutes for missing outputs ("anytime" predictions): the running expected output of a model
 * for an app, or undefined when none has been seen yet.
 */
export type ExpectedOutputs = (model: ModelRef) => Tensor | undefined;

/**
 * A labelled observation for learning, with each model's output on its input (keyed `name:version`;
 * a model that failed to answer is absent). `label` is Clipper's feedback label: the class index for
 * class-probability outputs, the target value for regression outputs.
 */
export interface Observation {
  uid: string;
  label: number;
  outputs: ReadonlyMap<string, Tensor>;
}

/**
 * A correction policy (Clipper §5): which models to ask for a query, and how to turn the outputs
 * that arrived before the deadline into one prediction; stateful policies also learn from feedback.
 *
 * State `S` is plain JSON-serializable data, one value per (app, user) plus one per app for the
 * population (users not seen yet); the policy shard owns it (see `state-store.ts`). Policies are
 * pure: no I/O, no clocks; randomness comes from the `rng` argument so tests are deterministic.
 * State is keyed by model name, so a new version of a model keeps what was learned about the model;
 * a model not in the state yet starts at the neutral weight.
 */
export interface CorrectionPolicy<S = unknown> {
  readonly name: string;
  /** True when the policy keeps no per-(app, user) state, so any process may run it. */
  readonly stateless: boolean;
  /** State for an app or user with no history. */
  initialState(): S;
  /**
   * The models to query, most valuable first: under overload the executor keeps a prefix of this
   * list (graceful degradation drops the lowest-weight models first).
   */
  select(ctx: PolicyContext, state: S, rng: () => number): ModelRef[];
  /**
   * Combines the outputs that arrived (keyed by `name:version`) for the models `selected` for the
   * query; `expected` substitutes for the ones missing. Undefined means "use the app's default".
   */
  combine(ctx: PolicyContext, state: S, selected: readonly ModelRef[], outputs: ReadonlyMap<string, Tensor>, expected?: ExpectedOutputs): Combined | undefined;
  /** Learns from one observation; returns the new state (it may update `state` in place and return it). */
  update(ctx: PolicyContext, state: S, obs: Observation, rng: () => number): S;
}

export function modelKey(m: ModelRef): string {
  return `${m.name}:${m.version}`;
}
