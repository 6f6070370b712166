/**
 * Key-based partition choice, bit-compatible with the Java client's default partitioner (and
 * kafkajs's JavaCompatiblePartitioner): murmur2 over the key bytes, masked positive, modulo the
 * partition count. Producers that agree on this land the same key on the same partition, which
 * is what per-key ordering depends on, so the arithmetic must match Java's int overflow exactly
 * (Math.imul and `| 0` give Java's 32-bit wrap-around; `>>>` is Java's unsigned shift).
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Java `Utils.murmur2(byte[])`: a signed 32-bit hash. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  // Java's switch falls through 3 -> 2 -> 1; spelled out because tsconfig forbids fallthrough.
  const rest = length & 3;
  if (rest >= 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Java `Utils.toPositive`: clears the sign bit (not Math.abs, which differs for MIN_VALUE). */
export function toPositive(h: number): number {
  return h & 0x7fffffff;
}

/** The partition the Java client's default partitioner picks for a non-null key. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions <= 0) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
  return toPositive(murmur2(key)) % numPartitions;
}
