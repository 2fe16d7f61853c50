/** xxHash (xxhash-wasm), initialized once per process: cache keys and shard choice. */
import xxhash from 'xxhash-wasm';

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Hasher | undefined;

/** Loads the WebAssembly hasher; call once in an actor's start(). */
export async function initHash(): Promise<void> {
  hasher ??= await xxhash();
}

function h(): Hasher {
  if (!hasher) throw new Error('initHash() has not been awaited');
  return hasher;
}

/** xxhash64 of raw bytes as 16 hex digits: the exact cache key of an input. */
export function bytesKey(bytes: Uint8Array): string {
  return h().h64Raw(bytes).toString(16).padStart(16, '0');
}

/** A shard in [0, n) for a string key. */
export function shardOf(key: string, n: number): number {
  return n <= 1 ? 0 : h().h32(key) % n;
}

/** True when two byte arrays hold the same bytes (what a cache hit is verified with). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
