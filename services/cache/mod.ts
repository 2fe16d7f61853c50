// The cache actor (issue: sharded exact/approximate prediction cache) is being built; its pure logic
// comes first.
export { LshSignature, distance, type LshMetric, type LshOptions } from './lsh-signature.js';
export { ClockCache } from './clock-cache.js';
