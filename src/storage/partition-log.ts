/**
 * PartitionLog: one partition's append-only log of v2 record batches, split into segments in one
 * directory (Kafka's on-disk layout: `<20-digit base offset>.log|.index|.timeindex` plus a
 * logStartOffset checkpoint).
 *
 * Invariants:
 * - Offsets are contiguous: segment i+1 starts at segment i's nextOffset; the last (active)
 *   segment's nextOffset is logEndOffset. Only the active segment is ever appended to.
 * - Mutations (append, roll, truncate, retention, deleteRecords, close) run one at a time through a
 *   promise-chain mutex, so offsets are assigned in file order.
 * - Reads never take the mutex. They bound every scan by a segment's committed size, and any
 *   operation that closes or shrinks a file first waits for reads already in flight.
 * - Every offset < flushedOffset is durable: flush() fdatasyncs dirty segments, and rolling a
 *   segment syncs it before the next one is created, so after a crash only the active segment can
 *   have a torn tail. open() validates that tail batch by batch (CRC included) and cuts it.
 * - logStartOffset >= first segment's base offset and <= logEndOffset; it is checkpointed before
 *   the segments below it are unlinked.
 * - An append is all or nothing: a failed write (a full disk: ENOSPC, EDQUOT; or EIO) undoes it in
 *   memory at once and on disk as soon as the disk lets it (see append), so the log, its indexes
 *   and its files are as before, and the next append takes the same offset.
 *
 * append() patches baseOffset (and optionally partitionLeaderEpoch) in the caller's buffer in
 * place: both fields sit outside the CRC, so the batch stays valid and no copy is needed.
 */

import * as path from 'node:path';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  type BatchHeader,
  MAGIC_V2,
  OFF_BATCH_LENGTH,
  OFF_LAST_OFFSET_DELTA,
  OFF_MAGIC,
  OFF_MAX_TIMESTAMP,
  batchHeaderInternals,
  patchBaseOffset,
  patchLeaderEpoch,
} from '../protocol/records/batch-header.js';
import { readLogStartCheckpoint, writeLogStartCheckpoint } from './checkpoint.js';
import { CLEANED_SUFFIX, type CleanOptions, type CleanResult, LogCleaner, SWAP_SUFFIX } from './cleaner.js';
import { type Clock, systemClock } from './clock.js';
import {
  InvalidConfigError,
  InvalidRecordBatchError,
  LogClosedError,
  OffsetOutOfRangeError,
  RecordBatchTooLargeError,
  StorageIoError,
} from './errors.js';
import { type LogFileSystem, NodeFileSystem } from './fs.js';
import { type ReadBufferPool, fetchReadBuffers } from './read-buffer-pool.js';
import { readSegmentRange } from './segment-read.js';
import {
  ChunkedReader,
  INT32_MAX,
  LogSegment,
  type SegmentTail,
  scanHeaders,
  segmentFileName,
  unlinkIfExists,
} from './segment.js';
import { TailCache, type TailCacheBudget, defaultTailCacheBudget } from './tail-cache.js';

export interface LogConfig {
  /** Roll when the active segment would exceed this many bytes (max 2^31-1: positions are int32). */
  segmentBytes: number;
  /** Roll when the active segment's first append is older than this. */
  segmentMs: number;
  /** Delete sealed segments whose newest timestamp is older than this; -1 = keep forever. */
  retentionMs: number;
  /** Delete oldest sealed segments while the log stays >= this size without them; -1 = unlimited. */
  retentionBytes: number;
  /** Bytes of batches between sparse index entries. */
  indexIntervalBytes: number;
  /** cleanup.policy contains "delete": applyRetention enforces retentionMs/retentionBytes. */
  cleanupDelete: boolean;
  /** cleanup.policy contains "compact": clean() compacts the log (see cleaner.ts). */
  compact: boolean;
  /** delete.retention.ms: tombstones stay this long after their batch was first cleaned. */
  deleteRetentionMs: number;
  /** min.compaction.lag.ms */
  minCompactionLagMs: number;
  /** max.compaction.lag.ms (values beyond 2^53 mean never). */
  maxCompactionLagMs: number;
  /** min.cleanable.dirty.ratio */
  minCleanableDirtyRatio: number;
}

export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = Object.freeze({
  segmentBytes: 1073741824,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  retentionMs: 604800000,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
  cleanupDelete: true,
  compact: false,
  deleteRetentionMs: 86400000,
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
  minCleanableDirtyRatio: 0.5,
});

export interface StorageLogger {
  warn(msg: string): void;
}

export interface PartitionLogDeps {
  fs?: LogFileSystem;
  clock?: Clock;
  logger?: StorageLogger;
  /**
   * Where read() leases its large read buffers (default: the broker-wide fetchReadBuffers, which
   * the network layer releases after writing them); null allocates a fresh buffer per read.
   */
  readPool?: ReadBufferPool | null;
  /**
   * The memory budget of the in-memory copy of the newest batches that serves reads at the log
   * end (default: the process-wide defaultTailCacheBudget); null keeps no such copy.
   */
  tailCache?: TailCacheBudget | null;
}

export interface AppendOptions {
  /** Stamped into every batch's partitionLeaderEpoch when given. */
  leaderEpoch?: number;
  /** Reported back as logAppendTimeMs when given; batches themselves are never rewritten. */
  logAppendTimeMs?: number;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  logAppendTimeMs: number;
  /** Position of the first appended batch in its segment file. */
  firstBatchPosition: number;
}

export interface ReadOptions {
  /** Return one whole batch even if it exceeds maxBytes (default true). */
  minOneBatch?: boolean;
  /** Exclusive bound: batches with baseOffset >= maxOffset are not returned (e.g. high watermark). */
  maxOffset?: number;
}

export interface ReadResult {
  /** Whole batches, the first one containing the requested offset. */
  records: Buffer;
  /** Offset after the last returned batch (the requested offset if nothing was returned). */
  nextOffset: number;
}

export interface BatchHeaderEntry {
  header: BatchHeader;
  position: number;
  segmentBaseOffset: number;
}

export interface RecoveryResult {
  /** Bytes cut from torn or corrupt segment tails. */
  recoveredBytesTruncated: number;
  /** Segments whose state was rebuilt by scanning the log (active segment always counts). */
  segmentsScanned: number;
  /** Segments dropped because they followed a corrupt point or a gap. */
  segmentsDropped: number;
}

const EMPTY = Buffer.alloc(0);

function validateConfig(cfg: LogConfig): LogConfig {
  const isInt = (v: number) => Number.isSafeInteger(v);
  if (!isInt(cfg.segmentBytes) || cfg.segmentBytes < BATCH_HEADER_BYTES || cfg.segmentBytes > INT32_MAX) {
    throw new InvalidConfigError(
      `segmentBytes ${cfg.segmentBytes} must be in [${BATCH_HEADER_BYTES}, ${INT32_MAX}]`,
    );
  }
  if (!isInt(cfg.segmentMs) || cfg.segmentMs < 1)
    throw new InvalidConfigError(`segmentMs ${cfg.segmentMs} must be >= 1`);
  if (!isInt(cfg.retentionMs) || cfg.retentionMs < -1)
    throw new InvalidConfigError(`retentionMs ${cfg.retentionMs} must be >= -1`);
  if (!isInt(cfg.retentionBytes) || cfg.retentionBytes < -1) {
    throw new InvalidConfigError(`retentionBytes ${cfg.retentionBytes} must be >= -1`);
  }
  if (!isInt(cfg.indexIntervalBytes) || cfg.indexIntervalBytes < 0) {
    throw new InvalidConfigError(`indexIntervalBytes ${cfg.indexIntervalBytes} must be >= 0`);
  }
  for (const k of ['deleteRetentionMs', 'minCompactionLagMs', 'maxCompactionLagMs'] as const) {
    if (!isInt(cfg[k]) || cfg[k] < 0) throw new InvalidConfigError(`${k} ${cfg[k]} must be >= 0`);
  }
  const ratio = cfg.minCleanableDirtyRatio;
  if (!(ratio >= 0 && ratio <= 1))
    throw new InvalidConfigError(`minCleanableDirtyRatio ${ratio} must be in [0, 1]`);
  return cfg;
}

/** Index of the last segment with baseOffset <= offset (0 if offset precedes them all). */
function floorSegmentIndex(segments: readonly LogSegment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

interface AppendUndo {
  segments: readonly LogSegment[];
  active: LogSegment;
  tail: SegmentTail;
  wasDirty: boolean;
}

interface BatchSpan {
  at: number;
  sizeBytes: number;
  lastOffsetDelta: number;
  maxTimestampMs: number;
}

export class PartitionLog {
  readonly dir: string;
  private cfg: LogConfig;
  private readonly fs: LogFileSystem;
  private readonly clock: Clock;
  private readonly logger: StorageLogger;

  /** Oldest first; replaced (never mutated) so readers can hold a snapshot. */
  private segments: readonly LogSegment[] = [];
  private logStartOffsetValue = 0;
  private flushedOffsetValue = 0;
  private closed = false;

  private lockTail: Promise<void> = Promise.resolve();
  private readonly inflightReads = new Set<Promise<unknown>>();
  /** Set while truncateTo rewrites the active segment in place; new reads wait for it. */
  private readBarrier: Promise<void> | null = null;

  /** Segments with bytes written since their last fdatasync. */
  private readonly dirty = new Set<LogSegment>();
  private syncInFlight: Promise<void> | null = null;
  private nextSync: Promise<void> | null = null;

  private cleaner: LogCleaner | null = null;
  /** The newest batches, for reads at the log end (see tail-cache.ts for what keeps it right). */
  private readonly tail: TailCache | null;

  /**
   * The base offset of the append in progress (null when none). Until it completes, logEndOffset
   * stays there and reads stop there, so batches of an append that later fails (one that spans a
   * roll writes in several steps) are never seen, not even briefly.
   */
  private appendingFrom: number | null = null;
  /** Files still to be cut back after an undone append (see undoAppend and repairTail). */
  private tailRepair: { orphans: LogSegment[]; unsealActive: boolean; pending: boolean } = {
    orphans: [],
    unsealActive: false,
    pending: false,
  };

  private recoveryResult: RecoveryResult = {
    recoveredBytesTruncated: 0,
    segmentsScanned: 0,
    segmentsDropped: 0,
  };

  private constructor(
    dir: string,
    cfg: LogConfig,
    fs: LogFileSystem,
    clock: Clock,
    logger: StorageLogger,
    private readonly readPool: ReadBufferPool | null,
    tailBudget: TailCacheBudget | null,
  ) {
    this.tail = tailBudget ? new TailCache(tailBudget) : null;
    this.dir = dir;
    this.cfg = cfg;
    this.fs = fs;
    this.clock = clock;
    this.logger = logger;
  }

  /** Opens (creating if needed) the log in `dir`, recovering from an unclean shutdown. */
  static async open(
    dir: string,
    config: Partial<LogConfig> = {},
    deps: PartitionLogDeps = {},
  ): Promise<PartitionLog> {
    const cfg = validateConfig({ ...DEFAULT_LOG_CONFIG, ...config });
    const log = new PartitionLog(
      dir,
      cfg,
      deps.fs ?? new NodeFileSystem(),
      deps.clock ?? systemClock,
      deps.logger ?? { warn: (msg) => console.warn(msg) },
      deps.readPool === undefined ? fetchReadBuffers : deps.readPool,
      deps.tailCache === undefined ? defaultTailCacheBudget : deps.tailCache,
    );
    await log.recover();
    return log;
  }

  // ---- getters -------------------------------------------------------------------------------

  get config(): Readonly<LogConfig> {
    return this.cfg;
  }
  get logStartOffset(): number {
    return this.logStartOffsetValue;
  }
  /** The end of what readers may see: an append in progress counts only once it is complete. */
  get logEndOffset(): number {
    return this.appendingFrom ?? this.active.nextOffset;
  }
  get activeSegmentBaseOffset(): number {
    return this.active.baseOffset;
  }
  get flushedOffset(): number {
    return this.flushedOffsetValue;
  }
  get sizeBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.sizeBytes;
    return total;
  }
  /** Largest batch maxTimestamp in the log (-1 if empty). */
  get maxTimestamp(): number {
    let max = -1;
    for (const s of this.segments) if (s.sizeBytes > 0 && s.maxTimestampMs > max) max = s.maxTimestampMs;
    return max;
  }
  get segmentCount(): number {
    return this.segments.length;
  }
  get segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }
  get recovery(): Readonly<RecoveryResult> {
    return this.recoveryResult;
  }
  get recoveredBytesTruncated(): number {
    return this.recoveryResult.recoveredBytesTruncated;
  }

  private get active(): LogSegment {
    const seg = this.segments[this.segments.length - 1];
    if (!seg) throw new LogClosedError(this.dir);
    return seg;
  }

  // ---- concurrency helpers --------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.lockTail.then(() => fn());
    this.lockTail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private assertOpen(): void {
    if (this.closed) throw new LogClosedError(this.dir);
  }

  private async trackRead<T>(fn: () => Promise<T>): Promise<T> {
    // Re-check after every wait: a truncation may have started while we were suspended.
    while (this.readBarrier) await this.readBarrier;
    this.assertOpen();
    const p = fn();
    this.inflightReads.add(p);
    try {
      return await p;
    } finally {
      this.inflightReads.delete(p);
    }
  }

  /** Waits for reads and syncs that may still hold segments the caller is about to close. */
  private async quiesce(): Promise<void> {
    const pending: Promise<unknown>[] = [...this.inflightReads];
    if (this.syncInFlight) pending.push(this.syncInFlight);
    if (this.nextSync) pending.push(this.nextSync);
    await Promise.allSettled(pending);
  }

  // ---- recovery -------------------------------------------------------------------------------

  private async recover(): Promise<void> {
    const { fs, dir } = this;
    const warn = (msg: string) => this.logger.warn(`[storage ${dir}] ${msg}`);
    await fs.mkdir(dir);
    let names = await fs.readdir(dir);
    if (await this.recoverCleanerFiles(names, warn)) names = await fs.readdir(dir);
    const bases: number[] = [];
    for (const name of names) {
      if (name.endsWith('.tmp')) await unlinkIfExists(fs, path.join(dir, name));
      const m = /^(\d{20})\.log$/.exec(name);
      if (m) bases.push(Number(m[1]));
    }
    bases.sort((a, b) => a - b);
    const baseSet = new Set(bases);
    for (const name of names) {
      const m = /^(\d{20})\.(index|timeindex)$/.exec(name);
      if (m && !baseSet.has(Number(m[1]))) await unlinkIfExists(fs, path.join(dir, name));
    }
    const checkpoint = await readLogStartCheckpoint(fs, dir, warn);

    const result: RecoveryResult = { recoveredBytesTruncated: 0, segmentsScanned: 0, segmentsDropped: 0 };
    const segs: LogSegment[] = [];
    const dropFrom = async (i: number): Promise<void> => {
      for (const base of bases.slice(i)) {
        for (const suffix of ['.log', '.index', '.timeindex'] as const) {
          await unlinkIfExists(fs, path.join(dir, segmentFileName(base, suffix)));
        }
        result.segmentsDropped++;
      }
    };
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const prev = segs[segs.length - 1];
      if (prev && prev.nextOffset !== base) {
        warn(
          `segment ${base} does not follow the previous one (which ends at ${prev.nextOffset}); dropping it and later segments`,
        );
        await dropFrom(i);
        break;
      }
      const seg = await LogSegment.open(fs, dir, base);
      const isLast = i === bases.length - 1;
      if (!isLast && (await seg.tryLoadIndexes(fs))) {
        segs.push(seg);
        continue;
      }
      const fileSizeBytes = await seg.file.size();
      // The active segment of a log that is not compacted has no offset gaps (the cleaner only
      // rewrites sealed segments), so there a batch must follow the previous one exactly.
      const r = await seg.rebuild(this.cfg.indexIntervalBytes, true, isLast && !this.cfg.compact);
      result.segmentsScanned++;
      segs.push(seg);
      if (r.reason !== null) {
        const cut = fileSizeBytes - r.validEndBytes;
        warn(
          `truncating ${seg.logPath} from ${fileSizeBytes} to ${r.validEndBytes} bytes (${cut} cut): ${r.reason}`,
        );
        await seg.file.truncate(r.validEndBytes);
        await seg.file.datasync();
        result.recoveredBytesTruncated += cut;
        if (!isLast) {
          // Everything after a corrupt point is unreachable by contiguous offsets.
          await dropFrom(i + 1);
          break;
        }
      } else if (!isLast) {
        await seg.seal(fs);
      }
    }
    if (segs.length === 0) {
      segs.push(await LogSegment.open(fs, dir, checkpoint ?? 0));
    }
    const openedMs = this.clock.nowMs();
    for (const seg of segs) seg.lastAppendWallMs = openedMs;
    this.segments = segs;
    this.recoveryResult = result;

    const firstBase = segs[0]!.baseOffset;
    this.logStartOffsetValue = Math.max(checkpoint ?? firstBase, firstBase);
    if (this.logStartOffsetValue > this.logEndOffset) {
      // Records up to the checkpoint were deleted on purpose, but the data after it was lost:
      // restart the log at the checkpoint so offsets never go backwards.
      warn(
        `log start offset ${this.logStartOffsetValue} is beyond the recovered end ${this.logEndOffset}; restarting the log there`,
      );
      await this.truncateFullyAndStartAt(this.logStartOffsetValue);
    } else {
      await this.deleteSegmentsBelow(this.logStartOffsetValue);
    }
    // The last kept segment is active and is always rebuilt by scanning on open; index files left
    // from when it was sealed (before a truncation) would only mislead.
    const active = this.active;
    await unlinkIfExists(fs, active.indexPath);
    await unlinkIfExists(fs, active.timeIndexPath);
    active.firstAppendWallMs = active.isEmpty ? null : this.clock.nowMs();
    // What survived recovery may still sit only in the page cache of a crashed process.
    await active.file.datasync();
    await fs.fsyncDir(dir);
    this.flushedOffsetValue = this.logEndOffset;
    if (checkpoint !== this.logStartOffsetValue)
      await writeLogStartCheckpoint(fs, dir, this.logStartOffsetValue);
  }

  /**
   * Finishes or undoes a compaction interrupted by a crash (see cleaner.ts): `.cleaned` files were
   * never committed and are deleted; a `<base>.log.swap` file was committed, so the old segments
   * it replaces (those starting in [base, its end)) are deleted and it becomes `<base>.log`.
   * Returns true if it changed the directory.
   */
  private async recoverCleanerFiles(names: string[], warn: (msg: string) => void): Promise<boolean> {
    const { fs, dir } = this;
    let changed = false;
    for (const name of names) {
      if (name.endsWith(CLEANED_SUFFIX)) {
        await unlinkIfExists(fs, path.join(dir, name));
        changed = true;
      }
    }
    for (const name of names) {
      const m = /^(\d{20})\.log\.swap$/.exec(name);
      if (!m) continue;
      changed = true;
      const base = Number(m[1]);
      const swapPath = path.join(dir, name);
      const f = await fs.open(swapPath);
      let end = base;
      let valid = true;
      try {
        const size = await f.size();
        const reader = new ChunkedReader(f, size, 1 << 20);
        for await (const b of scanHeaders(reader, 0, size, swapPath)) {
          end = b.header.baseOffset + b.header.lastOffsetDelta + 1;
        }
      } catch (err) {
        valid = false;
        warn(`discarding unreadable cleaned segment ${swapPath}: ${(err as Error).message}`);
      } finally {
        await f.close();
      }
      if (!valid) {
        await unlinkIfExists(fs, swapPath);
        continue;
      }
      for (const other of names) {
        const o = /^(\d{20})\.log$/.exec(other);
        const ob = o ? Number(o[1]) : -1;
        if (ob >= base && ob < Math.max(end, base + 1)) {
          for (const suffix of ['.log', '.index', '.timeindex'] as const) {
            await unlinkIfExists(fs, path.join(dir, segmentFileName(ob, suffix)));
          }
        }
      }
      await unlinkIfExists(fs, path.join(dir, segmentFileName(base, '.index')));
      await unlinkIfExists(fs, path.join(dir, segmentFileName(base, '.timeindex')));
      await fs.rename(swapPath, path.join(dir, segmentFileName(base, '.log')));
      warn(`completed an interrupted compaction of the segments from offset ${base} to ${end}`);
    }
    if (changed) await fs.fsyncDir(dir);
    return changed;
  }

  // ---- append ---------------------------------------------------------------------------------

  /** Splits `batches` into batch spans, checking sizes and magic (the caller validated CRCs). */
  private parseBatches(batches: Buffer): BatchSpan[] {
    const spans: BatchSpan[] = [];
    let at = 0;
    while (at < batches.length) {
      if (batches.length - at < BATCH_HEADER_BYTES) {
        throw new InvalidRecordBatchError(`truncated batch header at byte ${at} of ${batches.length}`);
      }
      const batchLength = batches.readInt32BE(at + OFF_BATCH_LENGTH);
      const sizeBytes = BATCH_LOG_OVERHEAD + batchLength;
      if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || at + sizeBytes > batches.length) {
        throw new InvalidRecordBatchError(`batch at byte ${at} has bad length ${batchLength}`);
      }
      const magic = batches.readInt8(at + OFF_MAGIC);
      if (magic !== MAGIC_V2) throw new InvalidRecordBatchError(`batch at byte ${at} has magic ${magic}`);
      const lastOffsetDelta = batches.readInt32BE(at + OFF_LAST_OFFSET_DELTA);
      if (lastOffsetDelta < 0)
        throw new InvalidRecordBatchError(`batch at byte ${at} has lastOffsetDelta ${lastOffsetDelta}`);
      if (sizeBytes > this.cfg.segmentBytes) {
        throw new RecordBatchTooLargeError(
          `batch of ${sizeBytes} bytes exceeds segmentBytes ${this.cfg.segmentBytes}`,
        );
      }
      const maxTimestampMs = batchHeaderInternals.readInt64(batches, at + OFF_MAX_TIMESTAMP);
      spans.push({ at, sizeBytes, lastOffsetDelta, maxTimestampMs });
      at += sizeBytes;
    }
    if (spans.length === 0) throw new InvalidRecordBatchError('append of zero batches');
    return spans;
  }

  private shouldRoll(
    seg: LogSegment,
    pendingBytes: number,
    span: BatchSpan,
    firstOffset: number,
    nowMs: number,
  ): boolean {
    if (seg.isEmpty && pendingBytes === 0) return false;
    if (seg.sizeBytes + pendingBytes + span.sizeBytes > this.cfg.segmentBytes) return true;
    if (firstOffset + span.lastOffsetDelta - seg.baseOffset > INT32_MAX) return true;
    return seg.firstAppendWallMs !== null && nowMs - seg.firstAppendWallMs > this.cfg.segmentMs;
  }

  /**
   * Appends whole v2 batches, assigning offsets from logEndOffset. Does not fsync (see flush).
   * Mutates `batches` in place (baseOffset, partitionLeaderEpoch).
   *
   * All or nothing: if any write fails (ENOSPC, EIO, ...), the append is undone — in memory at
   * once (offsets, indexes, segments; readers never saw any of it, see `appendingFrom`), on disk
   * by cutting the bytes written and deleting the segments it created — and it rejects with a
   * StorageIoError whose `ioCode` names the cause. If the undo cannot reach the disk either, the
   * cut is retried before the next append (`tailRepair`), which fails until it succeeds.
   */
  append(batches: Buffer, opts: AppendOptions = {}): Promise<AppendResult> {
    return this.exclusive(async () => {
      this.assertOpen();
      const spans = this.parseBatches(batches);
      await this.repairTail();
      const nowMs = this.clock.nowMs();
      const start = this.active;
      const baseOffset = start.nextOffset;
      const undo: AppendUndo = {
        segments: this.segments,
        active: start,
        tail: start.captureTail(),
        wasDirty: this.dirty.has(start),
      };
      this.appendingFrom = baseOffset;
      let firstBatchPosition = -1;
      let sealedUpTo = -1;
      try {
        let i = 0;
        while (i < spans.length) {
          // One write per run of batches that land in the same segment.
          if (this.shouldRoll(this.active, 0, spans[i]!, this.active.nextOffset, nowMs)) {
            sealedUpTo = await this.roll();
          }
          const seg = this.active;
          let nextOffset = seg.nextOffset;
          let pendingBytes = 0;
          const runStart = i;
          const assigned: number[] = [];
          while (i < spans.length) {
            const span = spans[i]!;
            if (i > runStart && this.shouldRoll(seg, pendingBytes, span, nextOffset, nowMs)) break;
            patchBaseOffset(batches, span.at, nextOffset);
            if (opts.leaderEpoch !== undefined) patchLeaderEpoch(batches, span.at, opts.leaderEpoch);
            assigned.push(nextOffset);
            nextOffset += span.lastOffsetDelta + 1;
            pendingBytes += span.sizeBytes;
            i++;
          }
          const first = spans[runStart]!;
          const startPos = seg.sizeBytes;
          await seg.file.append(batches.subarray(first.at, first.at + pendingBytes));
          let pos = startPos;
          for (let k = runStart; k < i; k++) {
            const span = spans[k]!;
            const batchBase = assigned[k - runStart]!;
            seg.trackBatch(
              pos,
              span.sizeBytes,
              batchBase + span.lastOffsetDelta,
              span.maxTimestampMs,
              this.cfg.indexIntervalBytes,
            );
            pos += span.sizeBytes;
          }
          seg.firstAppendWallMs ??= nowMs;
          seg.lastAppendWallMs = nowMs;
          this.dirty.add(seg);
          if (firstBatchPosition < 0) firstBatchPosition = startPos;
        }
      } catch (err) {
        await this.undoAppend(undo, baseOffset);
        throw new StorageIoError(`append at offset ${baseOffset} to ${this.dir} failed`, { cause: err });
      } finally {
        // No await between the last write's bookkeeping and this: a concurrent flush sees either
        // none or all of the append in logEndOffset, matching the bytes it will sync.
        this.appendingFrom = null;
      }
      // Segments sealed by a roll were synced; now that the append stands they count as flushed.
      if (sealedUpTo > this.flushedOffsetValue) this.flushedOffsetValue = sealedUpTo;
      if (this.tail) {
        let base = baseOffset;
        for (const span of spans) {
          const last = base + span.lastOffsetDelta;
          this.tail.add(base, last, batches.subarray(span.at, span.at + span.sizeBytes));
          base = last + 1;
        }
      }
      return {
        baseOffset,
        lastOffset: this.logEndOffset - 1,
        logAppendTimeMs: opts.logAppendTimeMs ?? nowMs,
        firstBatchPosition,
      };
    });
  }

  /**
   * Undoes a failed append: memory first (synchronously, so nothing of it is ever visible), then
   * the files. A file step that fails leaves `tailRepair` set for the next mutation to finish.
   */
  private async undoAppend(undo: AppendUndo, baseOffset: number): Promise<void> {
    const kept = new Set(undo.segments);
    const added = this.segments.filter((s) => !kept.has(s));
    this.segments = undo.segments;
    const rolled = added.length > 0;
    undo.active.restoreTail(undo.tail);
    for (const s of added) this.dirty.delete(s);
    if (rolled || undo.wasDirty) this.dirty.add(undo.active);
    this.flushedOffsetValue = Math.min(this.flushedOffsetValue, baseOffset);
    this.tailRepair = {
      orphans: [...this.tailRepair.orphans, ...added],
      unsealActive: this.tailRepair.unsealActive || rolled,
      pending: true,
    };
    try {
      await this.repairTail();
    } catch (err) {
      this.logger.warn(
        `[storage ${this.dir}] could not undo a failed append yet (retried before the next one): ${(err as Error).message}`,
      );
    }
  }

  /**
   * Makes the files match memory after an undone append: deletes the segments it created, cuts
   * the active segment's file back to its tracked size and drops index files a roll wrote for it.
   */
  private async repairTail(): Promise<void> {
    const repair = this.tailRepair;
    if (!repair.pending) return;
    try {
      if (repair.orphans.length > 0) {
        await this.quiesce();
        while (repair.orphans.length > 0) {
          await repair.orphans[0]!.deleteFiles(this.fs);
          repair.orphans.shift();
        }
        await this.fs.fsyncDir(this.dir);
      }
      const active = this.active;
      await active.file.truncate(active.sizeBytes);
      if (repair.unsealActive) {
        await unlinkIfExists(this.fs, active.indexPath);
        await unlinkIfExists(this.fs, active.timeIndexPath);
        repair.unsealActive = false;
      }
      repair.pending = false;
    } catch (err) {
      throw new StorageIoError(`repairing the tail of ${this.dir} after a failed append failed`, {
        cause: err,
      });
    }
  }

  /**
   * Seals the active segment (fsync + index files) and starts a new one at logEndOffset. Returns
   * the offset below which everything is now durable (the caller records it once the append
   * that rolled stands).
   */
  private async roll(): Promise<number> {
    const old = this.active;
    await old.seal(this.fs);
    this.dirty.delete(old);
    const seg = await LogSegment.open(this.fs, this.dir, old.nextOffset);
    seg.lastAppendWallMs = this.clock.nowMs();
    this.segments = [...this.segments, seg];
    if ((await seg.file.size()) > 0) await seg.file.truncate(0);
    await this.fs.fsyncDir(this.dir);
    // Every earlier segment was synced when it was sealed, so all of `old` is now durable.
    return old.nextOffset;
  }

  // ---- flush ----------------------------------------------------------------------------------

  /**
   * Makes everything appended so far durable. Group commit: while one fdatasync is in flight,
   * later callers share a single follow-up sync that covers all of them.
   */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new LogClosedError(this.dir));
    if (!this.syncInFlight) return this.startSync();
    this.nextSync ??= this.syncInFlight
      .catch(() => undefined)
      .then(() => {
        this.nextSync = null;
        return this.startSync();
      });
    return this.nextSync;
  }

  private startSync(): Promise<void> {
    const targetOffset = this.logEndOffset;
    const segs = [...this.dirty];
    this.dirty.clear();
    const p = (async () => {
      try {
        for (const s of segs) if (!s.closed) await s.file.datasync();
      } catch (err) {
        for (const s of segs) if (!s.closed) this.dirty.add(s);
        throw new StorageIoError(`fdatasync in ${this.dir} failed`, { cause: err });
      }
      // A truncation may have run meanwhile; never claim offsets that no longer exist.
      this.flushedOffsetValue = Math.max(this.flushedOffsetValue, Math.min(targetOffset, this.logEndOffset));
    })();
    this.syncInFlight = p;
    p.then(
      () => {
        if (this.syncInFlight === p) this.syncInFlight = null;
      },
      () => {
        if (this.syncInFlight === p) this.syncInFlight = null;
      },
    );
    return p;
  }

  // ---- read -----------------------------------------------------------------------------------

  /**
   * Whole batches starting with the one that contains `offset`, at most maxBytes (or exactly one
   * batch when minOneBatch and the first does not fit), never a batch at or past maxOffset.
   */
  read(offset: number, maxBytes: number, opts: ReadOptions = {}): Promise<ReadResult> {
    const minOneBatch = opts.minOneBatch ?? true;
    return this.trackRead(async () => {
      const logStartOffset = this.logStartOffsetValue;
      const logEndOffset = this.logEndOffset;
      // Never past logEndOffset: segments may already hold batches of an append still in progress.
      const maxOffset = Math.min(opts.maxOffset ?? Number.POSITIVE_INFINITY, logEndOffset);
      if (offset < logStartOffset || offset > logEndOffset) {
        throw new OffsetOutOfRangeError(offset, logStartOffset, logEndOffset);
      }
      if (offset === logEndOffset || offset >= maxOffset) return { records: EMPTY, nextOffset: offset };
      // A consumer at (or near) the end: the newest batches are in memory.
      const cached = this.tail?.read(offset, maxBytes, minOneBatch, maxOffset, logEndOffset, this.readPool);
      if (cached) return cached;
      const segs = this.segments;
      const parts: Buffer[] = [];
      let totalBytes = 0;
      let next = offset;
      let stop = false;
      for (let i = floorSegmentIndex(segs, offset); i < segs.length && !stop; i++) {
        const seg = segs[i]!;
        if (seg.nextOffset <= next) continue;
        const r = await readSegmentRange(
          seg,
          { next, maxOffset, maxBytes, totalBytes, minOneBatch },
          this.readPool,
        );
        parts.push(...r.parts);
        totalBytes += r.bytes;
        next = r.next;
        stop = r.stop;
      }
      if (parts.length <= 1) return { records: parts[0] ?? EMPTY, nextOffset: next };
      const records = Buffer.concat(parts);
      // The parts were copied and nothing else refers to them: their buffers can be reused now.
      for (const part of parts) this.readPool?.release(part);
      return { records, nextOffset: next };
    });
  }

  /**
   * ListOffsets by timestamp, at batch granularity: the first batch (at or after logStartOffset)
   * whose maxTimestamp >= timestampMs; reports max(its baseOffset, logStartOffset).
   */
  offsetForTimestamp(timestampMs: number): Promise<{ offset: number; timestamp: number } | null> {
    return this.trackRead(async () => {
      const logStartOffset = this.logStartOffsetValue;
      const logEndOffset = this.logEndOffset;
      for (const seg of this.segments) {
        if (seg.isEmpty || seg.nextOffset <= logStartOffset || seg.maxTimestampMs < timestampMs) continue;
        // Every batch up to the entry's offset is older than the target, so start after it.
        const entry = seg.timeIndex.lookupBefore(timestampMs);
        const fromTime = entry ? seg.offsetIndex.lookup(entry.relOffset) : 0;
        const fromStart =
          logStartOffset > seg.baseOffset ? seg.offsetIndex.lookup(logStartOffset - seg.baseOffset) : 0;
        const endBytes = seg.sizeBytes;
        const reader = new ChunkedReader(seg.file, endBytes, 64 * 1024);
        for await (const b of scanHeaders(reader, Math.max(fromTime, fromStart), endBytes, seg.logPath)) {
          if (b.header.baseOffset >= logEndOffset) return null;
          if (b.header.baseOffset + b.header.lastOffsetDelta < logStartOffset) continue;
          if (b.header.maxTimestamp >= timestampMs) {
            return {
              offset: Math.max(b.header.baseOffset, logStartOffset),
              timestamp: b.header.maxTimestamp,
            };
          }
        }
      }
      return null;
    });
  }

  /**
   * ListOffsets MAX_TIMESTAMP: the last offset of the batch with the largest maxTimestamp
   * (earliest such batch on ties); {-1, -1} when the log holds no batches. If DeleteRecords cut
   * below that batch, the offset is clamped to logStartOffset.
   */
  maxTimestampOffset(): { offset: number; timestamp: number } {
    let best: { offset: number; timestamp: number } = { offset: -1, timestamp: -1 };
    for (const seg of this.segments) {
      if (seg.isEmpty || seg.nextOffset <= this.logStartOffsetValue) continue;
      if (best.offset < 0 || seg.maxTimestampMs > best.timestamp) {
        best = {
          offset: Math.max(seg.offsetOfMaxTimestamp, this.logStartOffsetValue),
          timestamp: seg.maxTimestampMs,
        };
      }
    }
    return best;
  }

  /** Headers of every batch from the one containing `fromOffset` (default logStartOffset) on. */
  async *batchHeaders(fromOffset?: number): AsyncGenerator<BatchHeaderEntry> {
    while (this.readBarrier) await this.readBarrier;
    this.assertOpen();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.inflightReads.add(held);
    try {
      const from = fromOffset ?? this.logStartOffsetValue;
      const end = this.logEndOffset;
      const segs = this.segments;
      for (let i = floorSegmentIndex(segs, from); i < segs.length; i++) {
        const seg = segs[i]!;
        if (seg.nextOffset <= from) continue;
        const endBytes = seg.sizeBytes;
        const reader = new ChunkedReader(seg.file, endBytes, 64 * 1024);
        const startPos = seg.offsetIndex.lookup(from - seg.baseOffset);
        for await (const b of scanHeaders(reader, startPos, endBytes, seg.logPath)) {
          if (b.header.baseOffset >= end) return;
          if (b.header.baseOffset + b.header.lastOffsetDelta < from) continue;
          yield { header: b.header, position: b.position, segmentBaseOffset: seg.baseOffset };
        }
      }
    } finally {
      this.inflightReads.delete(held);
      release();
    }
  }

  // ---- deletion -------------------------------------------------------------------------------

  /** DeleteRecords: raise logStartOffset to `offset` and drop segments wholly below it. */
  deleteRecordsBefore(offset: number): Promise<number> {
    return this.exclusive(async () => {
      this.assertOpen();
      if (offset > this.logEndOffset || offset < 0) {
        throw new OffsetOutOfRangeError(offset, this.logStartOffsetValue, this.logEndOffset);
      }
      if (offset <= this.logStartOffsetValue) return this.logStartOffsetValue;
      this.tail?.clear();
      this.logStartOffsetValue = offset;
      await writeLogStartCheckpoint(this.fs, this.dir, offset);
      await this.deleteSegmentsBelow(offset);
      return this.logStartOffsetValue;
    });
  }

  /** Drops non-active segments whose every offset is < offset. */
  private async deleteSegmentsBelow(offset: number): Promise<number> {
    const segs = this.segments;
    let n = 0;
    while (n < segs.length - 1 && segs[n]!.nextOffset <= offset) n++;
    await this.removeSegments(segs.slice(0, n));
    return n;
  }

  /** Removes segments from view first, then waits for readers that may hold them, then unlinks. */
  private async removeSegments(removed: LogSegment[]): Promise<void> {
    if (removed.length === 0) return;
    this.tail?.clear();
    const gone = new Set(removed);
    this.segments = this.segments.filter((s) => !gone.has(s));
    for (const s of removed) this.dirty.delete(s);
    await this.quiesce();
    for (const s of removed) await s.deleteFiles(this.fs);
    await this.fs.fsyncDir(this.dir);
  }

  /**
   * Retention: deletes the oldest sealed segments whose newest timestamp is older than
   * retentionMs, then (Kafka's rule) the oldest while the log without them is still
   * >= retentionBytes. Never the active segment. Returns how many segments were deleted.
   * Does nothing unless cleanup.policy contains "delete" (cfg.cleanupDelete).
   */
  applyRetention(nowMs?: number): Promise<number> {
    return this.exclusive(async () => {
      this.assertOpen();
      if (!this.cfg.cleanupDelete) return 0;
      const now = nowMs ?? this.clock.nowMs();
      const segs = this.segments;
      const { retentionMs, retentionBytes } = this.cfg;
      let n = 0;
      if (retentionMs >= 0) {
        while (n < segs.length - 1 && now - segs[n]!.retentionTimestampMs() > retentionMs) n++;
      }
      if (retentionBytes >= 0) {
        let remainingBytes = 0;
        for (let k = n; k < segs.length; k++) remainingBytes += segs[k]!.sizeBytes;
        while (n < segs.length - 1 && remainingBytes - segs[n]!.sizeBytes >= retentionBytes) {
          remainingBytes -= segs[n]!.sizeBytes;
          n++;
        }
      }
      if (n === 0) return 0;
      const newStart = segs[n]!.baseOffset;
      let checkpointed = true;
      if (newStart > this.logStartOffsetValue) {
        this.logStartOffsetValue = newStart;
        // newStart is a segment's base: once the segments below are gone, recovery finds it
        // without the checkpoint. So a full disk, where the checkpoint cannot be written, must not
        // stop retention from freeing space; it is written once the segments are gone.
        checkpointed = await writeLogStartCheckpoint(this.fs, this.dir, newStart).then(
          () => true,
          () => false,
        );
      }
      await this.removeSegments(segs.slice(0, n));
      if (!checkpointed) await writeLogStartCheckpoint(this.fs, this.dir, this.logStartOffsetValue);
      return n;
    });
  }

  /**
   * Drops every offset >= `offset` (follower truncation). Cuts at a batch boundary: a batch that
   * contains `offset` is dropped whole. Below logStartOffset the log restarts empty at `offset`.
   */
  truncateTo(offset: number): Promise<void> {
    return this.exclusive(async () => {
      this.assertOpen();
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw new InvalidConfigError(`bad truncation offset ${offset}`);
      // Best effort: a failure is retried before the next append, which needs it.
      await this.repairTail().catch(() => undefined);
      if (offset >= this.logEndOffset) return;
      this.tail?.clear();
      let lift!: () => void;
      this.readBarrier = new Promise<void>((resolve) => {
        lift = resolve;
      });
      try {
        if (offset < this.logStartOffsetValue || offset <= this.segments[0]!.baseOffset) {
          await this.truncateFullyAndStartAt(offset);
          return;
        }
        const keep = this.segments.filter((s) => s.baseOffset < offset);
        const drop = this.segments.filter((s) => s.baseOffset >= offset);
        await this.removeSegments(drop);
        const seg = keep[keep.length - 1]!;
        await this.quiesce();
        const cutAt = await seg.positionOf(offset);
        if (cutAt) await seg.truncateToPosition(cutAt.position, this.cfg.indexIntervalBytes);
        await unlinkIfExists(this.fs, seg.indexPath);
        await unlinkIfExists(this.fs, seg.timeIndexPath);
        if (seg.isEmpty) seg.firstAppendWallMs = null;
        else seg.firstAppendWallMs ??= this.clock.nowMs();
        // truncateToPosition synced the cut segment and every earlier one was synced at its roll
        // (a no-op cut leaves it possibly dirty, so only then fall back to min()).
        if (cutAt) {
          this.dirty.delete(seg);
          this.flushedOffsetValue = this.logEndOffset;
        } else {
          this.flushedOffsetValue = Math.min(this.flushedOffsetValue, this.logEndOffset);
        }
        if (this.logStartOffsetValue > this.logEndOffset) {
          this.logStartOffsetValue = this.logEndOffset;
          await writeLogStartCheckpoint(this.fs, this.dir, this.logStartOffsetValue);
        }
      } finally {
        this.readBarrier = null;
        lift();
      }
    });
  }

  /** Deletes every segment and starts an empty one at `offset`, which becomes logStartOffset. */
  private async truncateFullyAndStartAt(offset: number): Promise<void> {
    const old = [...this.segments];
    this.tail?.clear();
    this.segments = [];
    for (const s of old) this.dirty.delete(s);
    await this.quiesce();
    for (const s of old) await s.deleteFiles(this.fs);
    const seg = await LogSegment.open(this.fs, this.dir, offset);
    if ((await seg.file.size()) > 0) await seg.file.truncate(0);
    seg.lastAppendWallMs = this.clock.nowMs();
    this.segments = [seg];
    this.logStartOffsetValue = offset;
    await writeLogStartCheckpoint(this.fs, this.dir, offset);
    this.flushedOffsetValue = offset;
  }

  // ---- compaction -----------------------------------------------------------------------------

  /**
   * One compaction pass if the log is compacted (cfg.compact) and due (dirty ratio, max lag,
   * delete horizon) or forced; see cleaner.ts. Concurrent calls do not overlap (the second
   * returns reason 'in-progress'). Appends and reads go on meanwhile.
   */
  clean(nowMs?: number, opts: CleanOptions = {}): Promise<CleanResult> {
    this.assertOpen();
    this.cleaner ??= new LogCleaner({
      dir: this.dir,
      fs: this.fs,
      config: () => this.cfg,
      segments: () => this.segments,
      logStartOffset: () => this.logStartOffsetValue,
      isClosed: () => this.closed,
      warn: (msg) => this.logger.warn(`[storage ${this.dir}] ${msg}`),
      holdRead: (fn) => this.trackRead(fn),
      swap: (old, cleaned, cleanedPath) => this.swapCleaned(old, cleaned, cleanedPath),
    });
    return this.cleaner.clean(nowMs ?? this.clock.nowMs(), opts);
  }

  /**
   * Puts a cleaned segment in place of `old` (consecutive sealed segments). The rename to `.swap`
   * is the commit point; reads in flight finish on the old files before they are deleted.
   */
  private swapCleaned(
    old: readonly LogSegment[],
    cleaned: LogSegment,
    cleanedPath: string,
  ): Promise<boolean> {
    return this.exclusive(async () => {
      if (this.closed || old.length === 0) return false;
      const segs = this.segments;
      const i = segs.indexOf(old[0]!);
      // Gone (retention, truncation) or no longer sealed: give up, the next pass starts over.
      if (i < 0 || i + old.length >= segs.length) return false;
      for (let k = 0; k < old.length; k++) if (segs[i + k] !== old[k]) return false;
      const swapPath = `${cleaned.logPath}${SWAP_SUFFIX}`;
      await this.fs.rename(cleanedPath, swapPath);
      await this.fs.fsyncDir(this.dir);
      this.tail?.clear();
      this.segments = [...segs.slice(0, i), cleaned, ...segs.slice(i + old.length)];
      await this.quiesce();
      for (const s of old) await s.deleteFiles(this.fs);
      await this.fs.rename(swapPath, cleaned.logPath);
      await cleaned.seal(this.fs);
      await this.fs.fsyncDir(this.dir);
      return true;
    });
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  updateConfig(partial: Partial<LogConfig>): void {
    this.cfg = validateConfig({ ...this.cfg, ...partial });
  }

  /** Waits for queued mutations, syncs and reads, then closes every file. Does not fsync. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      await this.repairTail().catch(() => undefined); // else recovery cuts the tail on open
      this.closed = true;
      this.tail?.clear();
      await this.quiesce();
      for (const s of this.segments) await s.close();
    });
  }

  /** Closes the log and removes its directory. */
  async delete(): Promise<void> {
    await this.close();
    await this.fs.rmrf(this.dir);
  }
}
