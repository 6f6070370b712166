/**
 * Sparse in-memory indexes of one segment, in Kafka's on-disk entry format.
 *
 * OffsetIndex: entries (relativeOffset int32, position int32), 8 bytes each. The offset is the
 *   *last* offset of the batch that starts at `position` (as Kafka does), so "largest entry with
 *   offset <= target" always names a batch at or before the one holding target.
 * TimeIndex: entries (timestamp int64, relativeOffset int32), 12 bytes each. Each entry is the
 *   segment's max timestamp so far and the last offset of the batch carrying it, so every batch
 *   up to that offset has maxTimestamp <= entry.timestamp. Timestamps strictly increase.
 *
 * Both are append-only in offset and position order; `decode` rejects files that break that
 * order, so a partial or garbled index file is detected and rebuilt from the log instead.
 *
 * On disk each file ends with a trailer the size of one entry: magic "SLIX", then the CRC-32C of
 * (segment base offset int64, log size int32, the entries). Order checks alone let a flipped bit
 * in a middle entry through (a position still between its neighbours points into the middle of
 * a batch; a lowered timestamp skips batches in ListOffsets), and a well-formed index copied from
 * another segment would pass them too; the CRC catches both, and the segment is then rebuilt from
 * its log. Files without a valid trailer (including those of older versions) are rebuilt likewise.
 */

import { crc32c } from '@node-rs/crc32';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
const TRAILER_MAGIC = 0x534c4958; // "SLIX"

function trailerCrc(entries: Buffer, baseOffset: number, logSizeBytes: number): number {
  const head = Buffer.alloc(12);
  head.writeBigInt64BE(BigInt(baseOffset), 0);
  head.writeInt32BE(logSizeBytes, 8);
  return crc32c(entries, crc32c(head)) >>> 0;
}

/** `entries` followed by a trailer of `trailerBytes` (magic, CRC, zero padding). */
function withTrailer(
  entries: Buffer,
  trailerBytes: number,
  baseOffset: number,
  logSizeBytes: number,
): Buffer {
  const out = Buffer.alloc(entries.length + trailerBytes);
  entries.copy(out, 0);
  out.writeInt32BE(TRAILER_MAGIC, entries.length);
  out.writeUInt32BE(trailerCrc(entries, baseOffset, logSizeBytes), entries.length + 4);
  return out;
}

/** The entries of a file image whose trailer checks out, or null. */
function checkedEntries(
  buf: Buffer,
  trailerBytes: number,
  baseOffset: number,
  logSizeBytes: number,
): Buffer | null {
  if (buf.length < trailerBytes || buf.length % trailerBytes !== 0) return null;
  const at = buf.length - trailerBytes;
  if (buf.readInt32BE(at) !== TRAILER_MAGIC) return null;
  for (let i = at + 8; i < buf.length; i++) if (buf[i] !== 0) return null;
  const entries = buf.subarray(0, at);
  if (buf.readUInt32BE(at + 4) !== trailerCrc(entries, baseOffset, logSizeBytes)) return null;
  return entries;
}

export class OffsetIndex {
  readonly relOffsets: number[] = [];
  readonly positions: number[] = [];

  get length(): number {
    return this.relOffsets.length;
  }

  append(relOffset: number, position: number): void {
    const n = this.relOffsets.length;
    if (n > 0 && (relOffset <= this.relOffsets[n - 1]! || position <= this.positions[n - 1]!)) return;
    this.relOffsets.push(relOffset);
    this.positions.push(position);
  }

  /** Position of the last entry whose offset <= relTarget, or 0 (start of segment). */
  lookup(relTarget: number): number {
    let lo = 0;
    let hi = this.relOffsets.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relOffsets[mid]! <= relTarget) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? 0 : this.positions[found]!;
  }

  last(): { relOffset: number; position: number } | null {
    const n = this.relOffsets.length;
    if (n === 0) return null;
    return { relOffset: this.relOffsets[n - 1]!, position: this.positions[n - 1]! };
  }

  /** Drops entries pointing at or beyond `position` (after truncating the log there). */
  truncateToPosition(position: number): void {
    while (this.positions.length > 0 && this.positions[this.positions.length - 1]! >= position) {
      this.positions.pop();
      this.relOffsets.pop();
    }
  }

  /** The file image: entries, then the trailer (see the top of this file). */
  encode(baseOffset: number, logSizeBytes: number): Buffer {
    const buf = Buffer.allocUnsafe(this.relOffsets.length * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.relOffsets.length; i++) {
      buf.writeInt32BE(this.relOffsets[i]!, i * OFFSET_INDEX_ENTRY_BYTES);
      buf.writeInt32BE(this.positions[i]!, i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return withTrailer(buf, OFFSET_INDEX_ENTRY_BYTES, baseOffset, logSizeBytes);
  }

  /**
   * Parses a file image; null if its trailer does not match (segment `baseOffset`, log of
   * `logSizeBytes`) or it is not a well-formed index.
   */
  static decode(file: Buffer, logSizeBytes: number, baseOffset: number): OffsetIndex | null {
    const buf = checkedEntries(file, OFFSET_INDEX_ENTRY_BYTES, baseOffset, logSizeBytes);
    if (!buf) return null;
    const idx = new OffsetIndex();
    for (let at = 0; at < buf.length; at += OFFSET_INDEX_ENTRY_BYTES) {
      const rel = buf.readInt32BE(at);
      const pos = buf.readInt32BE(at + 4);
      const n = idx.length;
      if (rel < 0 || pos < 0 || pos >= logSizeBytes) return null;
      if (n > 0 && (rel <= idx.relOffsets[n - 1]! || pos <= idx.positions[n - 1]!)) return null;
      idx.relOffsets.push(rel);
      idx.positions.push(pos);
    }
    return idx;
  }
}

export class TimeIndex {
  readonly timestamps: number[] = [];
  readonly relOffsets: number[] = [];

  get length(): number {
    return this.timestamps.length;
  }

  /** Appends only when `timestampMs` exceeds the last indexed timestamp. */
  maybeAppend(timestampMs: number, relOffset: number): void {
    const n = this.timestamps.length;
    if (n > 0 && (timestampMs <= this.timestamps[n - 1]! || relOffset < this.relOffsets[n - 1]!)) return;
    this.timestamps.push(timestampMs);
    this.relOffsets.push(relOffset);
  }

  /** The last entry with timestamp < targetMs: every batch up to its offset is older than target. */
  lookupBefore(targetMs: number): { timestampMs: number; relOffset: number } | null {
    let lo = 0;
    let hi = this.timestamps.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! < targetMs) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? null : { timestampMs: this.timestamps[found]!, relOffset: this.relOffsets[found]! };
  }

  last(): { timestampMs: number; relOffset: number } | null {
    const n = this.timestamps.length;
    if (n === 0) return null;
    return { timestampMs: this.timestamps[n - 1]!, relOffset: this.relOffsets[n - 1]! };
  }

  /** Drops entries whose offset is >= relOffset. */
  truncateToRelOffset(relOffset: number): void {
    while (this.relOffsets.length > 0 && this.relOffsets[this.relOffsets.length - 1]! >= relOffset) {
      this.relOffsets.pop();
      this.timestamps.pop();
    }
  }

  /** The file image: entries, then the trailer (see the top of this file). */
  encode(baseOffset: number, logSizeBytes: number): Buffer {
    const buf = Buffer.allocUnsafe(this.timestamps.length * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.timestamps.length; i++) {
      const at = i * TIME_INDEX_ENTRY_BYTES;
      buf.writeBigInt64BE(BigInt(this.timestamps[i]!), at);
      buf.writeInt32BE(this.relOffsets[i]!, at + 8);
    }
    return withTrailer(buf, TIME_INDEX_ENTRY_BYTES, baseOffset, logSizeBytes);
  }

  static decode(file: Buffer, logSizeBytes: number, baseOffset: number): TimeIndex | null {
    const buf = checkedEntries(file, TIME_INDEX_ENTRY_BYTES, baseOffset, logSizeBytes);
    if (!buf) return null;
    const idx = new TimeIndex();
    for (let at = 0; at < buf.length; at += TIME_INDEX_ENTRY_BYTES) {
      const ts = Number(buf.readBigInt64BE(at));
      const rel = buf.readInt32BE(at + 8);
      const n = idx.length;
      if (rel < 0) return null;
      if (n > 0 && (ts <= idx.timestamps[n - 1]! || rel < idx.relOffsets[n - 1]!)) return null;
      idx.timestamps.push(ts);
      idx.relOffsets.push(rel);
    }
    return idx;
  }
}
