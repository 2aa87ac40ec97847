/**
 * Sticky buckets. A key hashes into one of BUCKETS fixed buckets; a request goes to the release
 * when its bucket is below `weight * 100`. Because the bucket never depends on the weight, a key
 * keeps its version while the weight stays the same, and a key already on the release stays
 * there as the weight grows (its bucket stays below a larger threshold).
 */

/** 10,000 buckets: 0.01% resolution, so weights such as 0.5 or 12.25 are exact. */
export const BUCKETS = 10_000;

/** Bucket threshold for a weight in percent (0-100); bucket < threshold -> release. */
export function thresholdFor(weightPercent: number): number {
  return Math.round(Math.min(100, Math.max(0, weightPercent)) * (BUCKETS / 100));
}

/**
 * FNV-1a (32 bit) over the UTF-16 code units, finished with a murmur3 avalanche so that
 * keys differing only in their last character (user-1, user-2) spread over all buckets.
 */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % BUCKETS;
}

/** Bucket for a uniform random number in [0, 1). */
export function bucketOfRoll(roll: number): number {
  const b = Math.floor(roll * BUCKETS);
  return b >= BUCKETS ? BUCKETS - 1 : b < 0 ? 0 : b;
}
