/** Scheduler process: `node dist/services/scheduler/main.js --model M --version V`. */
import { parseArgs } from 'node:util';
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { Scheduler, schedulerConfigSchema, type SchedulerConfig } from './mod.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, version: { type: 'string' } } });
const config = loadConfig<SchedulerConfig>(schedulerConfigSchema, {
  ...commonFromEnv(),
  ...values,
  maxQueueLength: process.env.CLIPPER_MAX_QUEUE_LENGTH,
  replicaTimeoutMs: process.env.CLIPPER_REPLICA_TIMEOUT_MS,
  replicaCapacity: process.env.CLIPPER_REPLICA_CAPACITY,
});
const log = createLogger('scheduler', config.logLevel, { model: config.model, version: config.version });
await runActor('scheduler', log, async () => new Scheduler(config, { nc: await connectNats(config.natsUrl, `scheduler-${config.model}-${config.version}`, log), log }));
