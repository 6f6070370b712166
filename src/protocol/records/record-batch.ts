/**
 * Record batch v2 (magic 2) codec: whole batches to and from records, including compression and
 * control (transaction marker) batches. The fixed 61-byte header layout lives in batch-header.ts;
 * this file owns the records section and the encode/decode of whole batches.
 *
 * Invariants:
 *  - decode never trusts a length or count: the batch is validated (size, magic, CRC-32C) first,
 *    record counts are checked against the bytes present (each record takes >= 7 bytes) before
 *    anything is allocated, decompression is capped (maxDecompressedBytes), every record must
 *    consume exactly the length it declares, and the records must fill the section exactly.
 *    Malformed input only ever throws DecodeError.
 *  - encode produces what the Java producer produces: baseTimestamp is the first record's
 *    timestamp, deltas are relative to it (and may be negative), maxTimestamp is the maximum,
 *    lastOffsetDelta is the last record's offsetDelta, and the CRC covers attributes..end.
 *  - Offsets and timestamps are JS numbers (exact below 2^53), matching primitives.ts.
 */

import { DecodeError, Reader, Writer } from '../primitives.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  COMPRESSION_MASK,
  CONTROL_FLAG,
  Compression,
  MAGIC_V2,
  OFF_BATCH_LENGTH,
  OFF_CRC,
  TIMESTAMP_TYPE_LOG_APPEND,
  TRANSACTIONAL_FLAG,
  computeBatchCrc,
  readBatchHeader,
  validateBatchAt,
} from './batch-header.js';
import {
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  compress,
  compressSync,
  decompress,
  decompressSync,
} from './compression.js';

/** Smallest possible record: length, attributes, tsDelta, offsetDelta, keyLen, valueLen, headerCount. */
export const MIN_RECORD_BYTES = 7;
/** Smallest possible header: key length + value length varints. */
const MIN_HEADER_BYTES = 2;

export enum TimestampType {
  CreateTime = 0,
  LogAppendTime = 1,
}

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One decoded record. `offset` and `timestamp` are the absolute values the deltas resolve to. */
export interface KafkaRecord {
  attributes: number;
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  offset: number;
  timestamp: number;
}
export type { KafkaRecord as Record };

export interface RecordBatch {
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
  /** The count the header declares (always records.length once decoded). */
  recordsCount: number;
  records: KafkaRecord[];
  /** Derived from attributes. */
  compression: Compression;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  /** Bytes the batch occupies on the wire (12 + batchLength). */
  sizeInBytes: number;
}

/**
 * A record to encode. Give `timestamp` (absolute; default now) or `timestampDelta` (relative to
 * the batch's baseTimestamp); `offsetDelta` defaults to the record's index. A decoded
 * KafkaRecord is accepted as-is, so decode -> encode round-trips.
 */
export interface RecordInput {
  key?: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeader[];
  timestamp?: number;
  timestampDelta?: number;
  offsetDelta?: number;
  attributes?: number;
}

export interface EncodeBatchInput {
  records: RecordInput[];
  baseOffset?: number;
  /** Defaults to the first record's timestamp (or now, or the first explicit delta base). */
  baseTimestamp?: number;
  /** Defaults to the largest record timestamp; set it for LogAppendTime batches. */
  maxTimestamp?: number;
  /** Defaults to the last record's offsetDelta (0 for an empty batch). */
  lastOffsetDelta?: number;
  compression?: Compression;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  isTransactional?: boolean;
  isControl?: boolean;
  partitionLeaderEpoch?: number;
  timestampType?: TimestampType;
}

export interface DecodeBatchOptions {
  /** Cap on the decompressed records section; a bigger (or bomb) payload throws DecodeError. */
  maxDecompressedBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// encode

interface PreparedBatch {
  records: Buffer;
  count: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
}

function prepare(input: EncodeBatchInput): PreparedBatch {
  const records = input.records;
  const now = Date.now();
  const firstTs = records[0]?.timestamp;
  const baseTimestamp = input.baseTimestamp ?? firstTs ?? now;
  const out = new Writer(256 + records.length * 32);
  const body = new Writer(128);
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  let lastOffsetDelta = 0;
  out.int32(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const timestampDelta = r.timestampDelta ?? (r.timestamp ?? now) - baseTimestamp;
    const offsetDelta = r.offsetDelta ?? i;
    const ts = baseTimestamp + timestampDelta;
    if (ts > maxTimestamp) maxTimestamp = ts;
    lastOffsetDelta = offsetDelta;
    body.offset = 0;
    body.int8(r.attributes ?? 0);
    body.varlongNumber(timestampDelta);
    body.varint(offsetDelta);
    writeVarintBytes(body, r.key ?? null);
    writeVarintBytes(body, r.value);
    const headers = r.headers ?? [];
    body.varint(headers.length);
    for (const h of headers) {
      const k = Buffer.from(h.key, 'utf8');
      body.varint(k.length);
      body.raw(k);
      writeVarintBytes(body, h.value);
    }
    out.varint(body.offset);
    out.raw(body.view());
  }
  let attributes = (input.compression ?? Compression.None) & COMPRESSION_MASK;
  if (input.timestampType === TimestampType.LogAppendTime) attributes |= TIMESTAMP_TYPE_LOG_APPEND;
  if (input.isTransactional) attributes |= TRANSACTIONAL_FLAG;
  if (input.isControl) attributes |= CONTROL_FLAG;
  return {
    // The count (int32) stays outside compression; the rest is the records section.
    records: out.toBuffer(),
    count: records.length,
    attributes,
    lastOffsetDelta: input.lastOffsetDelta ?? lastOffsetDelta,
    baseTimestamp,
    maxTimestamp: input.maxTimestamp ?? (records.length > 0 ? maxTimestamp : baseTimestamp),
  };
}

function writeVarintBytes(w: Writer, b: Buffer | null): void {
  if (b === null) {
    w.varint(-1);
  } else {
    w.varint(b.length);
    w.raw(b);
  }
}

function assemble(input: EncodeBatchInput, p: PreparedBatch, section: Buffer): Buffer {
  const size = BATCH_HEADER_BYTES + section.length;
  const w = new Writer(size);
  w.int64(input.baseOffset ?? 0);
  w.int32(size - BATCH_LOG_OVERHEAD);
  w.int32(input.partitionLeaderEpoch ?? -1);
  w.int8(MAGIC_V2);
  w.uint32(0); // CRC, filled below
  w.int16(p.attributes);
  w.int32(p.lastOffsetDelta);
  w.int64(p.baseTimestamp);
  w.int64(p.maxTimestamp);
  w.int64(input.producerId ?? -1);
  w.int16(input.producerEpoch ?? -1);
  w.int32(input.baseSequence ?? -1);
  w.int32(p.count);
  w.raw(section);
  const buf = w.buf.length === size ? w.buf : w.toBuffer();
  buf.writeUInt32BE(computeBatchCrc(buf, 0, size), OFF_CRC);
  return buf;
}

/** Encodes one v2 record batch; async because the snappy/lz4/zstd bindings are. */
export async function encodeRecordBatch(input: EncodeBatchInput): Promise<Buffer> {
  const p = prepare(input);
  const codec = (p.attributes & COMPRESSION_MASK) as Compression;
  const section = await compress(codec, p.records.subarray(4));
  return assemble(input, p, section);
}

/** Synchronous encodeRecordBatch; zstd compression throws (no synchronous binding). */
export function encodeRecordBatchSync(input: EncodeBatchInput): Buffer {
  const p = prepare(input);
  const codec = (p.attributes & COMPRESSION_MASK) as Compression;
  return assemble(input, p, compressSync(codec, p.records.subarray(4)));
}

// ---------------------------------------------------------------------------------------------
// decode

function checkCodec(attributes: number): Compression {
  const codec = attributes & COMPRESSION_MASK;
  if (codec > Compression.Zstd)
    throw new DecodeError(`unknown compression codec ${codec} in batch attributes`);
  return codec as Compression;
}

/** Validates the batch at `at` and returns its header plus the (possibly compressed) records bytes. */
function openBatch(buf: Buffer, at: number) {
  const size = validateBatchAt(buf, at, buf.length);
  const header = readBatchHeader(buf, at);
  const compression = checkCodec(header.attributes);
  const section = buf.subarray(at + BATCH_HEADER_BYTES, at + size);
  return { size, header, compression, section };
}

function decodeRecords(
  section: Buffer,
  count: number,
  baseOffset: number,
  baseTimestamp: number,
  logAppendTime: number | null,
): KafkaRecord[] {
  const r = new Reader(section);
  r.checkCount(count, MIN_RECORD_BYTES, 'record');
  const records: KafkaRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const length = r.varint();
    if (length < MIN_RECORD_BYTES - 1) throw new DecodeError(`record ${i} length ${length} is too small`);
    r.need(length, 'record bytes');
    const end = r.offset + length;
    const rr = new Reader(section, r.offset, end);
    const attributes = rr.int8();
    const timestampDelta = rr.varlongNumber();
    const offsetDelta = rr.varint();
    const key = readVarintBytes(rr);
    const value = readVarintBytes(rr);
    const headerCount = rr.varint();
    rr.checkCount(headerCount, MIN_HEADER_BYTES, 'record header');
    const headers: RecordHeader[] = new Array(headerCount);
    for (let h = 0; h < headerCount; h++) {
      const keyLen = rr.varint();
      if (keyLen < 0) throw new DecodeError('null record header key');
      const hk = rr.rawBytes(keyLen).toString('utf8');
      headers[h] = { key: hk, value: readVarintBytes(rr) };
    }
    if (rr.offset !== end)
      throw new DecodeError(`record ${i} declared ${length} bytes but used ${rr.offset - (end - length)}`);
    r.offset = end;
    records[i] = {
      attributes,
      offsetDelta,
      timestampDelta,
      key,
      value,
      headers,
      offset: baseOffset + offsetDelta,
      timestamp: logAppendTime ?? baseTimestamp + timestampDelta,
    };
  }
  if (r.remaining !== 0)
    throw new DecodeError(`${r.remaining} bytes left after the batch's ${count} records`);
  return records;
}

function readVarintBytes(r: Reader): Buffer | null {
  const n = r.varint();
  if (n < -1) throw new DecodeError(`negative byte length ${n}`);
  if (n === -1) return null;
  return r.rawBytes(n);
}

function finish(opened: ReturnType<typeof openBatch>, plain: Buffer): RecordBatch {
  const { header, compression, size } = opened;
  const logAppend = (header.attributes & TIMESTAMP_TYPE_LOG_APPEND) !== 0;
  const records = decodeRecords(
    plain,
    header.recordsCount,
    header.baseOffset,
    header.baseTimestamp,
    logAppend ? header.maxTimestamp : null,
  );
  return {
    ...header,
    records,
    compression,
    timestampType: logAppend ? TimestampType.LogAppendTime : TimestampType.CreateTime,
    isTransactional: (header.attributes & TRANSACTIONAL_FLAG) !== 0,
    isControl: (header.attributes & CONTROL_FLAG) !== 0,
    sizeInBytes: size,
  };
}

/**
 * Decodes the batch starting at `at` (bytes after it are ignored). Throws DecodeError for a
 * truncated, corrupt (CRC) or malformed batch, or one that decompresses past the cap.
 * Key, value and header values are views into `buf` (or into the decompressed section).
 */
export async function decodeRecordBatch(
  buf: Buffer,
  at = 0,
  options: DecodeBatchOptions = {},
): Promise<RecordBatch> {
  const opened = openBatch(buf, at);
  const max = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const plain = await decompress(opened.compression, opened.section, max);
  return finish(opened, plain);
}

/** Synchronous decodeRecordBatch; a zstd batch throws a plain Error (no synchronous binding). */
export function decodeRecordBatchSync(buf: Buffer, at = 0, options: DecodeBatchOptions = {}): RecordBatch {
  const opened = openBatch(buf, at);
  const max = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  return finish(opened, decompressSync(opened.compression, opened.section, max));
}

/**
 * Where the complete batches in a buffer of concatenated batches lie. A trailing partial batch
 * (a fetch response cut at maxBytes) ends the walk silently; a complete but corrupt one throws.
 */
export function completeBatchOffsets(
  buf: Buffer,
  start = 0,
  end = buf.length,
): { at: number; size: number }[] {
  const out: { at: number; size: number }[] = [];
  let at = start;
  while (end - at >= BATCH_LOG_OVERHEAD) {
    const batchLength = buf.readInt32BE(at + OFF_BATCH_LENGTH);
    if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) {
      throw new DecodeError(`batch length ${batchLength} at ${at} too small`);
    }
    const size = BATCH_LOG_OVERHEAD + batchLength;
    if (size > end - at) break; // partial trailing batch
    out.push({ at, size });
    at += size;
  }
  return out;
}

/** Decodes every complete batch in `buf`; a trailing partial batch is ignored. */
export async function decodeRecordBatches(
  buf: Buffer,
  options: DecodeBatchOptions = {},
): Promise<RecordBatch[]> {
  const batches: RecordBatch[] = [];
  for (const { at, size } of completeBatchOffsets(buf)) {
    batches.push(await decodeRecordBatch(buf.subarray(0, at + size), at, options));
  }
  return batches;
}

/** Synchronous decodeRecordBatches (zstd batches throw a plain Error). */
export function decodeRecordBatchesSync(buf: Buffer, options: DecodeBatchOptions = {}): RecordBatch[] {
  return completeBatchOffsets(buf).map(({ at, size }) =>
    decodeRecordBatchSync(buf.subarray(0, at + size), at, options),
  );
}

// ---------------------------------------------------------------------------------------------
// control records

export enum ControlRecordType {
  Abort = 0,
  Commit = 1,
}

export interface ControlRecord {
  /** Key schema version (0 today). */
  version: number;
  type: ControlRecordType | number;
  /** From the EndTxnMarker value; present for ABORT/COMMIT markers. */
  coordinatorEpoch?: number;
  /** EndTxnMarker value version, when a value was present. */
  valueVersion?: number;
}

/** Key: version int16 + type int16. Value (ABORT/COMMIT): version int16 + coordinatorEpoch int32. */
export function encodeControlRecord(marker: {
  type: ControlRecordType;
  coordinatorEpoch: number;
  version?: number;
}): {
  key: Buffer;
  value: Buffer;
} {
  const key = Buffer.alloc(4);
  key.writeInt16BE(marker.version ?? 0, 0);
  key.writeInt16BE(marker.type, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(marker.coordinatorEpoch, 2);
  return { key, value };
}

/**
 * Decodes a control record's key (and, for ABORT/COMMIT, its value). Other control types
 * (e.g. KRaft's LEADER_CHANGE) carry different value schemas, so only the key is decoded.
 */
export function decodeControlRecord(record: { key: Buffer | null; value: Buffer | null }): ControlRecord {
  if (record.key === null) throw new DecodeError('control record without a key');
  const k = new Reader(record.key);
  const version = k.int16();
  const type = k.int16();
  const out: ControlRecord = { version, type };
  if ((type === ControlRecordType.Abort || type === ControlRecordType.Commit) && record.value !== null) {
    const v = new Reader(record.value);
    out.valueVersion = v.int16();
    out.coordinatorEpoch = v.int32();
  }
  return out;
}

/** Encodes a transaction marker batch (transactional + control, one control record), as brokers write. */
export function encodeControlBatch(input: {
  type: ControlRecordType;
  coordinatorEpoch: number;
  producerId: number;
  producerEpoch: number;
  baseOffset?: number;
  timestamp?: number;
  partitionLeaderEpoch?: number;
}): Buffer {
  const { key, value } = encodeControlRecord(input);
  return encodeRecordBatchSync({
    records: [{ key, value, timestamp: input.timestamp ?? Date.now() }],
    baseOffset: input.baseOffset,
    producerId: input.producerId,
    producerEpoch: input.producerEpoch,
    baseSequence: -1,
    isTransactional: true,
    isControl: true,
    partitionLeaderEpoch: input.partitionLeaderEpoch,
  });
}
