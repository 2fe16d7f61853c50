/**
 * Policy state per (app, user) and per app (Clipper §5: selection state is kept per user, and a new
 * user starts from what the whole population taught). Feedback updates both the user's state and
 * the population's. Users are bounded per app: beyond `maxUsersPerApp` the least recently updated
 * are dropped and fall back to the population state. No I/O: the policy shard owns one store and
 * persists snapshots.
 */
import type { CorrectionPolicy, Observation, PolicyContext } from './types.js';

/** One app's state, JSON-safe: what the policy shard persists and restores. */
export interface AppStateSnapshot<S = unknown> {
  policy: string;
  population: S;
  /** Per-user state, least recently updated first. */
  users: Record<string, S>;
  applied: number;
}

interface AppState<S> {
  policy: string;
  population: S;
  /** Insertion order is update order: the first entry is the least recently updated. */
  users: Map<string, S>;
  applied: number;
}

export class PolicyStateStore<S> {
  readonly maxUsersPerApp: number;
  private readonly byApp = new Map<string, AppState<S>>();

  constructor(opts: { maxUsersPerApp?: number } = {}) {
    const max = opts.maxUsersPerApp ?? 100_000;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxUsersPerApp must be a non-negative integer, got ${max}`);
    this.maxUsersPerApp = max;
  }

  /**
   * The state to use for a query of (app, uid): the user's own state, else the population's (live,
   * not a copy: select and combine only read it). Resets the app's state when its policy name changed.
   */
  stateFor(app: string, uid: string, policy: CorrectionPolicy<S>): S {
    const entry = this.entryFor(app, policy);
    return (uid ? entry.users.get(uid) : undefined) ?? entry.population;
  }

  /**
   * Applies one observation to the user's state (created as a copy of the population's when new)
   * and to the population's, and counts it. The uid is `obs.uid`, else `ctx.uid`; "" means no
   * user: only the population learns.
   */
  apply(ctx: PolicyContext, policy: CorrectionPolicy<S>, obs: Observation, rng: () => number): void {
    const entry = this.entryFor(ctx.app, policy);
    const uid = obs.uid ?? ctx.uid ?? '';
    if (uid && this.maxUsersPerApp > 0) {
      const before = entry.users.get(uid) ?? deepCopy(entry.population);
      entry.users.delete(uid); // re-inserted last: the most recently updated
      entry.users.set(uid, policy.update(ctx, before, obs, rng));
      for (const oldest of entry.users.keys()) {
        if (entry.users.size <= this.maxUsersPerApp) break;
        entry.users.delete(oldest);
      }
    }
    entry.population = policy.update(ctx, entry.population, obs, rng);
    entry.applied += 1;
  }

  /** A deep, JSON-safe copy of the app's state; undefined for an app with none. */
  snapshot(app: string): AppStateSnapshot<S> | undefined {
    const entry = this.byApp.get(app);
    if (!entry) return undefined;
    const users: Record<string, S> = Object.create(null);
    for (const [uid, s] of entry.users) users[uid] = deepCopy(s);
    return { policy: entry.policy, population: deepCopy(entry.population), users, applied: entry.applied };
  }

  /**
   * Replaces the app's state with a snapshot (copied). Users keep the snapshot's order as their
   * update order, except that JavaScript lists integer-like uids first; beyond the bound the first
   * are dropped.
   */
  restore(app: string, snap: AppStateSnapshot<S>): void {
    if (typeof snap?.policy !== 'string' || snap.population === undefined || typeof snap.users !== 'object' || snap.users === null) {
      throw new TypeError('not a policy state snapshot');
    }
    const users = new Map<string, S>();
    for (const [uid, s] of Object.entries(snap.users)) users.set(uid, deepCopy(s));
    for (const oldest of users.keys()) {
      if (users.size <= this.maxUsersPerApp) break;
      users.delete(oldest);
    }
    const applied = Number.isFinite(snap.applied) ? snap.applied : 0;
    this.byApp.set(app, { policy: snap.policy, population: deepCopy(snap.population), users, applied });
  }

  reset(app: string): void {
    this.byApp.delete(app);
  }

  apps(): string[] {
    return [...this.byApp.keys()];
  }

  /** Observations applied to the app since its state was created or restored (restoring keeps the snapshot's count). */
  applied(app: string): number {
    return this.byApp.get(app)?.applied ?? 0;
  }

  /** The app's population state, live (not a copy: read it, do not change it); undefined for an app with none. */
  population(app: string): S | undefined {
    return this.byApp.get(app)?.population;
  }

  /** Users with their own state in the app. */
  userCount(app: string): number {
    return this.byApp.get(app)?.users.size ?? 0;
  }

  private entryFor(app: string, policy: CorrectionPolicy<S>): AppState<S> {
    let entry = this.byApp.get(app);
    if (!entry || entry.policy !== policy.name) {
      entry = { policy: policy.name, population: policy.initialState(), users: new Map(), applied: 0 };
      this.byApp.set(app, entry);
    }
    return entry;
  }
}

/** Policy state is plain JSON data, so a JSON round trip is an exact deep copy. */
function deepCopy<S>(s: S): S {
  return s === undefined ? s : (JSON.parse(JSON.stringify(s)) as S);
}
