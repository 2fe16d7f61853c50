/** Admin API settings and the request bodies of its endpoints (Clipper's management field names). */
import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { POLICIES, WRAPPERS, type BatchingConfig, type CacheConfig, type PolicyName, type WrapperKind } from '../../shared/registry.js';
import { NAME_PATTERN } from '../../shared/subjects.js';
import { INPUT_TYPES, type InputType } from '../../shared/tensor.js';

export interface AdminConfig extends CommonConfig {
  adminPort: number;
  adminHost: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  adminToken?: string;
}

export const adminConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    adminPort: { type: 'integer', minimum: 0, maximum: 65535, default: 1338 },
    adminHost: { type: 'string', default: '0.0.0.0' },
    adminToken: { type: 'string', minLength: 8 },
  },
  additionalProperties: false,
} as const;

const name = { type: 'string', pattern: NAME_PATTERN };
const names = { type: 'array', items: name, minItems: 1, maxItems: 64, uniqueItems: true };

export interface AddAppRequest {
  name: string;
  input_type: InputType;
  default_output?: string;
  latency_slo_micros?: number;
  input_shape?: number[];
  policy?: PolicyName;
  candidate_model_names?: string[];
}

export interface AddModelRequest {
  model_name: string;
  model_version: string;
  input_type: InputType;
  model_data_path: string;
  wrapper: WrapperKind;
  wrapper_config?: Record<string, unknown>;
  batch_size?: number;
  batching?: BatchingConfig;
  cache?: CacheConfig;
  num_replicas?: number;
  labels?: string[];
  container_name?: string;
}

/** The schema of each POST endpoint's body. */
export const adminSchemas = {
  add_app: {
    type: 'object',
    required: ['name', 'input_type'],
    properties: {
      name,
      input_type: { enum: Object.keys(INPUT_TYPES) },
      default_output: { type: 'string', maxLength: 4096, default: '' },
      latency_slo_micros: { type: 'integer', minimum: 1000, maximum: 60_000_000, default: 100_000 },
      input_shape: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, maxItems: 8 },
      policy: { enum: [...POLICIES], default: 'single' },
      candidate_model_names: { type: 'array', items: name, maxItems: 64 },
    },
    additionalProperties: false,
  },
  delete_app: { type: 'object', required: ['name'], properties: { name }, additionalProperties: false },
  add_model: {
    type: 'object',
    required: ['model_name', 'model_version', 'input_type', 'model_data_path', 'wrapper'],
    properties: {
      model_name: name,
      model_version: name,
      input_type: { enum: Object.keys(INPUT_TYPES) },
      model_data_path: { type: 'string', minLength: 1, maxLength: 4096 },
      wrapper: { enum: [...WRAPPERS] },
      wrapper_config: { type: 'object' },
      batch_size: { type: 'integer', minimum: -1, maximum: 4096, not: { const: 0 }, default: -1 },
      batching: {
        type: 'object',
        properties: {
          sizer: { enum: ['aimd', 'quantile'] },
          max_batch_size: { type: 'integer', minimum: 1, maximum: 4096 },
          delay_ms: { type: 'number', minimum: 0, maximum: 1000 },
          slo_fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
          max_queue_length: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        },
        additionalProperties: false,
      },
      cache: {
        type: 'object',
        properties: {
          mode: { enum: ['off', 'exact', 'approx'] },
          metric: { enum: ['l2', 'cosine'] },
          tolerance: { type: 'number', minimum: 0 },
          bits: { type: 'integer', minimum: 1, maximum: 64 },
          tables: { type: 'integer', minimum: 1, maximum: 64 },
          bucket_width: { type: 'number', exclusiveMinimum: 0 },
          seed: { type: 'integer' },
        },
        additionalProperties: false,
      },
      num_replicas: { type: 'integer', minimum: 0, maximum: 64, default: 1 },
      labels: { type: 'array', items: { type: 'string', maxLength: 256 }, maxItems: 64 },
      container_name: { type: 'string', maxLength: 256 },
    },
    additionalProperties: false,
  },
  set_model_version: { type: 'object', required: ['model_name', 'model_version'], properties: { model_name: name, model_version: name }, additionalProperties: false },
  model_links: { type: 'object', required: ['app_name', 'model_names'], properties: { app_name: name, model_names: names }, additionalProperties: false },
  get_all: { type: 'object', properties: { verbose: { type: 'boolean', default: false } }, additionalProperties: false },
  get_application: { type: 'object', required: ['name'], properties: { name }, additionalProperties: false },
  get_model: { type: 'object', required: ['model_name', 'model_version'], properties: { model_name: name, model_version: name }, additionalProperties: false },
  set_num_replicas: {
    type: 'object',
    required: ['model_name', 'num_replicas'],
    properties: { model_name: name, model_version: name, num_replicas: { type: 'integer', minimum: 0, maximum: 64 } },
    additionalProperties: false,
  },
  get_linked_models: { type: 'object', required: ['app_name'], properties: { app_name: name }, additionalProperties: false },
} as const;
