import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';

/** Cache settings: the shard count C, the shards this process owns, and each shard's byte budget. */
export interface CacheActorConfig extends CommonConfig {
  shards: number;
  /** Shards owned by this process; all of them when empty. */
  ownedShards: number[];
  budgetBytes: number;
}

export const cacheActorConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    shards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
    ownedShards: { type: 'array', items: { type: 'integer', minimum: 0 }, default: [] },
    budgetBytes: { type: 'integer', minimum: 1024, default: 64 * 1024 * 1024 },
  },
  additionalProperties: false,
} as const;
