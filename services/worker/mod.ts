export { Worker, type WorkerDeps } from './worker.js';
export { workerConfigSchema, type WorkerConfig } from './types.js';
