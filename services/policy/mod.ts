export { PolicyActor, type PolicyDeps } from './policy.js';
export { QueryExecutor, createPolicy, isStatelessPolicy, type ExecutorDeps } from './executor.js';
export { SinglePolicy } from './single-policy.js';
export { policyConfigSchema, modelKey, type PolicyConfig, type CorrectionPolicy, type ModelRef, type PolicyContext } from './types.js';
