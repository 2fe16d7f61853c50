/** Agent process: starts and stops the schedulers and workers of this host. */
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { Agent, agentConfigSchema, type AgentConfig } from './mod.js';

const env = process.env;
const config = loadConfig<AgentConfig>(agentConfigSchema, {
  ...commonFromEnv(),
  host: env.CLIPPER_HOST,
  logDir: env.CLIPPER_LOG_DIR,
  baseDir: env.CLIPPER_BASE_DIR,
  restartBackoffMs: env.CLIPPER_RESTART_BACKOFF_MS,
});
const log = createLogger('agent', config.logLevel, { host: config.host });
// The agent's children need time to drain before it exits.
await runActor('agent', log, async () => new Agent(config, { nc: await connectNats(config.natsUrl, `agent-${config.host}`, log), log }), 8_000);
