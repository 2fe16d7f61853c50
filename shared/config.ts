/**
 * Configuration: one ajv schema per actor, with defaults and `additionalProperties: false`.
 * `loadConfig` validates (coercing strings from the environment), applies defaults and freezes.
 */
import { Ajv, type SchemaObject } from 'ajv';
import { ClipperError } from './errors.js';
import { LOG_LEVELS } from './logging.js';

const ajv = new Ajv({ useDefaults: true, coerceTypes: true, allErrors: true, strict: true });

/** Settings every actor shares. */
export interface CommonConfig {
  natsUrl: string;
  prefix: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

export const commonConfigProperties = {
  natsUrl: { type: 'string', default: 'nats://127.0.0.1:4222', description: 'NATS server URL(s), comma-separated' },
  prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', default: 'clipper', description: 'subject prefix' },
  logLevel: { type: 'string', enum: [...LOG_LEVELS], default: 'info' },
} as const;

/** Validates `raw` against `schema` and returns a frozen, defaulted copy. */
export function loadConfig<T>(schema: SchemaObject, raw: Record<string, unknown>): Readonly<T> {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) copy[k] = structuredClone(v);
  const validate = ajv.compile(schema);
  if (!validate(copy)) {
    const detail = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`).join('; ');
    throw new ClipperError('CLIPPER_ERR_CONFIG_INVALID', detail);
  }
  return deepFreeze(copy) as Readonly<T>;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Reads the common settings from the environment (NATS_URL, CLIPPER_PREFIX, LOG_LEVEL). */
export function commonFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<CommonConfig> {
  return {
    natsUrl: env.NATS_URL,
    prefix: env.CLIPPER_PREFIX,
    logLevel: env.LOG_LEVEL as CommonConfig['logLevel'] | undefined,
  };
}
