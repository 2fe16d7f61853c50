/** Worker process: `node dist/services/worker/main.js --model M --version V --replica R`. */
import { parseArgs } from 'node:util';
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { Worker, workerConfigSchema, type WorkerConfig } from './mod.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, version: { type: 'string' }, replica: { type: 'string' } } });
const config = loadConfig<WorkerConfig>(workerConfigSchema, { ...commonFromEnv(), ...values, baseDir: process.env.CLIPPER_BASE_DIR, heartbeatMs: process.env.CLIPPER_HEARTBEAT_MS });
const log = createLogger('worker', config.logLevel, { model: config.model, version: config.version, replica: config.replica });
await runActor('worker', log, async () => new Worker(config, { nc: await connectNats(config.natsUrl, `worker-${config.model}-${config.version}-${config.replica}`, log), log }));
