/** Admin API process: HTTP on CLIPPER_ADMIN_PORT (1338). */
import { runActor } from '../../shared/actor.js';
import { commonFromEnv, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { connectNats } from '../../shared/nats.js';
import { Admin, adminConfigSchema, type AdminConfig } from './mod.js';

const env = process.env;
const config = loadConfig<AdminConfig>(adminConfigSchema, {
  ...commonFromEnv(),
  adminPort: env.CLIPPER_ADMIN_PORT,
  adminHost: env.CLIPPER_ADMIN_HOST,
  adminToken: env.CLIPPER_ADMIN_TOKEN,
});
const log = createLogger('admin', config.logLevel);
await runActor('admin', log, async () => new Admin(config, { nc: await connectNats(config.natsUrl, 'admin', log), log }));
