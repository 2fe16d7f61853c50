/** Sharded actors (policy, cache): P or C shards in all, each process owning some of them. */

/** Config properties every sharded actor has. */
export const shardConfigProperties = {
  shards: { type: 'integer', minimum: 1, maximum: 1024, default: 1 },
  ownedShards: { type: 'array', items: { type: 'integer', minimum: 0 }, default: [] },
} as const;

/** The shards a process owns: the listed ones below `count`, or all of them when none are listed. */
export function ownedShards(count: number, owned: readonly number[]): number[] {
  const all = Array.from({ length: count }, (_, i) => i);
  return owned.length ? owned.filter((s) => s < count) : all;
}
