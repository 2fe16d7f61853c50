/** Counters the actors report in their NATS service stats, as the integration tests read them. */
import type { NatsConnection } from 'nats';
import { serviceStats } from '../../shared/nats.js';

export interface CacheModelStats { lookups: number; hits: number; approx_hits: number; misses: number; coalesced: number; puts: number }

/** One model version's counters in the (single) cache actor; zeros before its first lookup. */
export async function cacheModelStats(nc: NatsConnection, model: string, version = '1'): Promise<CacheModelStats> {
  const data = await serviceStats<{ models: Record<string, CacheModelStats> }>(nc, 'clipper-cache');
  if (!data) throw new Error('no cache actor');
  return data.models[`${model}:${version}`] ?? { lookups: 0, hits: 0, approx_hits: 0, misses: 0, coalesced: 0, puts: 0 };
}

/** Tasks the scheduler of `model` has received so far. */
export async function schedulerTaskCount(nc: NatsConnection, model: string): Promise<number> {
  const data = await serviceStats<{ tasks: number }>(nc, 'clipper-scheduler', (md) => md.model === model);
  if (!data) throw new Error(`no scheduler for ${model}`);
  return data.tasks;
}
