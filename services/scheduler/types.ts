import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { NAME_PATTERN } from '../../shared/subjects.js';

/** Scheduler settings: the model version it queues for, and its bounds. */
export interface SchedulerConfig extends CommonConfig {
  model: string;
  version: string;
  /** Tasks queued beyond this are refused at once with a retryable error. */
  maxQueueLength: number;
  /** A replica not heard from for this long is dropped. */
  replicaTimeoutMs: number;
  /** Batches in flight per replica (1: pull-style, a replica gets work only when idle). */
  replicaCapacity: number;
}

export const schedulerConfigSchema = {
  type: 'object',
  required: ['model', 'version'],
  properties: {
    ...commonConfigProperties,
    model: { type: 'string', pattern: NAME_PATTERN },
    version: { type: 'string', pattern: NAME_PATTERN },
    maxQueueLength: { type: 'integer', minimum: 1, default: 10_000 },
    replicaTimeoutMs: { type: 'integer', minimum: 100, default: 3_500 },
    replicaCapacity: { type: 'integer', minimum: 1, default: 1 },
  },
  additionalProperties: false,
} as const;
