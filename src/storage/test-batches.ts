/**
 * Test helper: builds minimal valid uncompressed v2 record batches and decodes them back.
 *
 * Records follow Kafka's v2 record format: length varint, attributes int8, timestampDelta
 * varlong, offsetDelta varint, key (varint length or -1, bytes), value (same), headers count
 * varint then (key varint+bytes, value varint+bytes) per header. The CRC is computed with
 * computeBatchCrc, so batches pass validateBatchAt exactly like a client's would.
 */

import { Reader, Writer } from '../protocol/primitives.js';
import {
  BATCH_HEADER_BYTES,
  OFF_CRC,
  batchSizeAt,
  computeBatchCrc,
  readBatchHeader,
} from '../protocol/records/batch-header.js';

export interface TestRecord {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  /** Absolute timestamp; defaults to the batch's baseTimestamp. */
  timestampMs?: number;
  headers?: Array<{ key: string; value: string | Buffer | null }>;
}

export interface BuildBatchOptions {
  baseOffset?: number;
  baseTimestampMs?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  attributes?: number;
}

function bytesOf(v: string | Buffer | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function writeVarBytes(w: Writer, b: Buffer | null): void {
  if (b === null) {
    w.varint(-1);
  } else {
    w.varint(b.length);
    w.raw(b);
  }
}

/** One v2 batch holding `records` (at least one). */
export function buildBatch(records: TestRecord[], opts: BuildBatchOptions = {}): Buffer {
  if (records.length === 0) throw new Error('a v2 batch needs at least one record');
  const baseTimestampMs = opts.baseTimestampMs ?? records[0]?.timestampMs ?? 0;
  let maxTimestampMs = -1;
  const body = new Writer(256);
  records.forEach((rec, i) => {
    const ts = rec.timestampMs ?? baseTimestampMs;
    if (ts > maxTimestampMs) maxTimestampMs = ts;
    const r = new Writer(64);
    r.int8(0);
    r.varlong(BigInt(ts - baseTimestampMs));
    r.varint(i);
    writeVarBytes(r, bytesOf(rec.key));
    writeVarBytes(r, bytesOf(rec.value));
    const headers = rec.headers ?? [];
    r.varint(headers.length);
    for (const h of headers) {
      writeVarBytes(r, Buffer.from(h.key, 'utf8'));
      writeVarBytes(r, bytesOf(h.value));
    }
    body.varint(r.offset);
    body.raw(r.view());
  });
  const w = new Writer(BATCH_HEADER_BYTES + body.offset);
  w.int64(opts.baseOffset ?? 0);
  w.int32(0); // batchLength, patched below
  w.int32(opts.partitionLeaderEpoch ?? -1);
  w.int8(2);
  w.uint32(0); // crc, patched below
  w.int16(opts.attributes ?? 0);
  w.int32(records.length - 1);
  w.int64(baseTimestampMs);
  w.int64(maxTimestampMs);
  w.int64(opts.producerId ?? -1);
  w.int16(opts.producerEpoch ?? -1);
  w.int32(opts.baseSequence ?? -1);
  w.int32(records.length);
  w.raw(body.view());
  const buf = w.toBuffer();
  buf.writeInt32BE(buf.length - 12, 8);
  buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), OFF_CRC);
  return buf;
}

/** Convenience: a batch of string values, all at `timestampMs`. */
export function valuesBatch(values: string[], timestampMs = 0, opts: BuildBatchOptions = {}): Buffer {
  return buildBatch(
    values.map((value) => ({ value, timestampMs })),
    { baseTimestampMs: timestampMs, ...opts },
  );
}

export interface DecodedRecord {
  offset: number;
  timestampMs: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer | null }>;
}

/** Decodes every record of every (uncompressed) batch in `buf`. */
export function decodeRecords(buf: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    const size = batchSizeAt(buf, at);
    const h = readBatchHeader(buf, at);
    const r = new Reader(buf, at + BATCH_HEADER_BYTES, at + size);
    for (let i = 0; i < h.recordsCount; i++) {
      const len = r.varint();
      const end = r.offset + len;
      r.int8();
      const tsDelta = Number(r.varlong());
      const offsetDelta = r.varint();
      const keyLen = r.varint();
      const key = keyLen < 0 ? null : Buffer.from(r.rawBytes(keyLen));
      const valueLen = r.varint();
      const value = valueLen < 0 ? null : Buffer.from(r.rawBytes(valueLen));
      const headerCount = r.varint();
      const headers: DecodedRecord['headers'] = [];
      for (let k = 0; k < headerCount; k++) {
        const hk = r.varint();
        const hkey = r.rawBytes(hk).toString('utf8');
        const hv = r.varint();
        headers.push({ key: hkey, value: hv < 0 ? null : Buffer.from(r.rawBytes(hv)) });
      }
      if (r.offset !== end) throw new Error(`record ${i} of batch at ${at} has trailing bytes`);
      out.push({
        offset: h.baseOffset + offsetDelta,
        timestampMs: h.baseTimestamp + tsDelta,
        key,
        value,
        headers,
      });
    }
    at += size;
  }
  return out;
}

/** Values as strings, with their offsets; handy for assertions. */
export function decodeValues(buf: Buffer): Array<{ offset: number; value: string | null }> {
  return decodeRecords(buf).map((r) => ({ offset: r.offset, value: r.value?.toString('utf8') ?? null }));
}
