/** Ingress process: HTTP on CLIPPER_HTTP_PORT (1337) and NATS `<p>.predict.<app>`. */
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { Ingress, ingressConfigSchema, type IngressConfig } from './mod.js';

const env = process.env;
const config = loadConfig<IngressConfig>(ingressConfigSchema, {
  ...commonFromEnv(),
  httpPort: env.CLIPPER_HTTP_PORT,
  httpHost: env.CLIPPER_HTTP_HOST,
  maxBodyBytes: env.CLIPPER_MAX_BODY_BYTES,
  policyShards: env.CLIPPER_POLICY_SHARDS,
  localStatelessPolicies: env.CLIPPER_LOCAL_STATELESS_POLICIES,
  directReplies: env.CLIPPER_DIRECT_REPLIES,
  cacheShards: env.CLIPPER_CACHE_SHARDS,
  nearCacheBytes: env.CLIPPER_NEAR_CACHE_BYTES,
  feedbackMaxAgeS: env.CLIPPER_FEEDBACK_MAX_AGE_S,
  feedbackMaxBytes: env.CLIPPER_FEEDBACK_MAX_BYTES,
  statsPollMs: env.CLIPPER_STATS_POLL_MS,
});
const log = createLogger('ingress', config.logLevel);
await runActor('ingress', log, async () => new Ingress(config, { nc: await connectNats(config.natsUrl, 'ingress', log), log }));
