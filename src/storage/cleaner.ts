/**
 * Log compaction (cleanup.policy=compact): Kafka's log cleaner for one PartitionLog.
 *
 * One pass, as Kafka's LogCleaner does it:
 * 1. The log is split at the cleaner checkpoint `firstDirtyOffset` into a clean head (already
 *    compacted: at most one record per key) and a dirty part. The dirty part that may be cleaned
 *    ends at the first segment that is active or holds records newer than min.compaction.lag.ms
 *    (`cleanableEnd`, always a segment boundary).
 * 2. A pass runs when dirtyBytes / (cleanBytes + dirtyBytes) >= min.cleanable.dirty.ratio, when the
 *    first dirty batch is older than max.compaction.lag.ms, when a tombstone's delete horizon has
 *    passed, or when forced.
 * 3. An offset map key -> latest offset is built from the dirty part. Then every sealed segment
 *    below cleanableEnd is rewritten, consecutive segments merged into groups of at most
 *    segment.bytes (by their old size). A record survives unless a later record of its key is in
 *    the map, it has a null key (invalid in a compacted topic, as Kafka drops it), or it is a
 *    tombstone in a batch whose delete horizon has passed.
 * 4. Rewritten batches keep baseOffset, lastOffsetDelta, producer fields, leader epoch, codec and
 *    timestamp type, and each record keeps its offsetDelta, so offsets never change. Unchanged
 *    batches are copied byte for byte; compressed batches are decompressed, filtered and
 *    recompressed with the same codec. Control batches are kept as they are. A batch left with no
 *    records is dropped, except the last batch of a group (so a segment's nextOffset, and with it
 *    the contiguity of segments, never changes) and the last batch of each producer id (so
 *    idempotent-producer state survives a restart); those become empty batches (header only, no
 *    compression), as Kafka writes them.
 * 5. Tombstones: the first time a batch holding tombstones is rewritten, it gets Kafka's delete
 *    horizon (attribute bit 6, baseTimestamp = now + delete.retention.ms, record timestamp deltas
 *    re-based on it). A later pass at or after that time drops its tombstones. The horizon lives in
 *    the batch, so it survives restarts.
 * 6. Swap: a group is written to `<base>.log.cleaned` and fsynced, then (under the log's mutex,
 *    after checking that the old segments are still there) renamed to `<base>.log.swap` — the
 *    commit point — and put in place of the old segments in the log's view; reads in flight finish
 *    on the old files before those are deleted; then `.swap` becomes `<base>.log` and the indexes
 *    are written. On open, `.cleaned` files are deleted and `.swap` files completed (see
 *    PartitionLog.recover), so a crash leaves either the old or the new segments.
 * 7. After every group is swapped the checkpoint `cleaner-offset.checkpoint` records the new
 *    firstDirtyOffset and the earliest delete horizon in the log (written atomically; if it is
 *    lost, the whole log counts as dirty, which is only slower).
 *
 * Correctness of the clean head: keys are unique in [logStart, firstDirty) after a pass, since
 * every key of the dirty part is in the map. Groups are swapped in offset order and the checkpoint
 * moves only after all of them, so after a crash the dirty part only grows.
 */

import * as path from 'node:path';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  type BatchHeader,
  COMPRESSION_MASK,
  CONTROL_FLAG,
  type Compression,
  DELETE_HORIZON_FLAG,
  MAGIC_V2,
  OFF_ATTRIBUTES,
  OFF_CRC,
  batchHeaderInternals,
  computeBatchCrc,
} from '../protocol/records/batch-header.js';
import {
  type KafkaRecord,
  TimestampType,
  decodeRecordBatch,
  encodeRecordBatch,
} from '../protocol/records/record-batch.js';
import { LogClosedError } from './errors.js';
import type { LogFileSystem } from './fs.js';
import {
  ChunkedReader,
  INT32_MAX,
  LogSegment,
  readWholeFile,
  scanHeaders,
  unlinkIfExists,
  writeFileAtomic,
} from './segment.js';

export const CLEANER_CHECKPOINT = 'cleaner-offset.checkpoint';
export const CLEANED_SUFFIX = '.cleaned';
export const SWAP_SUFFIX = '.swap';
const CHECKPOINT_VERSION = '0';
const SCAN_CHUNK_BYTES = 1 << 20;

/** The compaction settings of a log (Kafka's topic configs, in milliseconds and bytes). */
export interface CompactionConfig {
  /** cleanup.policy contains "compact". */
  compact: boolean;
  /** delete.retention.ms: how long tombstones stay readable after their batch was first cleaned. */
  deleteRetentionMs: number;
  /** min.compaction.lag.ms: records newer than this are never compacted. */
  minCompactionLagMs: number;
  /** max.compaction.lag.ms: dirty data older than this is compacted whatever the dirty ratio. */
  maxCompactionLagMs: number;
  /** min.cleanable.dirty.ratio in [0, 1]. */
  minCleanableDirtyRatio: number;
}

export interface CleanOptions {
  /** Clean even if no trigger (dirty ratio, max lag, delete horizon) says so. */
  force?: boolean;
}

export interface CleanResult {
  /** True when a pass ran (segments may still be unchanged if nothing was removable). */
  cleaned: boolean;
  /** Why no pass ran, or why it stopped early. */
  reason?:
    | 'not-compacted'
    | 'in-progress'
    | 'nothing-cleanable'
    | 'below-dirty-ratio'
    | 'log-changed'
    | 'closed';
  firstDirtyOffset: number;
  cleanableEndOffset: number;
  dirtyRatio: number;
  segmentsBefore: number;
  segmentsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  /** Records without a key (invalid in a compacted topic) that were dropped. */
  invalidRecordsRemoved: number;
}

export interface CleanerCheckpoint {
  firstDirtyOffset: number;
  /** Earliest delete horizon of any batch in the cleaned part, -1 if none. */
  minDeleteHorizonMs: number;
}

/** What the cleaner needs of a PartitionLog (built by PartitionLog, which owns the segments). */
export interface CleanerHost {
  readonly dir: string;
  readonly fs: LogFileSystem;
  config(): Readonly<CompactionConfig & { segmentBytes: number; indexIntervalBytes: number }>;
  segments(): readonly LogSegment[];
  logStartOffset(): number;
  isClosed(): boolean;
  warn(msg: string): void;
  /** Runs fn as a tracked read: segments it reads are not closed until it settles. */
  holdRead<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Under the log's mutex: if `old` are still consecutive sealed segments of the log, commits the
   * cleaned segment (file at `cleanedPath`) in their place and returns true; else false.
   */
  swap(old: readonly LogSegment[], cleaned: LogSegment, cleanedPath: string): Promise<boolean>;
}

export async function readCleanerCheckpoint(
  fs: LogFileSystem,
  dir: string,
): Promise<CleanerCheckpoint | null> {
  const bytes = await readWholeFile(fs, path.join(dir, CLEANER_CHECKPOINT));
  if (!bytes) return null;
  const lines = bytes.toString('utf8').split('\n');
  const first = lines[1] ?? '';
  const horizon = lines[2] ?? '';
  if (lines[0] !== CHECKPOINT_VERSION || !/^\d{1,16}$/.test(first) || !/^-?\d{1,16}$/.test(horizon))
    return null;
  return { firstDirtyOffset: Number(first), minDeleteHorizonMs: Number(horizon) };
}

export async function writeCleanerCheckpoint(
  fs: LogFileSystem,
  dir: string,
  cp: CleanerCheckpoint,
): Promise<void> {
  const text = `${CHECKPOINT_VERSION}\n${cp.firstDirtyOffset}\n${cp.minDeleteHorizonMs}\n`;
  await writeFileAtomic(fs, path.join(dir, CLEANER_CHECKPOINT), Buffer.from(text, 'utf8'));
  await fs.fsyncDir(dir);
}

/** True if the batch carries Kafka's delete horizon (then baseTimestamp is the horizon). */
export function deleteHorizonOf(h: BatchHeader): number | null {
  return (h.attributes & DELETE_HORIZON_FLAG) !== 0 ? h.baseTimestamp : null;
}

/** A v2 batch header with no records covering the same offsets and producer fields as `h`. */
export function emptyBatchLike(h: BatchHeader): Buffer {
  const { writeInt64 } = batchHeaderInternals;
  const buf = Buffer.alloc(BATCH_HEADER_BYTES);
  writeInt64(buf, 0, h.baseOffset);
  buf.writeInt32BE(BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD, 8);
  buf.writeInt32BE(h.partitionLeaderEpoch, 12);
  buf.writeInt8(MAGIC_V2, 16);
  buf.writeInt16BE(h.attributes & ~(COMPRESSION_MASK | DELETE_HORIZON_FLAG), OFF_ATTRIBUTES);
  buf.writeInt32BE(h.lastOffsetDelta, 23);
  writeInt64(buf, 27, h.maxTimestamp);
  writeInt64(buf, 35, h.maxTimestamp);
  writeInt64(buf, 43, h.producerId);
  buf.writeInt16BE(h.producerEpoch, 51);
  buf.writeInt32BE(h.baseSequence, 53);
  buf.writeInt32BE(0, 57);
  buf.writeUInt32BE(computeBatchCrc(buf, 0, BATCH_HEADER_BYTES), OFF_CRC);
  return buf;
}

interface Stats {
  recordsRemoved: number;
  tombstonesRemoved: number;
  invalidRecordsRemoved: number;
  minDeleteHorizonMs: number;
}

/** The cleaner of one log; PartitionLog.clean() delegates here. Passes never overlap. */
export class LogCleaner {
  private running = false;
  private checkpoint: CleanerCheckpoint | null = null;
  private checkpointLoaded = false;

  constructor(private readonly host: CleanerHost) {}

  async clean(nowMs: number, opts: CleanOptions = {}): Promise<CleanResult> {
    const base = this.emptyResult();
    if (!this.host.config().compact) return { ...base, reason: 'not-compacted' };
    if (this.running) return { ...base, reason: 'in-progress' };
    this.running = true;
    try {
      return await this.pass(nowMs, opts);
    } catch (err) {
      // The log was closed under a running pass (broker shutdown): nothing was committed.
      if (err instanceof LogClosedError) return { ...base, reason: 'closed' };
      throw err;
    } finally {
      this.running = false;
    }
  }

  private emptyResult(): CleanResult {
    const segs = this.host.segments();
    let bytes = 0;
    for (const s of segs) bytes += s.sizeBytes;
    return {
      cleaned: false,
      firstDirtyOffset: this.checkpoint?.firstDirtyOffset ?? this.host.logStartOffset(),
      cleanableEndOffset: -1,
      dirtyRatio: 0,
      segmentsBefore: segs.length,
      segmentsAfter: segs.length,
      bytesBefore: bytes,
      bytesAfter: bytes,
      recordsRemoved: 0,
      tombstonesRemoved: 0,
      invalidRecordsRemoved: 0,
    };
  }

  private async pass(nowMs: number, opts: CleanOptions): Promise<CleanResult> {
    const host = this.host;
    const cfg = host.config();
    if (!this.checkpointLoaded) {
      this.checkpoint = await readCleanerCheckpoint(host.fs, host.dir);
      this.checkpointLoaded = true;
    }
    const result = this.emptyResult();
    const segs = host.segments();
    const logStart = host.logStartOffset();
    const active = segs[segs.length - 1];
    if (!active) return { ...result, reason: 'closed' };
    const sealed = segs.slice(0, -1);
    let firstDirty = this.checkpoint?.firstDirtyOffset ?? logStart;
    if (firstDirty < logStart || firstDirty > active.baseOffset) firstDirty = logStart;
    result.firstDirtyOffset = firstDirty;

    // Cleanable end: the active segment, or the first dirty segment with records too new to compact.
    let cleanableEnd = active.baseOffset;
    for (const s of sealed) {
      if (s.nextOffset <= firstDirty) continue;
      if (cfg.minCompactionLagMs > 0 && s.retentionTimestampMs() > nowMs - cfg.minCompactionLagMs) {
        cleanableEnd = s.baseOffset;
        break;
      }
    }
    result.cleanableEndOffset = cleanableEnd;
    let cleanBytes = 0;
    let dirtyBytes = 0;
    for (const s of sealed) {
      if (s.nextOffset > cleanableEnd) break;
      if (s.nextOffset <= firstDirty) cleanBytes += s.sizeBytes;
      else dirtyBytes += s.sizeBytes;
    }
    const ratio = dirtyBytes + cleanBytes === 0 ? 0 : dirtyBytes / (dirtyBytes + cleanBytes);
    result.dirtyRatio = ratio;
    const toClean = sealed.filter((s) => s.nextOffset <= cleanableEnd && s.nextOffset > logStart);
    if (toClean.length === 0) return { ...result, reason: 'nothing-cleanable' };

    let due = opts.force === true || (dirtyBytes > 0 && ratio >= cfg.minCleanableDirtyRatio);
    const horizon = this.checkpoint?.minDeleteHorizonMs ?? -1;
    if (!due && horizon >= 0 && nowMs >= horizon) due = true;
    if (!due && dirtyBytes > 0 && cfg.maxCompactionLagMs < Number.MAX_SAFE_INTEGER) {
      const firstTs = await this.firstBatchTimestamp(toClean, firstDirty);
      if (firstTs >= 0 && nowMs - firstTs > cfg.maxCompactionLagMs) due = true;
    }
    if (!due) return { ...result, reason: dirtyBytes === 0 ? 'nothing-cleanable' : 'below-dirty-ratio' };

    const map = await this.buildOffsetMap(toClean, firstDirty, cleanableEnd);
    const lastOfProducer = await this.lastBatchPerProducer(toClean);
    const stats: Stats = {
      recordsRemoved: 0,
      tombstonesRemoved: 0,
      invalidRecordsRemoved: 0,
      minDeleteHorizonMs: -1,
    };
    for (const group of groupSegments(toClean, cfg.segmentBytes)) {
      if (host.isClosed()) return { ...this.finish(result, stats), reason: 'closed' };
      const ok = await this.cleanGroup(group, map, lastOfProducer, nowMs, stats);
      if (!ok) return { ...this.finish(result, stats), cleaned: true, reason: 'log-changed' };
    }
    let minDeleteHorizonMs = stats.minDeleteHorizonMs;
    if (firstDirty > cleanableEnd && this.checkpoint) {
      // Part of the clean head lies beyond this pass (min.compaction.lag.ms grew): keep its horizon.
      minDeleteHorizonMs = minHorizon(minDeleteHorizonMs, this.checkpoint.minDeleteHorizonMs);
    }
    const cp: CleanerCheckpoint = {
      firstDirtyOffset: Math.max(cleanableEnd, firstDirty),
      minDeleteHorizonMs,
    };
    if (!host.isClosed()) {
      await writeCleanerCheckpoint(host.fs, host.dir, cp);
      this.checkpoint = cp;
    }
    return { ...this.finish(result, stats), cleaned: true };
  }

  private finish(result: CleanResult, stats: Stats): CleanResult {
    const segs = this.host.segments();
    let bytes = 0;
    for (const s of segs) bytes += s.sizeBytes;
    return {
      ...result,
      segmentsAfter: segs.length,
      bytesAfter: bytes,
      recordsRemoved: stats.recordsRemoved,
      tombstonesRemoved: stats.tombstonesRemoved,
      invalidRecordsRemoved: stats.invalidRecordsRemoved,
    };
  }

  /** maxTimestamp of the first batch at or after `offset` (Kafka's first-batch timestamp), -1 if none. */
  private firstBatchTimestamp(segs: readonly LogSegment[], offset: number): Promise<number> {
    return this.host.holdRead(async () => {
      for (const seg of segs) {
        if (seg.nextOffset <= offset || seg.isEmpty) continue;
        const b = await seg.positionOf(offset);
        if (b) return b.header.maxTimestamp;
      }
      return -1;
    });
  }

  /** key (latin1 of its bytes) -> latest offset, over records in [from, to). */
  private buildOffsetMap(
    segs: readonly LogSegment[],
    from: number,
    to: number,
  ): Promise<Map<string, number>> {
    return this.host.holdRead(async () => {
      const map = new Map<string, number>();
      for (const seg of segs) {
        if (seg.nextOffset <= from || seg.baseOffset >= to) continue;
        for await (const { header, bytes } of wholeBatches(seg)) {
          if ((header.attributes & CONTROL_FLAG) !== 0) continue;
          if (header.baseOffset + header.lastOffsetDelta < from) continue;
          const batch = await decodeRecordBatch(bytes);
          for (const r of batch.records) {
            if (r.key !== null && r.offset >= from && r.offset < to)
              map.set(r.key.toString('latin1'), r.offset);
          }
        }
      }
      return map;
    });
  }

  /** producerId -> baseOffset of its last batch among `segs`. */
  private lastBatchPerProducer(segs: readonly LogSegment[]): Promise<Map<number, number>> {
    return this.host.holdRead(async () => {
      const last = new Map<number, number>();
      for (const seg of segs) {
        const reader = new ChunkedReader(seg.file, seg.sizeBytes, SCAN_CHUNK_BYTES);
        for await (const b of scanHeaders(reader, 0, seg.sizeBytes, seg.logPath)) {
          if (b.header.producerId >= 0) last.set(b.header.producerId, b.header.baseOffset);
        }
      }
      return last;
    });
  }

  /** Writes the cleaned image of `group` and swaps it in; false if the log changed meanwhile. */
  private async cleanGroup(
    group: readonly LogSegment[],
    map: Map<string, number>,
    lastOfProducer: Map<number, number>,
    nowMs: number,
    stats: Stats,
  ): Promise<boolean> {
    const host = this.host;
    const cfg = host.config();
    const first = group[0]!;
    const groupEnd = group[group.length - 1]!.nextOffset;
    const cleanedPath = path.join(host.dir, `${path.basename(first.logPath)}${CLEANED_SUFFIX}`);
    await unlinkIfExists(host.fs, cleanedPath);
    const cleaned = await LogSegment.openAt(host.fs, host.dir, first.baseOffset, cleanedPath);
    const discard = async () => {
      await cleaned.close();
      await unlinkIfExists(host.fs, cleanedPath);
    };
    let changed = group.length > 1;
    const groupStats: Stats = {
      recordsRemoved: 0,
      tombstonesRemoved: 0,
      invalidRecordsRemoved: 0,
      minDeleteHorizonMs: -1,
    };
    try {
      changed = await host.holdRead(async () => {
        let anyChange = changed;
        for (const seg of group) {
          for await (const { header, bytes } of wholeBatches(seg)) {
            if (host.isClosed()) throw new CleanerAborted();
            const isLast = header.baseOffset + header.lastOffsetDelta === groupEnd - 1;
            const isProducerLast =
              header.producerId >= 0 && lastOfProducer.get(header.producerId) === header.baseOffset;
            const out = await filterBatch(
              header,
              bytes,
              map,
              nowMs,
              cfg.deleteRetentionMs,
              isLast || isProducerLast,
              groupStats,
            );
            if (out !== bytes) anyChange = true;
            if (out === null) continue;
            const pos = cleaned.sizeBytes;
            await cleaned.file.append(out);
            const h = out === bytes ? header : readHeader(out);
            cleaned.trackBatch(
              pos,
              out.length,
              h.baseOffset + h.lastOffsetDelta,
              h.maxTimestamp,
              cfg.indexIntervalBytes,
            );
            const horizon = deleteHorizonOf(h);
            if (horizon !== null)
              groupStats.minDeleteHorizonMs = minHorizon(groupStats.minDeleteHorizonMs, horizon);
          }
        }
        return anyChange;
      });
    } catch (err) {
      await discard();
      if (err instanceof CleanerAborted) return true;
      throw err;
    }
    let lastAppendWallMs = 0;
    for (const s of group) lastAppendWallMs = Math.max(lastAppendWallMs, s.lastAppendWallMs);
    cleaned.lastAppendWallMs = lastAppendWallMs;
    if (!changed) {
      await discard();
      stats.minDeleteHorizonMs = minHorizon(stats.minDeleteHorizonMs, groupStats.minDeleteHorizonMs);
      return true;
    }
    if (cleaned.nextOffset !== groupEnd && !(cleaned.isEmpty && first.isEmpty)) {
      await discard();
      throw new Error(
        `cleaner: cleaned segment ${first.baseOffset} ends at ${cleaned.nextOffset}, expected ${groupEnd}`,
      );
    }
    await cleaned.file.datasync();
    const swapped = await host.swap(group, cleaned, cleanedPath);
    if (!swapped) {
      await discard();
      return false;
    }
    stats.recordsRemoved += groupStats.recordsRemoved;
    stats.tombstonesRemoved += groupStats.tombstonesRemoved;
    stats.invalidRecordsRemoved += groupStats.invalidRecordsRemoved;
    stats.minDeleteHorizonMs = minHorizon(stats.minDeleteHorizonMs, groupStats.minDeleteHorizonMs);
    return true;
  }
}

class CleanerAborted extends Error {}

function minHorizon(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}

function readHeader(buf: Buffer): BatchHeader {
  return {
    baseOffset: batchHeaderInternals.readInt64(buf, 0),
    batchLength: buf.readInt32BE(8),
    partitionLeaderEpoch: buf.readInt32BE(12),
    magic: buf.readInt8(16),
    crc: buf.readUInt32BE(17),
    attributes: buf.readInt16BE(21),
    lastOffsetDelta: buf.readInt32BE(23),
    baseTimestamp: batchHeaderInternals.readInt64(buf, 27),
    maxTimestamp: batchHeaderInternals.readInt64(buf, 35),
    producerId: batchHeaderInternals.readInt64(buf, 43),
    producerEpoch: buf.readInt16BE(51),
    baseSequence: buf.readInt32BE(53),
    recordsCount: buf.readInt32BE(57),
  };
}

/** Each batch of a sealed segment with its bytes (a copy-free view where possible). */
async function* wholeBatches(seg: LogSegment): AsyncGenerator<{ header: BatchHeader; bytes: Buffer }> {
  const end = seg.sizeBytes;
  const reader = new ChunkedReader(seg.file, end, SCAN_CHUNK_BYTES);
  for await (const b of scanHeaders(reader, 0, end, seg.logPath)) {
    const got = await reader.get(b.position, b.sizeBytes);
    if (!got) throw new Error(`${seg.logPath} shrank while being cleaned`);
    yield { header: b.header, bytes: got.buf.subarray(got.at, got.at + b.sizeBytes) };
  }
}

/**
 * The cleaned form of one batch: `bytes` itself when nothing changes, a rewritten batch, an empty
 * batch (when `keepHeader` and no record survives) or null (drop it).
 */
async function filterBatch(
  header: BatchHeader,
  bytes: Buffer,
  map: Map<string, number>,
  nowMs: number,
  deleteRetentionMs: number,
  keepHeader: boolean,
  stats: Stats,
): Promise<Buffer | null> {
  if ((header.attributes & CONTROL_FLAG) !== 0) return bytes;
  if (header.recordsCount === 0) return keepHeader ? bytes : null;
  const batch = await decodeRecordBatch(bytes);
  const horizon = deleteHorizonOf(header);
  const retainDeletes = horizon === null || nowMs < horizon;
  const kept: KafkaRecord[] = [];
  let keptTombstone = false;
  for (const r of batch.records) {
    if (r.key === null) {
      stats.invalidRecordsRemoved++;
      stats.recordsRemoved++;
      continue;
    }
    const latest = map.get(r.key.toString('latin1'));
    if (latest !== undefined && r.offset < latest) {
      stats.recordsRemoved++;
      continue;
    }
    if (r.value === null) {
      if (!retainDeletes) {
        stats.tombstonesRemoved++;
        stats.recordsRemoved++;
        continue;
      }
      keptTombstone = true;
    }
    kept.push(r);
  }
  // A batch that keeps tombstones carries a horizon: its old one, or now + delete.retention.ms.
  const newHorizon = keptTombstone ? (horizon ?? nowMs + deleteRetentionMs) : null;
  if (kept.length === batch.records.length && newHorizon === horizon) return bytes;
  if (kept.length === 0) return keepHeader ? emptyBatchLike(header) : null;
  const logAppendTime = batch.timestampType === TimestampType.LogAppendTime;
  const out = await encodeRecordBatch({
    records: kept.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      attributes: r.attributes,
      offsetDelta: r.offsetDelta,
      // The create time as written (LogAppendTime batches report maxTimestamp when decoded).
      timestamp: header.baseTimestamp + r.timestampDelta,
    })),
    baseOffset: header.baseOffset,
    baseTimestamp: newHorizon ?? header.baseTimestamp,
    ...(logAppendTime
      ? { maxTimestamp: header.maxTimestamp, timestampType: TimestampType.LogAppendTime }
      : {}),
    lastOffsetDelta: header.lastOffsetDelta,
    compression: (header.attributes & COMPRESSION_MASK) as Compression,
    producerId: header.producerId,
    producerEpoch: header.producerEpoch,
    baseSequence: header.baseSequence,
    isTransactional: batch.isTransactional,
    partitionLeaderEpoch: header.partitionLeaderEpoch,
  });
  if (newHorizon !== null) {
    out.writeInt16BE(out.readInt16BE(OFF_ATTRIBUTES) | DELETE_HORIZON_FLAG, OFF_ATTRIBUTES);
    out.writeUInt32BE(computeBatchCrc(out, 0, out.length), OFF_CRC);
  }
  return out;
}

/**
 * Consecutive segments merged while their total (old) size stays within maxBytes and their offsets
 * fit a segment's int32 relative offsets; every segment is in exactly one group.
 */
export function groupSegments(segs: readonly LogSegment[], maxBytes: number): LogSegment[][] {
  const groups: LogSegment[][] = [];
  let cur: LogSegment[] = [];
  let curBytes = 0;
  for (const s of segs) {
    const head = cur[0];
    if (head && (curBytes + s.sizeBytes > maxBytes || s.nextOffset - 1 - head.baseOffset > INT32_MAX)) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(s);
    curBytes += s.sizeBytes;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}
