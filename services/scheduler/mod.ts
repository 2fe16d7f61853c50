export { Scheduler, type SchedulerDeps } from './scheduler.js';
export { DeadlineQueue, type Deadlined } from './deadline-queue.js';
export { FixedBatchSizer, type BatchSizer } from './batch-sizer.js';
export { AimdBatchSizer } from './aimd-batch-sizer.js';
export { QuantileBatchSizer } from './quantile-batch-sizer.js';
export { createBatchSizer, type SizerKind } from './batch-sizers.js';
export { schedulerConfigSchema, type SchedulerConfig } from './types.js';
