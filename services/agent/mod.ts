export { Agent, type AgentDeps } from './agent.js';
export { desiredProcesses } from './desired.js';
export { agentConfigSchema, type AgentConfig, type DesiredProcess } from './types.js';
