export { Ingress, type IngressDeps } from './ingress.js';
export { ingressConfigSchema, type IngressConfig } from './types.js';
