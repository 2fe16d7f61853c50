/**
 * Replica health from the schedulers' views. A replica its scheduler lists is `up` (or `draining`
 * once it said it is stopping); one that vanishes from the list while up was dropped (missed
 * heartbeats, a failed batch) and shows as `dead` for `deadForMs`, unless it comes back; one that
 * vanishes after draining left on purpose and is forgotten. No I/O.
 */
export type ReplicaState = 'up' | 'draining' | 'dead';

export const REPLICA_STATES: readonly ReplicaState[] = ['up', 'draining', 'dead'];

export interface ReplicaHealthRow {
  model: string;
  version: string;
  replica: string;
  state: ReplicaState;
  /** When it was last listed by its scheduler. */
  seenUnixMs: number;
}

export class ReplicaHealth {
  /** Keyed `<model>.<version>`, then by replica. */
  private readonly byModel = new Map<string, Map<string, ReplicaHealthRow>>();

  constructor(private readonly deadForMs = 60_000) {}

  /** The replicas one scheduler lists now. */
  observe(model: string, version: string, listed: readonly { replica: string; draining: boolean }[], nowMs: number): void {
    const key = `${model}.${version}`;
    let rows = this.byModel.get(key);
    if (!rows) this.byModel.set(key, (rows = new Map()));
    const present = new Set<string>();
    for (const r of listed) {
      present.add(r.replica);
      rows.set(r.replica, { model, version, replica: r.replica, state: r.draining ? 'draining' : 'up', seenUnixMs: nowMs });
    }
    for (const [id, row] of rows) {
      if (present.has(id)) continue;
      if (row.state === 'draining') rows.delete(id);
      else if (row.state === 'up') row.state = 'dead';
    }
    this.expire(nowMs);
  }

  /** Forgets a model version whose scheduler is gone (the model was removed or rolled). */
  forgetModel(model: string, version: string): void {
    this.byModel.delete(`${model}.${version}`);
  }

  /** Known model versions, as `<model>.<version>`. */
  models(): string[] {
    return [...this.byModel.keys()];
  }

  rows(nowMs: number): ReplicaHealthRow[] {
    this.expire(nowMs);
    const out: ReplicaHealthRow[] = [];
    for (const rows of this.byModel.values()) out.push(...rows.values());
    return out.sort((a, b) => a.model.localeCompare(b.model) || a.version.localeCompare(b.version) || a.replica.localeCompare(b.replica, undefined, { numeric: true }));
  }

  private expire(nowMs: number): void {
    for (const rows of this.byModel.values()) {
      for (const [id, row] of rows) if (row.state === 'dead' && nowMs - row.seenUnixMs > this.deadForMs) rows.delete(id);
    }
  }
}
