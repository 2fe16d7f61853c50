export { CacheActor, type CacheDeps } from './cache.js';
export { cacheActorConfigSchema, type CacheActorConfig } from './types.js';
export { LshSignature, distance, type LshMetric, type LshOptions } from './lsh-signature.js';
export { ClockCache } from './clock-cache.js';
