/**
 * The read path of one segment: which whole batches a read returns from it, and their bytes, in
 * (almost always) one positional read.
 *
 * The offset index points at or before the batch holding the wanted offset (its entries name a
 * batch's last offset, so the batch before the wanted one is where a scan usually starts). One
 * read of the remaining byte budget plus READ_SLACK_BYTES from there covers that lag for batches
 * up to ~60 KiB, the headers of every batch returned and the header of the first batch that no
 * longer fits; headers are then walked synchronously inside that buffer (no async step per batch,
 * no header object), and the result is a view of the same buffer. Only a lag larger than the
 * slack, a batch larger than the budget (minOneBatch) or a budget beyond MAX_CHUNK_BYTES reads
 * again.
 *
 * Buffers: with a pool, reads of at least pool.minBytes lease their buffer. A buffer a result part
 * views is the caller's (the network layer releases it once written, or the caller after copying
 * the parts); every other buffer this function read into goes back to the pool before it returns.
 */

import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  MAGIC_V2,
  OFF_BASE_OFFSET,
  OFF_BATCH_LENGTH,
  OFF_LAST_OFFSET_DELTA,
  OFF_MAGIC,
} from '../protocol/records/batch-header.js';
import { CorruptSegmentError, StorageIoError } from './errors.js';
import type { ReadBufferPool } from './read-buffer-pool.js';
import type { LogSegment } from './segment.js';

/** Read beyond the byte budget, for the index's lag behind the wanted offset and the next header. */
export const READ_SLACK_BYTES = 64 * 1024;
/** Largest single read; a larger budget is served in several (their parts are concatenated). */
export const MAX_CHUNK_BYTES = 4 << 20;

/**
 * The slack and the largest read actually used: READ_SLACK_BYTES and MAX_CHUNK_BYTES, except in
 * property tests, which shrink them so small logs reach every re-read path.
 */
export const readTuning = { slackBytes: READ_SLACK_BYTES, maxChunkBytes: MAX_CHUNK_BYTES };

export interface SegmentReadRequest {
  /** First offset wanted: the batch containing it is the first returned. */
  next: number;
  /** Batches with baseOffset >= maxOffset are not returned. */
  maxOffset: number;
  /** Byte limit of the whole read, and what earlier segments already returned. */
  maxBytes: number;
  totalBytes: number;
  /** Return one whole batch even beyond maxBytes when nothing was returned yet. */
  minOneBatch: boolean;
}

export interface SegmentReadResult {
  /** Views of whole consecutive batches, in order (usually one). */
  parts: Buffer[];
  bytes: number;
  /** Offset after the last batch returned (the requested one if none). */
  next: number;
  /** True when the read is complete (limit reached, or maxOffset met): skip later segments. */
  stop: boolean;
}

const EMPTY = Buffer.alloc(0);

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

export async function readSegmentRange(
  seg: LogSegment,
  req: SegmentReadRequest,
  pool: ReadBufferPool | null,
): Promise<SegmentReadResult> {
  const endBytes = seg.sizeBytes;
  const what = seg.logPath;
  let next = req.next;
  const parts: Buffer[] = [];
  let bytes = 0;
  let stop = false;

  let buf: Buffer = EMPTY;
  let bufStart = 0;
  /** Whether a part views `buf` (then it is not released here). */
  let bufShared = false;
  const load = async (from: number, length: number): Promise<void> => {
    const want = Math.max(0, Math.min(length, endBytes - from));
    // Released before the read, so forgotten at once: another read may lease it meanwhile.
    if (!bufShared) pool?.release(buf);
    buf = EMPTY;
    bufShared = false;
    let b: Buffer;
    if (pool && want >= pool.minBytes && seg.file.readInto) {
      const leased = pool.acquire(want);
      const got = await seg.file.readInto(leased, from, want);
      if (got < want) {
        pool.release(leased);
        throw new StorageIoError(`${what} shrank during a read`);
      }
      b = leased.subarray(0, want);
    } else {
      b = await seg.file.read(from, want);
      if (b.length < want) throw new StorageIoError(`${what} shrank during a read`);
    }
    buf = b;
    bufStart = from;
  };
  const chunkFor = (taken: number) =>
    Math.min(Math.max(req.maxBytes - taken, 0), readTuning.maxChunkBytes) + readTuning.slackBytes;

  let pos = seg.offsetIndex.lookup(next - seg.baseOffset);
  let rangeStart = -1;
  let rangeEnd = -1;
  const pendingBytes = () => (rangeStart < 0 ? 0 : rangeEnd - rangeStart);
  /** Moves the selected range, which `buf` holds, into `parts` (as a view of `buf`). */
  const takeRange = () => {
    if (rangeStart < 0) return;
    parts.push(buf.subarray(rangeStart - bufStart, rangeEnd - bufStart));
    bufShared = true;
    bytes += rangeEnd - rangeStart;
    rangeStart = -1;
    rangeEnd = -1;
  };
  try {
    while (pos < endBytes) {
      if (pos + BATCH_HEADER_BYTES > bufStart + buf.length) {
        // The first read, or the next header is past this buffer: read on from here, keeping what
        // was selected as a view of this buffer (or reading it again if it is not all there).
        if (pos + BATCH_HEADER_BYTES > endBytes)
          throw new CorruptSegmentError(`${what}: truncated batch header at position ${pos}`);
        const ahead = Math.max(BATCH_HEADER_BYTES, chunkFor(req.totalBytes + bytes + pendingBytes()));
        if (rangeStart >= 0 && rangeEnd > bufStart + buf.length) {
          // The selected batches themselves run past the buffer: read them again with what follows.
          await load(rangeStart, pos - rangeStart + ahead);
        } else {
          takeRange();
          await load(pos, ahead);
        }
      }
      const at = pos - bufStart;
      const batchLength = buf.readInt32BE(at + OFF_BATCH_LENGTH);
      const sizeBytes = BATCH_LOG_OVERHEAD + batchLength;
      if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD || pos + sizeBytes > endBytes) {
        throw new CorruptSegmentError(`${what}: bad batch length ${batchLength} at position ${pos}`);
      }
      if (buf.readInt8(at + OFF_MAGIC) !== MAGIC_V2) {
        throw new CorruptSegmentError(`${what}: bad magic at position ${pos}`);
      }
      const baseOffset = readInt64(buf, at + OFF_BASE_OFFSET);
      const lastOffset = baseOffset + buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA);
      if (lastOffset < next) {
        pos += sizeBytes;
        continue;
      }
      if (baseOffset >= req.maxOffset) {
        stop = true;
        break;
      }
      const taken = req.totalBytes + bytes + pendingBytes();
      if (taken + sizeBytes > req.maxBytes && !(req.minOneBatch && taken === 0)) {
        stop = true;
        break;
      }
      if (rangeStart < 0) rangeStart = pos;
      rangeEnd = pos + sizeBytes;
      next = lastOffset + 1;
      pos += sizeBytes;
      if (taken + sizeBytes >= req.maxBytes) {
        stop = true;
        break;
      }
    }
    if (rangeStart >= 0 && rangeEnd > bufStart + buf.length) {
      // The last batch runs past the buffer (larger than the budget, or than the slack allowed).
      await load(rangeStart, rangeEnd - rangeStart);
    }
    takeRange();
  } finally {
    if (!bufShared) pool?.release(buf);
  }
  return { parts, bytes, next, stop };
}
