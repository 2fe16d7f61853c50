import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { shardConfigProperties } from '../../shared/shards.js';

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
    ...shardConfigProperties,
    budgetBytes: { type: 'integer', minimum: 1024, default: 64 * 1024 * 1024 },
  },
  additionalProperties: false,
} as const;
