/**
 * Record batch v2 (magic 2) header: fixed offsets, reading and patching without decoding records.
 *
 * Layout (big-endian), per Kafka's implementation docs:
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8 |
 *  17 crc uint32 (CRC-32C over bytes 21..end) | 21 attributes int16 | 23 lastOffsetDelta int32 |
 *  27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16 |
 *  53 baseSequence int32 | 57 recordsCount int32 | 61 records...
 *
 * baseOffset, batchLength and partitionLeaderEpoch sit outside the CRC, which is why the broker
 * can assign offsets and stamp leader epochs by patching them in place.
 */

import { crc32c } from '@node-rs/crc32';
import { DecodeError } from '../primitives.js';

export const BATCH_HEADER_BYTES = 61;
/** Bytes before batchLength counts: baseOffset + batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
export const MAGIC_V2 = 2;

export const OFF_BASE_OFFSET = 0;
export const OFF_BATCH_LENGTH = 8;
export const OFF_LEADER_EPOCH = 12;
export const OFF_MAGIC = 16;
export const OFF_CRC = 17;
export const OFF_ATTRIBUTES = 21;
export const OFF_LAST_OFFSET_DELTA = 23;
export const OFF_BASE_TIMESTAMP = 27;
export const OFF_MAX_TIMESTAMP = 35;
export const OFF_PRODUCER_ID = 43;
export const OFF_PRODUCER_EPOCH = 51;
export const OFF_BASE_SEQUENCE = 53;
export const OFF_RECORDS_COUNT = 57;

export const COMPRESSION_MASK = 0x07;
export const TIMESTAMP_TYPE_LOG_APPEND = 0x08;
export const TRANSACTIONAL_FLAG = 0x10;
export const CONTROL_FLAG = 0x20;
export const DELETE_HORIZON_FLAG = 0x40;

export enum Compression {
  None = 0,
  Gzip = 1,
  Snappy = 2,
  Lz4 = 3,
  Zstd = 4,
}

export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * 4294967296 + buf.readUInt32BE(at + 4);
}

function writeInt64(buf: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / 4294967296);
  buf.writeInt32BE(hi | 0, at);
  buf.writeUInt32BE((v - hi * 4294967296) >>> 0, at + 4);
}

/** Total bytes the batch starting at `at` occupies (12 + batchLength). */
export function batchSizeAt(buf: Buffer, at = 0): number {
  return BATCH_LOG_OVERHEAD + buf.readInt32BE(at + OFF_BATCH_LENGTH);
}

/** Reads the fixed header at `at`. The caller guarantees 61 bytes are present. */
export function readBatchHeader(buf: Buffer, at = 0): BatchHeader {
  return {
    baseOffset: readInt64(buf, at + OFF_BASE_OFFSET),
    batchLength: buf.readInt32BE(at + OFF_BATCH_LENGTH),
    partitionLeaderEpoch: buf.readInt32BE(at + OFF_LEADER_EPOCH),
    magic: buf.readInt8(at + OFF_MAGIC),
    crc: buf.readUInt32BE(at + OFF_CRC),
    attributes: buf.readInt16BE(at + OFF_ATTRIBUTES),
    lastOffsetDelta: buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA),
    baseTimestamp: readInt64(buf, at + OFF_BASE_TIMESTAMP),
    maxTimestamp: readInt64(buf, at + OFF_MAX_TIMESTAMP),
    producerId: readInt64(buf, at + OFF_PRODUCER_ID),
    producerEpoch: buf.readInt16BE(at + OFF_PRODUCER_EPOCH),
    baseSequence: buf.readInt32BE(at + OFF_BASE_SEQUENCE),
    recordsCount: buf.readInt32BE(at + OFF_RECORDS_COUNT),
  };
}

export function patchBaseOffset(buf: Buffer, at: number, baseOffset: number): void {
  writeInt64(buf, at + OFF_BASE_OFFSET, baseOffset);
}

export function patchLeaderEpoch(buf: Buffer, at: number, epoch: number): void {
  buf.writeInt32BE(epoch, at + OFF_LEADER_EPOCH);
}

/** Computes the CRC-32C a batch should carry (attributes..end). */
export function computeBatchCrc(buf: Buffer, at: number, size: number): number {
  return crc32c(buf.subarray(at + OFF_ATTRIBUTES, at + size)) >>> 0;
}

/**
 * Validates one batch at `at` within `end`: size bounds, magic, CRC, and internal consistency.
 * Returns the batch size, or throws DecodeError with the reason.
 */
export function validateBatchAt(buf: Buffer, at: number, end: number, maxBatchBytes = 0x7fffffff): number {
  if (end - at < BATCH_HEADER_BYTES) throw new DecodeError(`batch header truncated at ${at}`);
  const batchLength = buf.readInt32BE(at + OFF_BATCH_LENGTH);
  const size = BATCH_LOG_OVERHEAD + batchLength;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) throw new DecodeError(`batch length ${batchLength} too small`);
  if (size > maxBatchBytes) throw new DecodeError(`batch of ${size} bytes exceeds the limit of ${maxBatchBytes}`);
  if (at + size > end) throw new DecodeError(`batch at ${at} claims ${size} bytes, only ${end - at} remain`);
  const magic = buf.readInt8(at + OFF_MAGIC);
  if (magic !== MAGIC_V2) throw new DecodeError(`unsupported record batch magic ${magic}`);
  const expected = buf.readUInt32BE(at + OFF_CRC);
  const actual = computeBatchCrc(buf, at, size);
  if (expected !== actual) throw new DecodeError(`batch CRC mismatch at ${at}: stored ${expected}, computed ${actual}`);
  const lastOffsetDelta = buf.readInt32BE(at + OFF_LAST_OFFSET_DELTA);
  const count = buf.readInt32BE(at + OFF_RECORDS_COUNT);
  if (lastOffsetDelta < 0 || count < 0) throw new DecodeError('negative lastOffsetDelta or record count');
  return size;
}

/** Iterates batch boundaries in a buffer of concatenated batches, validating each. */
export function* batchOffsets(buf: Buffer, start = 0, end = buf.length): Generator<{ at: number; size: number }> {
  let at = start;
  while (at < end) {
    const size = validateBatchAt(buf, at, end);
    yield { at, size };
    at += size;
  }
}

export const batchHeaderInternals = { readInt64, writeInt64 };
