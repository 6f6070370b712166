/**
 * The newest batches of a partition log, kept in memory so that a consumer caught up with the log
 * end reads what was just appended without a file read (a thread-pool round trip each, and under
 * CPU contention the latency of getting that thread scheduled; docs/benchmarks.md, 2026-12-07).
 *
 * Invariants (PartitionLog keeps them):
 * - The entries are whole batches exactly as the log file holds them (offsets and leader epoch
 *   patched), consecutive, and the last one ends at the log end offset: the cache is a suffix of
 *   the log, or empty. `add` is called only once an append has completed; anything else that
 *   changes the log (truncation, DeleteRecords, retention, a compaction swap, close) calls `clear`.
 * - An entry references the appender's buffer (no copy on the produce path): append() callers
 *   hand their buffer over and never write to it again. Reads copy out of the entries, so nothing
 *   a reader does can reach the cache.
 * - Memory: at most `perLogBytes` per log and `limitBytes` for all logs sharing a budget; the cache
 *   of the log appended to least recently is dropped first. An entry is charged for the whole
 *   ArrayBuffer its bytes view (the socket read or the frame that carried the request, which the
 *   entry keeps alive), so the limits bound real memory; views sharing one are charged twice.
 *   A view of a buffer more than twice its size is copied first, so it holds only its own bytes.
 */

import type { ReadBufferPool } from './read-buffer-pool.js';

interface Entry {
  base: number;
  last: number;
  bytes: Buffer;
  /** Memory the entry keeps alive: the whole ArrayBuffer `bytes` views (at least its length). */
  cost: number;
}

/** Shared memory limit of the tail caches of many logs (one per broker process by default). */
export class TailCacheBudget {
  heldBytes = 0;
  /** Caches holding bytes, least recently appended to first. */
  private readonly byRecency = new Map<TailCache, true>();

  constructor(
    readonly limitBytes = 32 << 20,
    readonly perLogBytes = 1 << 20,
  ) {}

  touched(cache: TailCache): void {
    this.byRecency.delete(cache);
    this.byRecency.set(cache, true);
  }
  emptied(cache: TailCache): void {
    this.byRecency.delete(cache);
  }
  /** Drops whole caches, least recently appended first, until the total fits (never `keep`'s). */
  enforce(keep: TailCache): void {
    for (const c of this.byRecency.keys()) {
      if (this.heldBytes <= this.limitBytes) return;
      if (c !== keep) c.clear();
    }
  }
}

export const defaultTailCacheBudget = new TailCacheBudget();

export interface TailRead {
  records: Buffer;
  nextOffset: number;
}

export class TailCache {
  private entries: Entry[] = [];
  /** Index of the oldest live entry (evicted ones before it are dropped lazily). */
  private head = 0;
  private bytes = 0;

  constructor(private readonly budget: TailCacheBudget) {}

  get heldBytes(): number {
    return this.bytes;
  }
  /** Base offset of the oldest cached batch; Infinity when empty. */
  get startOffset(): number {
    return this.head < this.entries.length ? this.entries[this.head]!.base : Number.POSITIVE_INFINITY;
  }
  /** Offset after the newest cached batch; -1 when empty. */
  get endOffset(): number {
    return this.head < this.entries.length ? this.entries[this.entries.length - 1]!.last + 1 : -1;
  }

  /** Records a batch just appended (at the log end). */
  add(base: number, last: number, appended: Buffer): void {
    // A small view of a large buffer (a slice of a request frame, or of Node's shared Buffer pool:
    // 8 KiB slabs on Node 20, 64 KiB on Node 24) would keep all of it alive: keep a copy of its
    // own instead, so the cost charged is the memory held.
    let bytes = appended;
    if (bytes.buffer.byteLength > 2 * bytes.length) {
      bytes = Buffer.allocUnsafeSlow(appended.length);
      appended.copy(bytes);
    }
    const cost = Math.max(bytes.length, bytes.buffer.byteLength);
    if (cost > this.budget.perLogBytes || cost > this.budget.limitBytes) {
      this.clear();
      return;
    }
    // Not the continuation of what is cached (cannot happen while PartitionLog keeps the
    // invariants): start over rather than serve a log with a hole.
    if (this.endOffset !== -1 && base !== this.endOffset) this.clear();
    this.entries.push({ base, last, bytes, cost });
    this.bytes += cost;
    this.budget.heldBytes += cost;
    this.budget.touched(this);
    while (this.bytes > this.budget.perLogBytes) this.evictOldest();
    if (this.budget.heldBytes > this.budget.limitBytes) {
      this.budget.enforce(this);
      while (this.budget.heldBytes > this.budget.limitBytes && this.head < this.entries.length)
        this.evictOldest();
    }
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  private evictOldest(): void {
    const e = this.entries[this.head]!;
    this.entries[this.head] = undefined as unknown as Entry;
    this.head++;
    this.bytes -= e.cost;
    this.budget.heldBytes -= e.cost;
    if (this.head === this.entries.length) this.clear();
  }

  clear(): void {
    this.budget.heldBytes -= this.bytes;
    this.bytes = 0;
    this.entries = [];
    this.head = 0;
    this.budget.emptied(this);
  }

  /**
   * The read PartitionLog.read would return, if the batch containing `offset` is cached and the
   * cache ends at `logEndOffset` (else null): whole batches from it while they fit maxBytes (one anyway with minOneBatch), none at or
   * past maxOffset. The caller has checked offset against the log's bounds and maxOffset. The
   * bytes are a copy, into a buffer leased from `pool` when it is large enough.
   */
  read(
    offset: number,
    maxBytes: number,
    minOneBatch: boolean,
    maxOffset: number,
    logEndOffset: number,
    pool: ReadBufferPool | null,
  ): TailRead | null {
    // Only a suffix of the log can answer: anything else would stop early at the cache's end.
    if (this.endOffset !== logEndOffset) return null;
    if (offset < this.startOffset || offset >= this.endOffset) return null;
    // The first entry whose last offset >= offset (entries are consecutive and ordered).
    let lo = this.head;
    let hi = this.entries.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.last < offset) lo = mid + 1;
      else hi = mid;
    }
    let taken = 0;
    let next = offset;
    let end = lo;
    for (let i = lo; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.base >= maxOffset) break;
      const size = e.bytes.length;
      if (taken + size > maxBytes && !(minOneBatch && taken === 0)) break;
      taken += size;
      next = e.last + 1;
      end = i + 1;
      if (taken >= maxBytes) break;
    }
    if (taken === 0) return { records: Buffer.alloc(0), nextOffset: offset };
    const out =
      pool && taken >= pool.minBytes ? pool.acquire(taken).subarray(0, taken) : Buffer.allocUnsafe(taken);
    let at = 0;
    for (let i = lo; i < end; i++) {
      const b = this.entries[i]!.bytes;
      b.copy(out, at);
      at += b.length;
    }
    return { records: out, nextOffset: next };
  }
}
