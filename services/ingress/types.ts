import { commonConfigProperties, type CommonConfig } from '../../shared/config.js';
import { feedbackRetentionConfigProperties, type FeedbackRetention } from '../../shared/feedback-stream.js';

/** Ingress settings. */
export interface IngressConfig extends CommonConfig, FeedbackRetention {
  httpPort: number;
  httpHost: string;
  /** Requests with a larger body are refused with 413. */
  maxBodyBytes: number;
  /** Policy shard count P (must match the policy processes). */
  policyShards: number;
  /** Extra time past the deadline to wait for the policy's answer before giving up. */
  policyGraceMs: number;
  /** Serve `<p>.predict.<app>` and `<p>.feedback.<app>` on NATS too. */
  natsPredict: boolean;
  /** Run stateless policies (`single`) in-process instead of asking a policy shard. */
  localStatelessPolicies: boolean;
  /**
   * NATS queries of apps with one model, a stateless policy and no cache go to the model's scheduler
   * with the client's reply subject; the worker answers the client (Ingress.forwardDirect).
   */
  directReplies: boolean;
  /** Prediction cache shards C. */
  cacheShards: number;
  /** Byte budget of the ingress's near cache of exact-mode predictions (0: off). */
  nearCacheBytes: number;
  /** How long to wait for JetStream to store an observation before answering 503. */
  feedbackPublishTimeoutMs: number;
  /** How often to poll the other actors' `$SRV.STATS` for `/metrics`, `/status` and the dashboard (0: never). */
  statsPollMs: number;
}

export const ingressConfigSchema = {
  type: 'object',
  properties: {
    ...commonConfigProperties,
    httpPort: { type: 'integer', minimum: 0, maximum: 65535, default: 1337 },
    httpHost: { type: 'string', default: '0.0.0.0' },
    maxBodyBytes: { type: 'integer', minimum: 1024, default: 1_048_576 },
    policyShards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
    policyGraceMs: { type: 'integer', minimum: 0, default: 250 },
    natsPredict: { type: 'boolean', default: true },
    localStatelessPolicies: { type: 'boolean', default: true },
    directReplies: { type: 'boolean', default: true },
    cacheShards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
    nearCacheBytes: { type: 'integer', minimum: 0, default: 0 },
    feedbackPublishTimeoutMs: { type: 'integer', minimum: 100, default: 5_000 },
    statsPollMs: { type: 'integer', minimum: 0, default: 1_000 },
    ...feedbackRetentionConfigProperties,
  },
  additionalProperties: false,
} as const;
