import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { NAME_PATTERN } from '../../shared/subjects.js';

/** Worker settings: which model version and replica it serves. */
export interface WorkerConfig extends CommonConfig {
  model: string;
  version: string;
  replica: string;
  heartbeatMs: number;
  /** Relative model paths resolve against this directory. */
  baseDir: string;
  /** How long to wait for the model record to appear in the registry. */
  registryWaitMs: number;
}

export const workerConfigSchema = {
  type: 'object',
  required: ['model', 'version', 'replica'],
  properties: {
    ...commonConfigProperties,
    model: { type: 'string', pattern: NAME_PATTERN },
    version: { type: 'string', pattern: NAME_PATTERN },
    replica: { type: 'string', pattern: NAME_PATTERN },
    heartbeatMs: { type: 'integer', minimum: 50, default: 1000 },
    baseDir: { type: 'string', default: process.cwd() },
    registryWaitMs: { type: 'integer', minimum: 0, default: 10_000 },
  },
  additionalProperties: false,
} as const;
