/**
 * A near cache of exact-mode predictions inside the process that runs the query executor (the
 * ingress for stateless policies, a policy shard otherwise), in front of the cache actor's shards.
 * Clipper keeps its prediction cache in the query frontend; here the shards stay the shared tier
 * (coalescing, approximate lookups, one copy for every ingress) and this tier takes the two NATS legs
 * and the cache process off every repeat it has seen. An entry is keyed like the shards' (model,
 * version, xxhash64 of the input bytes), its input bytes are compared on every hit, and a model
 * version's prediction never changes, so a copy here can never be stale. CLOCK eviction under a byte
 * budget (services/cache/clock-cache.ts).
 */
import { ClockCache } from '../cache/clock-cache.js';
import { sameBytes } from '../../shared/hash.js';
import type { Tensor } from '../../shared/tensor.js';

interface Entry {
  input: Uint8Array;
  output: Tensor;
}

/** Bytes an entry is charged besides its input and output data (key, objects, shape). */
const ENTRY_OVERHEAD_BYTES = 160;

export class NearCache {
  private readonly store: ClockCache<Entry>;
  readonly counters = { hits: 0, misses: 0 };

  constructor(budgetBytes: number) {
    this.store = new ClockCache<Entry>(budgetBytes);
  }

  /** The output stored for these input bytes of model@version under `key`, if any. */
  get(modelVersion: string, key: string, input: Uint8Array): Tensor | undefined {
    const e = this.store.get(`${modelVersion}:${key}`);
    if (e && sameBytes(e.input, input)) {
      this.counters.hits++;
      return e.output;
    }
    this.counters.misses++;
    return undefined;
  }

  /** Keeps a copy (the arguments may be views into a message buffer that should not stay alive). */
  put(modelVersion: string, key: string, input: Uint8Array, output: Tensor): void {
    const entry: Entry = { input: new Uint8Array(input), output: { ...output, shape: [...output.shape], data: new Uint8Array(output.data) } };
    this.store.set(`${modelVersion}:${key}`, entry, input.byteLength + output.data.byteLength + ENTRY_OVERHEAD_BYTES);
  }

  get entries(): number {
    return this.store.size;
  }
}
