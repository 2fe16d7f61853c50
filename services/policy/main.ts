/** Policy process: `node dist/services/policy/main.js [--shards P] [--own 0,1]`. */
import { parseArgs } from 'node:util';
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { PolicyActor, policyConfigSchema, type PolicyConfig } from './mod.js';

const { values } = parseArgs({ options: { shards: { type: 'string' }, own: { type: 'string' } } });
const config = loadConfig<PolicyConfig>(policyConfigSchema, {
  ...commonFromEnv(),
  shards: values.shards ?? process.env.CLIPPER_POLICY_SHARDS,
  ownedShards: values.own ? values.own.split(',').map(Number) : undefined,
  cacheShards: process.env.CLIPPER_CACHE_SHARDS,
  feedbackSnapshotEvery: process.env.CLIPPER_FEEDBACK_SNAPSHOT_EVERY,
  feedbackSnapshotMs: process.env.CLIPPER_FEEDBACK_SNAPSHOT_MS,
  feedbackMaxAgeS: process.env.CLIPPER_FEEDBACK_MAX_AGE_S,
  feedbackMaxBytes: process.env.CLIPPER_FEEDBACK_MAX_BYTES,
});
const log = createLogger('policy', config.logLevel);
await runActor('policy', log, async () => new PolicyActor(config, { nc: await connectNats(config.natsUrl, 'policy', log), log }));
