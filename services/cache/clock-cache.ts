/**
 * A CLOCK cache under a byte budget: each entry has a reference bit, set on every hit; to make room
 * the hand sweeps the ring, clearing set bits and evicting the first entry whose bit is clear. An
 * approximation of LRU without moving entries on every hit.
 */
interface Slot<V> {
  key: string;
  value: V;
  bytes: number;
  referenced: boolean;
}

export class ClockCache<V> {
  private readonly index = new Map<string, Slot<V>>();
  private ring: (Slot<V> | undefined)[] = [];
  private hand = 0;
  private usedBytes = 0;
  private evicted = 0;

  constructor(readonly budgetBytes: number, private readonly onEvict?: (key: string, value: V) => void) {
    if (!(budgetBytes > 0)) throw new RangeError(`budget must be positive, got ${budgetBytes}`);
  }

  get size(): number {
    return this.index.size;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  get evictions(): number {
    return this.evicted;
  }

  /** The value under `key`, marking it recently used. */
  get(key: string): V | undefined {
    const slot = this.index.get(key);
    if (!slot) return undefined;
    slot.referenced = true;
    return slot.value;
  }

  /** The value under `key` without marking it used (for scanning candidates). */
  peek(key: string): V | undefined {
    return this.index.get(key)?.value;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** Inserts or replaces; evicts until the budget holds. An entry larger than the budget is not kept. */
  set(key: string, value: V, bytes: number): boolean {
    if (!(bytes >= 0) || bytes > this.budgetBytes) {
      this.delete(key);
      return false;
    }
    const old = this.index.get(key);
    if (old) {
      this.usedBytes += bytes - old.bytes;
      old.value = value;
      old.bytes = bytes;
      old.referenced = true;
    } else {
      const slot: Slot<V> = { key, value, bytes, referenced: false };
      this.index.set(key, slot);
      this.ring.push(slot);
      this.usedBytes += bytes;
    }
    while (this.usedBytes > this.budgetBytes) this.evictOne(key);
    return true;
  }

  delete(key: string): boolean {
    const slot = this.index.get(key);
    if (!slot) return false;
    this.index.delete(key);
    this.usedBytes -= slot.bytes;
    const i = this.ring.indexOf(slot);
    if (i >= 0) this.ring[i] = undefined;
    this.compactIfSparse();
    return true;
  }

  /** Sweeps the hand to the next unreferenced entry (never `keep`) and evicts it. */
  private evictOne(keep: string): void {
    for (let steps = 0; steps < 2 * this.ring.length + 1; steps++) {
      if (this.hand >= this.ring.length) this.hand = 0;
      const slot = this.ring[this.hand];
      if (slot && slot.key !== keep) {
        if (slot.referenced) slot.referenced = false;
        else {
          this.ring[this.hand] = undefined;
          this.index.delete(slot.key);
          this.usedBytes -= slot.bytes;
          this.evicted++;
          this.onEvict?.(slot.key, slot.value);
          this.hand++;
          this.compactIfSparse();
          return;
        }
      }
      this.hand++;
    }
    throw new Error('clock cache: nothing evictable');
  }

  /** Drops empty ring slots once they are at least half the ring. */
  private compactIfSparse(): void {
    if (this.ring.length < 64 || this.index.size * 2 > this.ring.length) return;
    const live: Slot<V>[] = [];
    let newHand = 0;
    this.ring.forEach((slot, i) => {
      if (i === this.hand) newHand = live.length;
      if (slot) live.push(slot);
    });
    this.ring = live;
    this.hand = newHand;
  }
}
