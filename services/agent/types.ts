import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { NAME_PATTERN } from '../../shared/subjects.js';

/** Agent settings. */
export interface AgentConfig extends CommonConfig {
  /** This host's name (one agent per host). */
  host: string;
  /** Where each child's stdout/stderr go (`<logDir>/<child>.log`); inherited when absent. */
  logDir?: string;
  /** Relative model paths resolve against this directory. */
  baseDir: string;
  /** First restart delay after a child crashes; doubles up to 30 s. */
  restartBackoffMs: number;
}

export const agentConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    host: { type: 'string', pattern: NAME_PATTERN, default: 'local' },
    logDir: { type: 'string' },
    baseDir: { type: 'string', default: process.cwd() },
    restartBackoffMs: { type: 'integer', minimum: 10, default: 500 },
  },
  additionalProperties: false,
} as const;

/** One process the registry says should run. */
export interface DesiredProcess {
  key: string;
  actor: 'scheduler' | 'worker';
  args: string[];
}
