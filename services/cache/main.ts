/** Cache process: `node dist/services/cache/main.js [--shards C] [--own 0,1]`. */
import { parseArgs } from 'node:util';
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { CacheActor, cacheActorConfigSchema, type CacheActorConfig } from './mod.js';

const { values } = parseArgs({ options: { shards: { type: 'string' }, own: { type: 'string' } } });
const config = loadConfig<CacheActorConfig>(cacheActorConfigSchema, {
  ...commonFromEnv(),
  shards: values.shards ?? process.env.CLIPPER_CACHE_SHARDS,
  ownedShards: values.own ? values.own.split(',').map(Number) : undefined,
  budgetBytes: process.env.CLIPPER_CACHE_BYTES,
});
const log = createLogger('cache', config.logLevel);
await runActor('cache', log, async () => new CacheActor(config, { nc: await connectNats(config.natsUrl, 'cache', log), log }));
