/**
 * Hostile record batches for tests: compression bombs (> 1 GiB when decompressed) in every codec
 * Kafka has, and raw v2 batches whose header lies about its records. Each batch has a valid
 * CRC-32C, so it passes the produce path's header checks; only decoding its records exposes it.
 */

import zlib from 'node:zlib';
import * as lz4 from 'lz4-napi';
import { Compression, computeBatchCrc } from '../../src/protocol/records/batch-header.js';

export const GIB = 1 << 30;

/** A v2 batch around a raw records section (header fields as given, CRC computed). */
export function rawBatch(opts: {
  section: Buffer;
  compression?: Compression;
  recordsCount: number;
  lastOffsetDelta?: number;
  timestampMs: number;
}): Buffer {
  const buf = Buffer.alloc(61 + opts.section.length);
  buf.writeBigInt64BE(0n, 0);
  buf.writeInt32BE(buf.length - 12, 8);
  buf.writeInt32BE(-1, 12);
  buf.writeInt8(2, 16);
  buf.writeInt16BE(opts.compression ?? Compression.None, 21);
  buf.writeInt32BE(opts.lastOffsetDelta ?? Math.max(0, opts.recordsCount - 1), 23);
  buf.writeBigInt64BE(BigInt(opts.timestampMs), 27);
  buf.writeBigInt64BE(BigInt(opts.timestampMs), 35);
  buf.writeBigInt64BE(-1n, 43);
  buf.writeInt16BE(-1, 51);
  buf.writeInt32BE(-1, 53);
  buf.writeInt32BE(opts.recordsCount, 57);
  opts.section.copy(buf, 61);
  buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), 17);
  return buf;
}

/** One uncompressed record (key, value) as it sits in a batch's records section. */
export function plainRecord(key: string | null, value: string, offsetDelta = 0): Buffer {
  const varint = (n: number): Buffer => {
    let z = (n << 1) ^ (n >> 31);
    const out: number[] = [];
    while (z & ~0x7f) {
      out.push((z & 0x7f) | 0x80);
      z >>>= 7;
    }
    out.push(z);
    return Buffer.from(out);
  };
  const bytes = (s: string | null): Buffer =>
    s === null ? varint(-1) : Buffer.concat([varint(Buffer.byteLength(s)), Buffer.from(s)]);
  const body = Buffer.concat([
    Buffer.from([0]),
    varint(0),
    varint(offsetDelta),
    bytes(key),
    bytes(value),
    varint(0),
  ]);
  return Buffer.concat([varint(body.length), body]);
}

/** gzip: members of 64 MiB of zeros, concatenated (multi-member streams are valid gzip). */
export function gzipBomb(totalBytes = GIB + (64 << 20)): Buffer {
  const member = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  return Buffer.concat(Array.from({ length: Math.ceil(totalBytes / (64 << 20)) }, () => member));
}

/** zstd: one frame of RLE blocks (128 KiB of zeros each, 4 bytes on the wire). */
export function zstdBomb(totalBytes = GIB + (128 << 10), declareSize = true): Buffer {
  const blocks = Math.ceil(totalBytes / (128 << 10));
  const parts: Buffer[] = [];
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0xfd2fb528, 0);
  parts.push(magic);
  if (declareSize) {
    // Frame_Header_Descriptor: FCS 8 bytes, single segment.
    const h = Buffer.alloc(9);
    h[0] = 0xe0;
    h.writeBigUInt64LE(BigInt(blocks) * 131072n, 1);
    parts.push(h);
  } else {
    // No content size; window descriptor for a 128 KiB window (exponent 7 -> 2^(10+7)).
    parts.push(Buffer.from([0x00, 7 << 3]));
  }
  for (let i = 0; i < blocks; i++) {
    const last = i === blocks - 1 ? 1 : 0;
    const header = last | (1 << 1) | (131072 << 3); // RLE block of 128 KiB
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x00]));
  }
  return Buffer.concat(parts);
}

/** lz4 frame: 4 MiB blocks of zeros, each compressed to ~16 KiB, repeated. */
export function lz4Bomb(totalBytes = GIB + (4 << 20)): Buffer {
  const prefixed = lz4.compressSync(Buffer.alloc(4 << 20));
  const block = prefixed.subarray(4); // lz4-napi prefixes the uncompressed size
  const word = Buffer.alloc(4);
  word.writeUInt32LE(block.length, 0);
  const header = Buffer.alloc(7);
  header.writeUInt32LE(0x184d2204, 0);
  header[4] = 0x60; // version 01, independent blocks
  header[5] = 0x70; // 4 MiB block maximum
  header[6] = 0x00; // header checksum (not verified by Sluice; Kafka's old writers got it wrong)
  const n = Math.ceil(totalBytes / (4 << 20));
  const parts: Buffer[] = [header];
  for (let i = 0; i < n; i++) parts.push(word, block);
  parts.push(Buffer.alloc(4)); // EndMark
  return Buffer.concat(parts);
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/**
 * snappy: a raw snappy block whose preamble declares `declared` bytes (the decoder allocates by
 * the preamble); `xerial` wraps it in snappy-java's stream framing, the form Java clients send.
 */
export function snappyBomb(declared = 2 * GIB, xerial = true): Buffer {
  // Literal of 1 zero byte, then copies of it (tag 0b10: copy with 2-byte offset, up to 64 bytes).
  const body: number[] = [0x00, 0x00];
  for (let i = 0; i < 1000; i++) body.push(((64 - 1) << 2) | 0x02, 0x01, 0x00);
  const raw = Buffer.concat([uvarint(declared), Buffer.from(body)]);
  if (!xerial) return raw;
  const head = Buffer.alloc(16);
  Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]).copy(head, 0);
  head.writeInt32BE(1, 8);
  head.writeInt32BE(1, 12);
  const len = Buffer.alloc(4);
  len.writeInt32BE(raw.length, 0);
  return Buffer.concat([head, len, raw]);
}
