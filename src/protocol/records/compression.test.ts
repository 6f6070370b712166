/**
 * Compression codec tests: round trips, golden frames written by hand from the format specs (so
 * they do not merely test our encoder against our decoder), the framings Java/librdkafka expect
 * from our encoder, and compression bombs for every codec.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import * as lz4 from 'lz4-napi';
import * as snappy from 'snappy';
import { DecodeError } from '../primitives.js';
import { Compression } from './batch-header.js';
import {
  XERIAL_MAGIC,
  compress,
  compressSync,
  decompress,
  decompressSync,
  zstdDecompressedBound,
} from './compression.js';
import { decodeRecordBatch, encodeRecordBatch } from './record-batch.js';

const CODECS = [Compression.Gzip, Compression.Snappy, Compression.Lz4, Compression.Zstd];
const MiB = 1024 * 1024;
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const isDecodeError = (e: unknown) => e instanceof DecodeError;

describe('round trips', () => {
  const inputs = [
    Buffer.alloc(0),
    Buffer.from('hello'),
    Buffer.alloc(300_000, 5),
    Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251)),
  ];
  for (const codec of CODECS) {
    it(Compression[codec], async () => {
      for (const data of inputs) {
        assert.deepEqual(await decompress(codec, await compress(codec, data)), data);
        if (codec !== Compression.Zstd)
          assert.deepEqual(decompressSync(codec, compressSync(codec, data)), data);
      }
    });
  }
});

describe('snappy framing', () => {
  it('decodes a hand-built xerial stream and a raw block', async () => {
    // raw snappy block for "hello": uvarint length 5, literal tag ((5-1)<<2), bytes.
    const raw = Buffer.concat([hex('05 10'), Buffer.from('hello')]);
    const xerial = Buffer.concat([
      XERIAL_MAGIC,
      hex('00000001 00000001'),
      hex('00000007'),
      raw,
      hex('00000007'),
      raw,
    ]);
    assert.equal((await decompress(Compression.Snappy, raw)).toString(), 'hello');
    assert.equal((await decompress(Compression.Snappy, xerial)).toString(), 'hellohello');
    // snappy-java also accepts concatenated streams (a second header mid-stream).
    const twice = Buffer.concat([xerial, xerial]);
    assert.equal((await decompress(Compression.Snappy, twice)).toString(), 'hello'.repeat(4));
  });

  it('encodes xerial framing with 32 KiB raw-snappy chunks, as snappy-java does', async () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 97));
    const z = await compress(Compression.Snappy, data);
    assert.deepEqual(z.subarray(0, 8), XERIAL_MAGIC);
    assert.equal(z.readInt32BE(8), 1);
    assert.equal(z.readInt32BE(12), 1);
    const chunks: Buffer[] = [];
    for (let at = 16; at < z.length; ) {
      const len = z.readInt32BE(at);
      chunks.push(snappy.uncompressSync(z.subarray(at + 4, at + 4 + len), { asBuffer: true }) as Buffer);
      at += 4 + len;
    }
    assert.equal(chunks.length, 4);
    assert.equal(chunks[0]!.length, 32 * 1024);
    assert.deepEqual(Buffer.concat(chunks), data);
  });

  it('truncated or corrupt xerial chunks are DecodeErrors', async () => {
    const z = await compress(Compression.Snappy, Buffer.alloc(1000, 1));
    await assert.rejects(decompress(Compression.Snappy, z.subarray(0, z.length - 2)), isDecodeError);
    const bad = Buffer.from(z);
    bad.writeInt32BE(-5, 16);
    await assert.rejects(decompress(Compression.Snappy, bad), isDecodeError);
    await assert.rejects(decompress(Compression.Snappy, hex('0a ff ff')), isDecodeError);
  });
});

describe('lz4 frame format', () => {
  const LZ4_MAGIC = hex('04224d18');
  const helloBlock = Buffer.concat([hex('50'), Buffer.from('hello')]); // token: 5 literals, no match

  it('decodes a Java-style frame (independent blocks, 64 KiB, no checksums)', async () => {
    const frame = Buffer.concat([LZ4_MAGIC, hex('60 40 82'), hex('06000000'), helloBlock, hex('00000000')]);
    assert.equal((await decompress(Compression.Lz4, frame)).toString(), 'hello');
  });

  it('decodes uncompressed blocks, content size, block and content checksums (librdkafka-style)', async () => {
    // FLG: version 01 | B.Indep | B.Checksum | C.Size | C.Checksum = 0x7c. Checksums are not
    // verified (the batch CRC covers these bytes), so placeholders are fine.
    const frame = Buffer.concat([
      LZ4_MAGIC,
      hex('7c 40'),
      hex('0a00000000000000'),
      hex('00'),
      hex('05000080'),
      Buffer.from('world'),
      hex('deadbeef'),
      hex('06000000'),
      helloBlock,
      hex('deadbeef'),
      hex('00000000'),
      hex('cafebabe'),
    ]);
    assert.equal((await decompress(Compression.Lz4, frame)).toString(), 'worldhello');
  });

  it('decodes linked blocks (a match reaching into the previous block)', async () => {
    const block1 = Buffer.concat([hex('80'), Buffer.from('abcdefgh')]);
    // match of 8 bytes (token 0x04 = 0 literals, matchlen 4+4) at offset 8, then 5 literals.
    const block2 = Buffer.concat([hex('04 0800'), hex('50'), Buffer.from('XXXXX')]);
    const frame = Buffer.concat([
      LZ4_MAGIC,
      hex('40 40 00'),
      Buffer.from([block1.length, 0, 0, 0]),
      block1,
      Buffer.from([block2.length, 0, 0, 0]),
      block2,
      hex('00000000'),
    ]);
    assert.equal((await decompress(Compression.Lz4, frame)).toString(), 'abcdefghabcdefghXXXXX');
  });

  it('decodes a maximum-ratio block (every byte a match-length extension)', async () => {
    // 1 literal 'a', match at offset 1 of length 19 + 250*255, then the mandatory 5 literals.
    const block = Buffer.concat([
      hex('1f'),
      Buffer.from('a'),
      hex('0100'),
      Buffer.alloc(250, 0xff),
      hex('00 50'),
      Buffer.from('aaaaa'),
    ]);
    const frame = Buffer.concat([
      LZ4_MAGIC,
      hex('60 40 82'),
      Buffer.from([block.length, block.length >> 8, 0, 0]),
      block,
      hex('00000000'),
    ]);
    const out = await decompress(Compression.Lz4, frame);
    assert.equal(out.length, 1 + 19 + 250 * 255 + 5);
    assert.ok(out.every((b) => b === 0x61));
  });

  it('thousands of tiny blocks in a 4 MiB-block frame decode quickly', async () => {
    const parts = [LZ4_MAGIC, hex('60 70 00')];
    for (let i = 0; i < 20_000; i++) parts.push(hex('06000000'), helloBlock);
    parts.push(hex('00000000'));
    const t = Date.now();
    assert.equal((await decompress(Compression.Lz4, Buffer.concat(parts))).length, 100_000);
    assert.ok(Date.now() - t < 1000);
  });

  it('our frames are LZ4 frames with independent blocks, readable by lz4-napi frame decoder', async () => {
    const data = Buffer.alloc(300_000, 3);
    const z = await compress(Compression.Lz4, data);
    assert.deepEqual(z.subarray(0, 4), LZ4_MAGIC);
    const flg = z[4]!;
    assert.equal(flg >> 6, 1, 'version 01');
    assert.ok(flg & 0x20, 'block independence (required by Kafka Java KafkaLZ4BlockInputStream)');
    assert.ok([4, 5, 6, 7].includes((z[5]! >> 4) & 7));
    assert.deepEqual(lz4.decompressFrameSync(z), data);
  });

  it('rejects bad magic, reserved bits, oversize blocks, truncation', async () => {
    const good = Buffer.concat([LZ4_MAGIC, hex('60 40 82'), hex('06000000'), helloBlock, hex('00000000')]);
    for (const bad of [
      Buffer.concat([hex('04224d19'), good.subarray(4)]),
      Buffer.concat([LZ4_MAGIC, hex('62 40 82'), good.subarray(7)]),
      Buffer.concat([LZ4_MAGIC, hex('60 40 82'), hex('01000100'), Buffer.alloc(70_000)]),
      good.subarray(0, good.length - 1),
      Buffer.concat([
        LZ4_MAGIC,
        hex('60 40 82'),
        hex('06000000'),
        hex('f0'),
        Buffer.from('hello'),
        hex('00000000'),
      ]),
    ]) {
      await assert.rejects(decompress(Compression.Lz4, bad), isDecodeError);
    }
  });
});

describe('zstd', () => {
  it('decodes a hand-built frame with a raw block and an RLE block', async () => {
    // FHD 0x20: single segment, 1-byte FCS (10). Raw block (5 bytes) then last RLE block (5 × 'z').
    const frame = Buffer.concat([
      hex('28b52ffd 20 0a'),
      Buffer.from([(5 << 3) | (0 << 1) | 0, 0, 0]),
      Buffer.from('hello'),
      Buffer.from([(5 << 3) | (1 << 1) | 1, 0, 0]),
      Buffer.from('z'),
    ]);
    assert.equal(zstdDecompressedBound(frame), 10);
    assert.equal((await decompress(Compression.Zstd, frame)).toString(), 'hellozzzzz');
  });

  it('corrupt input is a DecodeError', async () => {
    const z = await compress(Compression.Zstd, Buffer.from('some text some text some text'));
    await assert.rejects(decompress(Compression.Zstd, z.subarray(0, z.length - 3)), isDecodeError);
    await assert.rejects(decompress(Compression.Zstd, hex('28b52ffd 00')), isDecodeError);
    const bad = Buffer.from(z);
    bad[bad.length - 2]! ^= 0xff;
    await assert.rejects(decompress(Compression.Zstd, bad), isDecodeError);
  });
});

describe('compression bombs', () => {
  const zeros = Buffer.alloc(80 * MiB);
  const quick = async (p: Promise<unknown>) => {
    const t = Date.now();
    await assert.rejects(p, isDecodeError);
    assert.ok(Date.now() - t < 2000, 'fails fast');
  };

  for (const codec of CODECS) {
    it(`${Compression[codec]}: 80 MiB of zeros exceeds the 64 MiB default cap; small caps hold too`, async () => {
      const z =
        codec === Compression.Gzip ? zlib.gzipSync(zeros, { level: 1 }) : await compress(codec, zeros);
      assert.ok(z.length < 4 * MiB, `${z.length} compressed bytes`);
      await quick(decompress(codec, z));
      await quick(decompress(codec, z, MiB));
      if (codec !== Compression.Zstd) assert.throws(() => decompressSync(codec, z, MiB), isDecodeError);
      // Just under a cap decodes fine.
      const small = Buffer.alloc(MiB - 1);
      assert.equal((await decompress(codec, await compress(codec, small), MiB)).length, MiB - 1);
    });
  }

  it('snappy: a raw block claiming 4 GiB is refused before decoding', async () => {
    await quick(decompress(Compression.Snappy, hex('ffffffff0f 00')));
    const xerial = Buffer.concat([XERIAL_MAGIC, hex('00000001 00000001 00000006 ffffffff0f 00')]);
    await quick(decompress(Compression.Snappy, xerial));
  });

  it('lz4: a declared content size of 1 TiB is refused', async () => {
    const frame = Buffer.concat([hex('04224d18 68 40'), hex('0000000000010000'), hex('00 00000000')]);
    await quick(decompress(Compression.Lz4, frame));
  });

  it('zstd: a declared size of 1 TiB, or thousands of max-size RLE blocks, are refused', async () => {
    const rle = (last: boolean) =>
      Buffer.from([
        (((128 * 1024) << 3) & 0xff) | (1 << 1) | (last ? 1 : 0),
        (((128 * 1024) << 3) >> 8) & 0xff,
        ((128 * 1024) << 3) >> 16,
        0,
      ]);
    const blocks = Array.from({ length: 1000 }, (_, i) => rle(i === 999));
    const noSize = Buffer.concat([hex('28b52ffd 00 58'), ...blocks]);
    assert.equal(zstdDecompressedBound(noSize), 1000 * 128 * 1024);
    await quick(decompress(Compression.Zstd, noSize));
    const claimed = Buffer.concat([hex('28b52ffd c0 58'), hex('0000000000010000'), rle(true)]);
    await quick(decompress(Compression.Zstd, claimed, 64 * 1024));
  });

  it('decodeRecordBatch honours maxDecompressedBytes', async () => {
    for (const codec of CODECS) {
      const buf = await encodeRecordBatch({
        records: [{ value: Buffer.alloc(2 * MiB) }],
        compression: codec,
      });
      await assert.rejects(decodeRecordBatch(buf, 0, { maxDecompressedBytes: MiB }), isDecodeError);
      assert.equal(
        (await decodeRecordBatch(buf, 0, { maxDecompressedBytes: 3 * MiB })).records[0]!.value!.length,
        2 * MiB,
      );
    }
  });
});
