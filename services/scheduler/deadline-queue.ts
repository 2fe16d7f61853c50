/**
 * Earliest-deadline-first queue (a binary min-heap on the deadline), as the scheduler's task queue.
 * Ties keep arrival order, so equal deadlines are served first come, first served.
 */
export interface Deadlined {
  deadlineUnixMs: number;
}

interface Slot<T> {
  item: T;
  seq: number;
}

export class DeadlineQueue<T extends Deadlined> {
  private readonly heap: Slot<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(item: T): void {
    this.heap.push({ item, seq: this.seq++ });
    this.siftUp(this.heap.length - 1);
  }

  /** The task with the earliest deadline, without removing it. */
  peek(): T | undefined {
    return this.heap[0]?.item;
  }

  pop(): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top.item;
  }

  /** Removes and returns every task whose deadline is at or before `nowUnixMs`. */
  popExpired(nowUnixMs: number): T[] {
    const out: T[] = [];
    while (this.heap.length > 0 && this.heap[0]!.item.deadlineUnixMs <= nowUnixMs) out.push(this.pop()!);
    return out;
  }

  /** Removes and returns everything, earliest deadline first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.heap.length > 0) out.push(this.pop()!);
    return out;
  }

  private less(a: Slot<T>, b: Slot<T>): boolean {
    const x = a.item.deadlineUnixMs;
    const y = b.item.deadlineUnixMs;
    return x < y || (x === y && a.seq < b.seq);
  }

  private siftUp(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
