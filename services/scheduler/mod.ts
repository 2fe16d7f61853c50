export { Scheduler, type SchedulerDeps } from './scheduler.js';
export { DeadlineQueue, type Deadlined } from './deadline-queue.js';
export { FixedBatchSizer, createBatchSizer, DEFAULT_MAX_BATCH, type BatchSizer } from './batch-sizer.js';
export { schedulerConfigSchema, type SchedulerConfig } from './types.js';
