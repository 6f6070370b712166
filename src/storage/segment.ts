/**
 * One log segment: a `.log` file of concatenated v2 batches whose first offset is the segment's
 * base offset, plus its sparse offset and time indexes (kept in memory, written to `.index` and
 * `.timeindex` when the segment is sealed).
 *
 * Invariants:
 * - Batches in the file are in offset order: the first has baseOffset >= baseOffset and each next
 *   batch starts after the previous lastOffset (exactly at lastOffset + 1 unless the segment was
 *   compacted, which removes whole batches); `nextOffset` is the last offset + 1. A cleaned
 *   segment keeps its last batch (possibly with no records), so nextOffset never changes.
 * - `sizeBytes` only covers bytes whose write has completed: readers bound every scan by it, so
 *   they never see a batch that is still being written.
 * - Relative offsets and positions fit int32 (the log rolls before they would not).
 * - A sealed segment's index files always end with an entry for its last batch and its max
 *   timestamp; that is what lets open() trust them without scanning the log.
 */

import * as path from 'node:path';
import { DecodeError } from '../protocol/primitives.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  type BatchHeader,
  MAGIC_V2,
  OFF_BATCH_LENGTH,
  OFF_MAGIC,
  readBatchHeader,
  validateBatchAt,
} from '../protocol/records/batch-header.js';
import { CorruptSegmentError, isNotFound } from './errors.js';
import type { LogFile, LogFileSystem } from './fs.js';
import { OffsetIndex, TimeIndex } from './indexes.js';

export const INT32_MAX = 0x7fffffff;
const RECOVERY_CHUNK_BYTES = 1 << 20;
const SCAN_CHUNK_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export function segmentFileName(baseOffset: number, suffix: '.log' | '.index' | '.timeindex'): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

export interface ScannedBatch {
  position: number;
  sizeBytes: number;
  header: BatchHeader;
}

/**
 * Serves byte ranges of a file from one cached chunk, reading ahead `chunkBytes` at a time, and
 * never past `endBytes` (the committed size). Scans of headers thus cost one read per chunk, or
 * one small read per batch when batches are larger than a chunk.
 *
 * The chunk buffer is reused: a read that does not fit the cached chunk overwrites it (when the
 * file supports readInto and the buffer is large enough), so a scan of a 1 GiB segment allocates
 * one buffer, not one per chunk. A view returned by `get` is therefore valid only until the next
 * `get`; callers copy or parse what they need first.
 */
export class ChunkedReader {
  private buf: Buffer = EMPTY;
  private bufStart = 0;
  /** The buffer chunks are read into (its first buf.length bytes are the cached chunk). */
  private own: Buffer = EMPTY;
  constructor(
    private readonly file: LogFile,
    private readonly endBytes: number,
    private readonly chunkBytes: number,
  ) {}

  /**
   * `buf[at, at+len)` holds file bytes `[pos, pos+len)` until the next call; null if that range is
   * past the end.
   */
  async get(pos: number, len: number): Promise<{ buf: Buffer; at: number } | null> {
    if (pos + len > this.endBytes) return null;
    if (pos >= this.bufStart && pos + len <= this.bufStart + this.buf.length) {
      return { buf: this.buf, at: pos - this.bufStart };
    }
    const want = Math.min(Math.max(len, this.chunkBytes), this.endBytes - pos);
    let b: Buffer;
    if (this.file.readInto) {
      if (this.own.length < want) this.own = Buffer.allocUnsafeSlow(Math.max(want, this.chunkBytes));
      // Forget the cached chunk first: its bytes are about to be overwritten.
      this.buf = EMPTY;
      b = this.own.subarray(0, await this.file.readInto(this.own, pos, want));
    } else {
      b = await this.file.read(pos, want);
    }
    if (b.length < len) return null;
    this.buf = b;
    this.bufStart = pos;
    return { buf: b, at: 0 };
  }
}

/**
 * Iterates batch headers from `startPos` to `endBytes` without checking CRCs. Bytes that cannot
 * be a batch header are corruption here (recovery already validated everything below sizeBytes).
 */
export async function* scanHeaders(
  reader: ChunkedReader,
  startPos: number,
  endBytes: number,
  what: string,
): AsyncGenerator<ScannedBatch> {
  let pos = startPos;
  while (pos < endBytes) {
    const got = await reader.get(pos, BATCH_HEADER_BYTES);
    if (!got) throw new CorruptSegmentError(`${what}: truncated batch header at position ${pos}`);
    const batchLength = got.buf.readInt32BE(got.at + OFF_BATCH_LENGTH);
    const sizeBytes = BATCH_LOG_OVERHEAD + batchLength;
    if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || pos + sizeBytes > endBytes) {
      throw new CorruptSegmentError(`${what}: bad batch length ${batchLength} at position ${pos}`);
    }
    if (got.buf.readInt8(got.at + OFF_MAGIC) !== MAGIC_V2) {
      throw new CorruptSegmentError(`${what}: bad magic at position ${pos}`);
    }
    yield { position: pos, sizeBytes, header: readBatchHeader(got.buf, got.at) };
    pos += sizeBytes;
  }
}

export interface SegmentRecovery {
  validEndBytes: number;
  /** Why the scan stopped before the end of file, or null if every byte was valid. */
  reason: string | null;
}

/** A segment's in-memory state at one moment, for undoing a failed append (see restoreTail). */
export interface SegmentTail {
  readonly sizeBytes: number;
  readonly nextOffset: number;
  readonly maxTimestampMs: number;
  readonly offsetOfMaxTimestamp: number;
  readonly offsetIndexLength: number;
  readonly timeIndexLength: number;
  readonly bytesSinceLastIndexEntry: number;
  readonly lastBatchPosition: number;
  readonly firstAppendWallMs: number | null;
  readonly lastAppendWallMs: number;
}

export class LogSegment {
  readonly baseOffset: number;
  readonly dir: string;
  readonly file: LogFile;
  sizeBytes = 0;
  nextOffset: number;
  maxTimestampMs = -1;
  /** Last offset of the batch carrying maxTimestampMs (-1 while empty). */
  offsetOfMaxTimestamp = -1;
  offsetIndex = new OffsetIndex();
  timeIndex = new TimeIndex();
  private bytesSinceLastIndexEntry = 0;
  private lastBatchPosition = -1;
  /** Wall time of the first append, for segmentMs rolling; null while empty. */
  firstAppendWallMs: number | null = null;
  /**
   * Wall time of the last append (open time for recovered segments). Retention falls back to it
   * when no batch carries a timestamp (maxTimestampMs < 0), as Kafka falls back to file mtime;
   * without it such segments would look infinitely old and be deleted at once.
   */
  lastAppendWallMs = 0;

  /** The age retention judges this segment by. */
  retentionTimestampMs(): number {
    return this.maxTimestampMs >= 0 ? this.maxTimestampMs : this.lastAppendWallMs;
  }
  closed = false;

  private constructor(dir: string, baseOffset: number, file: LogFile) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.file = file;
    this.nextOffset = baseOffset;
  }

  static async open(fs: LogFileSystem, dir: string, baseOffset: number): Promise<LogSegment> {
    const file = await fs.open(path.join(dir, segmentFileName(baseOffset, '.log')));
    return new LogSegment(dir, baseOffset, file);
  }

  /**
   * A segment whose log file currently sits at another name (the cleaner's `.cleaned` file); it
   * is renamed to `logPath` when swapped in, and the open handle keeps working across the rename.
   */
  static async openAt(
    fs: LogFileSystem,
    dir: string,
    baseOffset: number,
    filePath: string,
  ): Promise<LogSegment> {
    return new LogSegment(dir, baseOffset, await fs.open(filePath));
  }

  get logPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, '.log'));
  }
  get indexPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, '.index'));
  }
  get timeIndexPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, '.timeindex'));
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  /** Records a batch whose bytes now sit at `position` (Kafka's LogSegment.append bookkeeping). */
  trackBatch(
    position: number,
    sizeBytes: number,
    lastOffset: number,
    maxTimestampMs: number,
    indexIntervalBytes: number,
  ): void {
    if (maxTimestampMs > this.maxTimestampMs || this.offsetOfMaxTimestamp < 0) {
      this.maxTimestampMs = maxTimestampMs;
      this.offsetOfMaxTimestamp = lastOffset;
    }
    if (this.bytesSinceLastIndexEntry > indexIntervalBytes) {
      this.offsetIndex.append(lastOffset - this.baseOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp - this.baseOffset);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += sizeBytes;
    this.lastBatchPosition = position;
    this.nextOffset = lastOffset + 1;
    this.sizeBytes = position + sizeBytes;
  }

  /** The state appends change; restoreTail(t) puts it back (the file is the caller's business). */
  captureTail(): SegmentTail {
    return {
      sizeBytes: this.sizeBytes,
      nextOffset: this.nextOffset,
      maxTimestampMs: this.maxTimestampMs,
      offsetOfMaxTimestamp: this.offsetOfMaxTimestamp,
      offsetIndexLength: this.offsetIndex.length,
      timeIndexLength: this.timeIndex.length,
      bytesSinceLastIndexEntry: this.bytesSinceLastIndexEntry,
      lastBatchPosition: this.lastBatchPosition,
      firstAppendWallMs: this.firstAppendWallMs,
      lastAppendWallMs: this.lastAppendWallMs,
    };
  }

  /**
   * Forgets every batch tracked (and every index entry added, seal's included) since `t` was
   * captured. Only valid while the indexes were only appended to since then, which holds for the
   * appends and the seal of one PartitionLog.append.
   */
  restoreTail(t: SegmentTail): void {
    this.sizeBytes = t.sizeBytes;
    this.nextOffset = t.nextOffset;
    this.maxTimestampMs = t.maxTimestampMs;
    this.offsetOfMaxTimestamp = t.offsetOfMaxTimestamp;
    this.offsetIndex.relOffsets.length = t.offsetIndexLength;
    this.offsetIndex.positions.length = t.offsetIndexLength;
    this.timeIndex.timestamps.length = t.timeIndexLength;
    this.timeIndex.relOffsets.length = t.timeIndexLength;
    this.bytesSinceLastIndexEntry = t.bytesSinceLastIndexEntry;
    this.lastBatchPosition = t.lastBatchPosition;
    this.firstAppendWallMs = t.firstAppendWallMs;
    this.lastAppendWallMs = t.lastAppendWallMs;
  }

  private resetState(): void {
    this.sizeBytes = 0;
    this.nextOffset = this.baseOffset;
    this.maxTimestampMs = -1;
    this.offsetOfMaxTimestamp = -1;
    this.offsetIndex = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.bytesSinceLastIndexEntry = 0;
    this.lastBatchPosition = -1;
  }

  /**
   * Rebuilds all in-memory state by scanning the file from the start. With `checkCrc` every batch
   * is fully validated (size, magic, CRC, offset contiguity); the scan stops at the first bad one
   * and reports where valid data ends. The caller decides whether to truncate.
   *
   * With `contiguous`, every batch must start exactly at nextOffset (the first at the base
   * offset): true of every segment never compacted. baseOffset sits outside the CRC, so this is
   * what catches a damaged or replayed batch whose offset jumps ahead (which would otherwise be
   * taken for a compaction gap and move logEndOffset).
   */
  async rebuild(indexIntervalBytes: number, checkCrc: boolean, contiguous = false): Promise<SegmentRecovery> {
    this.resetState();
    const fileSizeBytes = await this.file.size();
    const reader = new ChunkedReader(
      this.file,
      fileSizeBytes,
      checkCrc ? RECOVERY_CHUNK_BYTES : SCAN_CHUNK_BYTES,
    );
    let pos = 0;
    let reason: string | null = null;
    while (pos < fileSizeBytes) {
      const head = await reader.get(pos, BATCH_HEADER_BYTES);
      if (!head) {
        reason = `torn batch header at position ${pos}`;
        break;
      }
      const batchLength = head.buf.readInt32BE(head.at + OFF_BATCH_LENGTH);
      const sizeBytes = BATCH_LOG_OVERHEAD + batchLength;
      if (
        batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD ||
        pos + sizeBytes > fileSizeBytes ||
        pos + sizeBytes > INT32_MAX
      ) {
        reason = `batch at position ${pos} claims ${sizeBytes} bytes, ${fileSizeBytes - pos} remain`;
        break;
      }
      const whole = checkCrc ? await reader.get(pos, sizeBytes) : head;
      if (!whole) {
        reason = `torn batch at position ${pos}`;
        break;
      }
      try {
        if (checkCrc) validateBatchAt(whole.buf, whole.at, whole.at + sizeBytes);
        else if (head.buf.readInt8(head.at + OFF_MAGIC) !== MAGIC_V2) throw new DecodeError('bad magic');
      } catch (err) {
        reason = `invalid batch at position ${pos}: ${(err as Error).message}`;
        break;
      }
      // `whole` may have re-read the chunk, which invalidates `head`'s view: parse from `whole`.
      const header = readBatchHeader(whole.buf, whole.at);
      // Compaction leaves gaps (removed records), so a batch may start past nextOffset, never before.
      if (header.baseOffset < this.nextOffset || (contiguous && header.baseOffset !== this.nextOffset)) {
        reason = `batch at position ${pos} has baseOffset ${header.baseOffset}, expected ${contiguous ? '' : 'at least '}${this.nextOffset}`;
        break;
      }
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      if (header.lastOffsetDelta < 0 || lastOffset - this.baseOffset > INT32_MAX) {
        reason = `batch at position ${pos} has out-of-range lastOffsetDelta ${header.lastOffsetDelta}`;
        break;
      }
      this.trackBatch(pos, sizeBytes, lastOffset, header.maxTimestamp, indexIntervalBytes);
      pos += sizeBytes;
    }
    return { validEndBytes: pos, reason };
  }

  /**
   * Loads a sealed segment's index files and checks they agree with the log: the last offset
   * entry must name the last batch and that batch must end exactly at end of file. Returns false
   * (state untouched) if anything is missing or off; the caller then rebuilds from the log.
   */
  async tryLoadIndexes(fs: LogFileSystem): Promise<boolean> {
    const fileSizeBytes = await this.file.size();
    if (fileSizeBytes === 0) return false;
    const idxBytes = await readWholeFile(fs, this.indexPath);
    const timeBytes = await readWholeFile(fs, this.timeIndexPath);
    if (!idxBytes || !timeBytes) return false;
    const offsetIndex = OffsetIndex.decode(idxBytes, fileSizeBytes, this.baseOffset);
    const timeIndex = TimeIndex.decode(timeBytes, fileSizeBytes, this.baseOffset);
    const lastEntry = offsetIndex?.last();
    const lastTime = timeIndex?.last();
    if (!offsetIndex || !timeIndex || !lastEntry || !lastTime) return false;
    const head = await this.file.read(lastEntry.position, BATCH_HEADER_BYTES);
    if (head.length < BATCH_HEADER_BYTES || head.readInt8(OFF_MAGIC) !== MAGIC_V2) return false;
    const header = readBatchHeader(head, 0);
    const lastOffset = header.baseOffset + header.lastOffsetDelta;
    if (lastOffset !== this.baseOffset + lastEntry.relOffset) return false;
    if (lastEntry.position + BATCH_LOG_OVERHEAD + header.batchLength !== fileSizeBytes) return false;
    if (lastTime.relOffset > lastEntry.relOffset) return false;
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    this.sizeBytes = fileSizeBytes;
    this.nextOffset = lastOffset + 1;
    this.lastBatchPosition = lastEntry.position;
    this.maxTimestampMs = lastTime.timestampMs;
    this.offsetOfMaxTimestamp = this.baseOffset + lastTime.relOffset;
    this.bytesSinceLastIndexEntry = 0;
    return true;
  }

  /**
   * Makes the segment's data durable and writes its index files (tmp + fsync + rename), ending
   * each index with an entry for the last batch so tryLoadIndexes can trust them on open.
   */
  async seal(fs: LogFileSystem): Promise<void> {
    await this.file.datasync();
    if (this.lastBatchPosition >= 0) {
      this.offsetIndex.append(this.nextOffset - 1 - this.baseOffset, this.lastBatchPosition);
      this.timeIndex.maybeAppend(this.maxTimestampMs, this.offsetOfMaxTimestamp - this.baseOffset);
    }
    await writeFileAtomic(fs, this.indexPath, this.offsetIndex.encode(this.baseOffset, this.sizeBytes));
    await writeFileAtomic(fs, this.timeIndexPath, this.timeIndex.encode(this.baseOffset, this.sizeBytes));
  }

  /** File position of the first batch whose last offset >= offset (sizeBytes if none). */
  async positionOf(offset: number): Promise<ScannedBatch | null> {
    const start = this.offsetIndex.lookup(offset - this.baseOffset);
    const reader = new ChunkedReader(this.file, this.sizeBytes, SCAN_CHUNK_BYTES);
    for await (const b of scanHeaders(reader, start, this.sizeBytes, this.logPath)) {
      if (b.header.baseOffset + b.header.lastOffsetDelta >= offset) return b;
    }
    return null;
  }

  /** Cuts the file at `position` (a batch boundary), makes that durable and rebuilds state. */
  async truncateToPosition(position: number, indexIntervalBytes: number): Promise<void> {
    await this.file.truncate(position);
    await this.file.datasync();
    await this.rebuild(indexIntervalBytes, false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  /** Closes and removes the log and index files (missing files are fine). */
  async deleteFiles(fs: LogFileSystem): Promise<void> {
    await this.close();
    for (const p of [this.logPath, this.indexPath, this.timeIndexPath]) await unlinkIfExists(fs, p);
  }
}

export async function unlinkIfExists(fs: LogFileSystem, p: string): Promise<void> {
  try {
    await fs.unlink(p);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export async function readWholeFile(fs: LogFileSystem, p: string): Promise<Buffer | null> {
  const st = await fs.stat(p);
  if (!st || st.isDirectory) return null;
  const f = await fs.open(p);
  try {
    const size = await f.size();
    return await f.read(0, size);
  } finally {
    await f.close();
  }
}

/**
 * Writes `data` to `p` so a crash leaves either the old or the new content: tmp, fsync, rename.
 * If any step fails (a full disk), `p` is untouched and the temp file is removed, so a failed
 * write neither corrupts the old content nor keeps holding the space it took.
 */
export async function writeFileAtomic(fs: LogFileSystem, p: string, data: Buffer): Promise<void> {
  const tmp = `${p}.tmp`;
  try {
    const f = await fs.open(tmp);
    try {
      await f.truncate(0);
      await f.append(data);
      await f.datasync();
    } finally {
      await f.close();
    }
    await fs.rename(tmp, p);
  } catch (err) {
    await unlinkIfExists(fs, tmp).catch(() => undefined);
    throw err;
  }
}
