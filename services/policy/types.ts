import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { shardConfigProperties } from '../../shared/shards.js';
import type { Tensor } from '../../shared/tensor.js';

/** Policy settings: the shard count P and the shards this process owns. */
export interface PolicyConfig extends CommonConfig {
  shards: number;
  /** Shards owned by this process; all of them when empty. */
  ownedShards: number[];
  /** Prediction cache shards C. */
  cacheShards: number;
}

export const policyConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    ...shardConfigProperties,
    cacheShards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
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

/**
 * A correction policy (Clipper §5): which models to ask for a query, and how to turn the outputs
 * that arrived before the deadline into one prediction. Bandit and personalized policies implement
 * the same interface and keep their state per (app, user).
 */
export interface CorrectionPolicy {
  readonly name: string;
  /** True when the policy keeps no per-(app, user) state, so any process may run it. */
  readonly stateless: boolean;
  select(ctx: PolicyContext): ModelRef[];
  /** Combines the outputs that arrived (keyed by `name:version`); undefined means "use the default". */
  combine(ctx: PolicyContext, outputs: ReadonlyMap<string, Tensor>): { output: Tensor; models: string[] } | undefined;
}

export function modelKey(m: ModelRef): string {
  return `${m.name}:${m.version}`;
}
