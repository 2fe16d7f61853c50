export { Ingress, type IngressDeps } from './ingress.js';
export { ingressConfigSchema, type IngressConfig } from './types.js';
export type { AppStatus, CacheStatus, ModelStatus, ReplicaStatus, StatusSnapshot, WeightStatus } from './status-snapshot.js';
