/**
 * ReplicaLog: the part of a partition's log that replication needs, as a synchronous interface,
 * and MemoryReplicaLog, an in-memory implementation for tests and the simulator.
 *
 * The replica state machine (partition-replica.ts) decides; the log only stores. Offsets are always
 * assigned from logEndOffset: a leader's batches get fresh offsets and its epoch stamped into
 * `partitionLeaderEpoch` (byte 12, outside the CRC); a follower's batches arrive with offsets and
 * epochs already set by the leader and start exactly at the follower's logEndOffset, so assigning
 * from logEndOffset leaves them unchanged (the replica asserts it).
 *
 * Durability is the driver's business: it calls flush() (group commit) when it chooses, and tells
 * the replica afterwards. `flushedOffset` is the durable prefix. `truncateTo` is durable at once,
 * as storage/partition-log.ts makes it (it syncs the cut before returning).
 *
 * The real PartitionLog is asynchronous (a mutex orders its mutations); the broker will wrap it in
 * an adapter that tracks logEndOffset synchronously and queues the writes in order.
 */

import {
  OFF_LAST_OFFSET_DELTA,
  OFF_LEADER_EPOCH,
  batchHeaderInternals,
  batchOffsets,
  patchBaseOffset,
  patchLeaderEpoch,
} from '../protocol/records/batch-header.js';

export interface BatchInfo {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly leaderEpoch: number;
}

export interface StoredBatch extends BatchInfo {
  /** The whole v2 batch, baseOffset and partitionLeaderEpoch patched. Never mutated once stored. */
  readonly bytes: Buffer;
}

export interface AppendInfo {
  readonly baseOffset: number;
  readonly lastOffset: number;
}

export interface ReplicaLog {
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  /** Every offset below this is durable. */
  readonly flushedOffset: number;
  /**
   * Appends whole v2 batches at logEndOffset. With `leaderEpoch` each batch is stamped with it
   * (leader append); without, batches keep the epoch they carry (follower append).
   */
  append(batches: Buffer, leaderEpoch?: number): AppendInfo;
  /** Drops every offset >= `offset`, at a batch boundary (durable when it returns). */
  truncateTo(offset: number): void;
  /** Whole batches from the one holding `offset`, up to maxBytes (at least one batch), none at or past maxOffset. */
  read(offset: number, maxBytes: number, maxOffset?: number): Buffer;
  /** Batch headers in offset order, from `fromOffset` (for rebuilding the epoch cache on recovery). */
  batches(fromOffset?: number): Iterable<BatchInfo>;
}

export class ReplicaLogError extends Error {
  readonly code = 'REPLICA_LOG';
  constructor(message: string) {
    super(message);
    this.name = 'ReplicaLogError';
  }
}

/** Splits a buffer of concatenated batches (CRC-validated) into (position, size, lastOffsetDelta, epoch). */
export function splitBatches(
  buf: Buffer,
): { at: number; size: number; lastOffsetDelta: number; epoch: number }[] {
  const out: { at: number; size: number; lastOffsetDelta: number; epoch: number }[] = [];
  for (const { at, size } of batchOffsets(buf)) {
    out.push({
      at,
      size,
      lastOffsetDelta: buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA),
      epoch: buf.readInt32BE(at + OFF_LEADER_EPOCH),
    });
  }
  return out;
}

export function batchBaseOffset(buf: Buffer, at = 0): number {
  return batchHeaderInternals.readInt64(buf, at);
}

export class MemoryReplicaLog implements ReplicaLog {
  private stored: StoredBatch[] = [];
  private startOffset: number;
  private endOffset: number;
  private flushed: number;
  appendsCount = 0;
  truncationsCount = 0;
  /** Test hook: called with the batches a truncation removes. */
  onTruncate: ((removed: readonly StoredBatch[]) => void) | undefined;

  constructor(logStartOffset = 0) {
    this.startOffset = logStartOffset;
    this.endOffset = logStartOffset;
    this.flushed = logStartOffset;
  }

  get logStartOffset(): number {
    return this.startOffset;
  }

  get logEndOffset(): number {
    return this.endOffset;
  }

  get flushedOffset(): number {
    return this.flushed;
  }

  get batchList(): readonly StoredBatch[] {
    return this.stored;
  }

  append(batches: Buffer, leaderEpoch?: number): AppendInfo {
    const spans = splitBatches(batches);
    if (spans.length === 0) throw new ReplicaLogError('append of no batches');
    const baseOffset = this.endOffset;
    let next = baseOffset;
    const out: StoredBatch[] = [];
    for (const s of spans) {
      const bytes = Buffer.from(batches.subarray(s.at, s.at + s.size));
      patchBaseOffset(bytes, 0, next);
      if (leaderEpoch !== undefined) patchLeaderEpoch(bytes, 0, leaderEpoch);
      const epoch = leaderEpoch ?? s.epoch;
      out.push({ baseOffset: next, lastOffset: next + s.lastOffsetDelta, leaderEpoch: epoch, bytes });
      next += s.lastOffsetDelta + 1;
    }
    this.stored.push(...out);
    this.endOffset = next;
    this.appendsCount++;
    return { baseOffset, lastOffset: next - 1 };
  }

  truncateTo(offset: number): void {
    if (offset >= this.endOffset) return;
    const before = this.stored;
    if (offset <= this.startOffset) {
      this.stored = [];
      this.startOffset = offset;
      this.endOffset = offset;
    } else {
      // Drop the batch holding `offset` whole, as PartitionLog does.
      let keep = this.stored.length;
      while (keep > 0 && this.stored[keep - 1]!.lastOffset >= offset) keep--;
      this.stored = this.stored.slice(0, keep);
      const last = this.stored[keep - 1];
      this.endOffset = last === undefined ? this.startOffset : last.lastOffset + 1;
    }
    // As PartitionLog: the cut is synced before truncateTo returns, and with it what remains.
    this.flushed = this.endOffset;
    this.truncationsCount++;
    this.onTruncate?.(before.slice(this.stored.length));
  }

  read(offset: number, maxBytes: number, maxOffset = Number.POSITIVE_INFINITY): Buffer {
    if (offset < this.startOffset || offset > this.endOffset) {
      throw new ReplicaLogError(`read at ${offset} outside ${this.startOffset}..${this.endOffset}`);
    }
    const parts: Buffer[] = [];
    let bytes = 0;
    for (let i = this.indexOf(offset); i < this.stored.length; i++) {
      const b = this.stored[i]!;
      if (b.baseOffset >= maxOffset) break;
      if (parts.length > 0 && bytes + b.bytes.length > maxBytes) break;
      parts.push(b.bytes);
      bytes += b.bytes.length;
    }
    return Buffer.concat(parts);
  }

  *batches(fromOffset = 0): Iterable<BatchInfo> {
    for (let i = this.indexOf(fromOffset); i < this.stored.length; i++) yield this.stored[i]!;
  }

  /** The stored batch holding `offset`, if any. */
  batchAt(offset: number): StoredBatch | undefined {
    const b = this.stored[this.indexOf(offset)];
    return b !== undefined && b.baseOffset <= offset && offset <= b.lastOffset ? b : undefined;
  }

  /** Makes everything appended so far durable (the simulator calls it when its fsync completes). */
  flush(upTo = this.endOffset): void {
    this.flushed = Math.max(this.flushed, Math.min(upTo, this.endOffset));
  }

  /**
   * Power loss: the unflushed tail is lost except its first `survivingBatches` batches (data written
   * but not fsynced sometimes survives). Returns the number of batches lost.
   */
  crash(survivingBatches = 0): number {
    let keep = 0;
    while (keep < this.stored.length && this.stored[keep]!.lastOffset < this.flushed) keep++;
    keep = Math.min(this.stored.length, keep + Math.max(0, survivingBatches));
    const lost = this.stored.length - keep;
    this.stored = this.stored.slice(0, keep);
    this.endOffset = keep === 0 ? this.startOffset : this.stored[keep - 1]!.lastOffset + 1;
    this.flushed = this.endOffset;
    return lost;
  }

  /** A deep copy (the simulator's durable image of a crashed broker). */
  clone(): MemoryReplicaLog {
    const c = new MemoryReplicaLog(this.startOffset);
    c.stored = [...this.stored];
    c.endOffset = this.endOffset;
    c.flushed = this.flushed;
    return c;
  }

  /** Index of the batch holding `offset`, or of the first batch after it (binary search). */
  private indexOf(offset: number): number {
    let lo = 0;
    let hi = this.stored.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.stored[mid]!.lastOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
