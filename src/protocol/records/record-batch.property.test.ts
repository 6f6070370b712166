/**
 * Property tests for the record batch codec: decode(encode(x)) = x over random records and every
 * codec; arbitrary corruption of a valid batch (with or without a repaired CRC, so the mutation
 * reaches the decompressors and record parser) only ever throws DecodeError; inflated record
 * counts throw DecodeError; varlongNumber agrees with the BigInt varlong.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecodeError, Reader, Writer } from '../primitives.js';
import { Compression, OFF_CRC, OFF_RECORDS_COUNT, computeBatchCrc } from './batch-header.js';
import { type RecordInput, decodeRecordBatch, encodeRecordBatch } from './record-batch.js';

const CODECS = [Compression.None, Compression.Gzip, Compression.Snappy, Compression.Lz4, Compression.Zstd];
const T0 = 1_700_000_000_000;

const bytesArb = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
const headerArb = fc.record({ key: fc.fullUnicodeString({ maxLength: 12 }), value: fc.option(bytesArb) });
const recordArb: fc.Arbitrary<RecordInput & { timestamp: number }> = fc.record({
  key: fc.option(bytesArb),
  value: fc.option(bytesArb),
  headers: fc.array(headerArb, { maxLength: 4 }),
  timestamp: fc.integer({ min: T0 - 1_000_000, max: T0 + 1_000_000 }),
});
const codecArb = fc.constantFrom(...CODECS);

function refreshCrc(buf: Buffer): void {
  buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), OFF_CRC);
}

async function onlyDecodeErrors(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

describe('record batch properties', () => {
  it('decode(encode(records)) round-trips for every codec', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { maxLength: 30 }),
        codecArb,
        fc.integer({ min: 0, max: 2 ** 48 }),
        async (records, compression, baseOffset) => {
          const buf = await encodeRecordBatch({ records, compression, baseOffset });
          const b = await decodeRecordBatch(buf);
          assert.equal(b.compression, compression);
          assert.equal(b.baseOffset, baseOffset);
          assert.equal(b.records.length, records.length);
          b.records.forEach((r, i) => {
            const want = records[i]!;
            assert.equal(r.offset, baseOffset + i);
            assert.equal(r.timestamp, want.timestamp);
            assert.deepEqual(r.key, want.key);
            assert.deepEqual(r.value, want.value);
            assert.deepEqual(r.headers, want.headers);
          });
          if (records.length > 0) assert.equal(b.maxTimestamp, Math.max(...records.map((r) => r.timestamp)));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('random byte mutations only ever throw DecodeError', async () => {
    const valid = await Promise.all(
      CODECS.map((compression) =>
        encodeRecordBatch({
          compression,
          records: Array.from({ length: 6 }, (_, i) => ({
            key: Buffer.from(`k${i}`),
            value: Buffer.from(`value ${i} `.repeat(i + 1)),
            headers: [{ key: 'h', value: Buffer.from([i]) }],
            timestamp: T0 + i,
          })),
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: valid.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.option(fc.nat()),
        async (which, edits, fixCrc, truncateTo) => {
          let buf = Buffer.from(valid[which]!);
          for (const [pos, byte] of edits) buf[pos % buf.length] = byte;
          if (truncateTo !== null) buf = buf.subarray(0, truncateTo % (buf.length + 1));
          else if (fixCrc) refreshCrc(buf);
          await onlyDecodeErrors(decodeRecordBatch(buf));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('mutations past the header (CRC repaired) reach the record parser and still only throw DecodeError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { minLength: 1, maxLength: 5 }),
        codecArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        async (records, compression, edits) => {
          const buf = await encodeRecordBatch({ records, compression });
          const body = buf.length - 61;
          if (body <= 0) return;
          for (const [pos, byte] of edits) buf[61 + (pos % body)] = byte;
          refreshCrc(buf);
          await onlyDecodeErrors(decodeRecordBatch(buf));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a record count larger than the records present throws DecodeError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { maxLength: 5 }),
        codecArb,
        fc.integer({ min: 1, max: 0x7fffffff }),
        async (records, compression, extra) => {
          const buf = await encodeRecordBatch({ records, compression });
          buf.writeInt32BE(Math.min(0x7fffffff, records.length + extra), OFF_RECORDS_COUNT);
          refreshCrc(buf);
          await assert.rejects(decodeRecordBatch(buf), DecodeError);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('varlongNumber', () => {
  it('agrees with the BigInt varlong both ways', () => {
    fc.assert(
      fc.property(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), (v) => {
        const a = new Writer(16).varlongNumber(v).toBuffer();
        const b = new Writer(16).varlong(BigInt(v)).toBuffer();
        assert.deepEqual(a, b);
        const r = new Reader(a);
        assert.equal(r.varlongNumber(), v);
        assert.equal(r.remaining, 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects values outside the safe-integer range', () => {
    const big = new Writer(16).varlong(2n ** 60n).toBuffer();
    assert.throws(() => new Reader(big).varlongNumber(), DecodeError);
  });
});
