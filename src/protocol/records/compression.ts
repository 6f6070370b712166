/**
 * Record-batch compression codecs (the records section of a v2 batch), in the exact framings the
 * Java client and librdkafka put on the wire:
 *   gzip   — RFC 1952 (node:zlib); multi-member streams accepted.
 *   snappy — xerial framing (`\x82SNAPPY\x00`, int32 version, int32 compat, then [int32 len][raw
 *            snappy block]...), which is what Java and librdkafka write; decode also accepts a
 *            bare raw-snappy block, as Kafka's own readers do.
 *   lz4    — LZ4 *frame* format (magic 0x184D2204). lz4-napi's compress/uncompress are *block*
 *            format (with a 4-byte size prefix), so decode walks the frame here and feeds each
 *            block to the native block decoder; encode uses lz4-napi's frame encoder.
 *   zstd   — standard zstd frames (@mongodb-js/zstd v1).
 *
 * Invariant: decompress never produces or allocates much more than `maxBytes`. Each codec bounds
 * its output before doing the expensive work (declared sizes, per-block maxima) and checks the
 * real output afterwards; a "compression bomb" fails with DecodeError instead of eating memory.
 * Every failure to decode untrusted bytes surfaces as DecodeError; the native libraries' own
 * errors are kept as `cause`.
 */

import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type * as Zstd from '@mongodb-js/zstd';
import type * as Lz4 from 'lz4-napi';
import type * as Snappy from 'snappy';
import { DecodeError } from '../primitives.js';
import { Compression } from './batch-header.js';

export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

// The native codecs are loaded on first use (all three are CommonJS, so synchronously), not at
// start-up: most brokers never see a compressed batch of each kind, and loading them is a
// measurable part of `sluice start`'s time (docs/benchmarks.md, "Startup time").
const require = createRequire(import.meta.url);
function loadOnFirstUse<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(name) as T;
    return loaded;
  };
}
const snappy = loadOnFirstUse<typeof Snappy>('snappy');
const lz4 = loadOnFirstUse<typeof Lz4>('lz4-napi');
const zstd = loadOnFirstUse<typeof Zstd>('@mongodb-js/zstd');

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);

export function compressionName(codec: Compression): string {
  switch (codec) {
    case Compression.None:
      return 'none';
    case Compression.Gzip:
      return 'gzip';
    case Compression.Snappy:
      return 'snappy';
    case Compression.Lz4:
      return 'lz4';
    case Compression.Zstd:
      return 'zstd';
    default:
      return `unknown(${codec as number})`;
  }
}

function unknownCodec(codec: number): DecodeError {
  return new DecodeError(`unknown compression codec ${codec}`);
}

/** Wraps a native library's failure on untrusted bytes; DecodeErrors pass through untouched. */
function asDecodeError(codec: Compression, err: unknown): DecodeError {
  if (err instanceof DecodeError) return err;
  const code = (err as { code?: string } | null)?.code;
  if (code === 'ERR_BUFFER_TOO_LARGE') {
    return new DecodeError(`${compressionName(codec)} output exceeds the decompression limit`, {
      cause: err,
    });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new DecodeError(`${compressionName(codec)} data does not decompress: ${msg}`, { cause: err });
}

function tooLarge(codec: Compression, claimed: number, maxBytes: number): DecodeError {
  return new DecodeError(
    `${compressionName(codec)} data would decompress to ${claimed} bytes, over the limit of ${maxBytes}`,
  );
}

// ---------------------------------------------------------------------------------------------
// snappy (xerial framing)

/** `\x82SNAPPY\x00` — the xerial snappy-java stream magic. */
export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
/** snappy-java's SnappyOutputStream default block size; the Java producer uses it. */
const XERIAL_BLOCK_BYTES = 32 * 1024;

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, 8).equals(XERIAL_MAGIC);
}

/** Reads the uncompressed length a raw snappy block declares in its uvarint preamble. */
function snappyDeclaredLength(block: Buffer): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 5 && i < block.length; i++) {
    const b = block[i]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return result;
    mul *= 128;
  }
  throw new DecodeError('snappy block preamble is truncated or longer than 5 bytes');
}

function snappyCompressXerial(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(XERIAL_HEADER_BYTES);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(1, 8); // version
  header.writeInt32BE(1, 12); // minimum compatible version
  parts.push(header);
  for (let i = 0; i < data.length; i += XERIAL_BLOCK_BYTES) {
    const block = snappy().compressSync(data.subarray(i, i + XERIAL_BLOCK_BYTES));
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

function snappyUncompressBlock(block: Buffer): Buffer {
  const out = snappy().uncompressSync(block, { asBuffer: true });
  return typeof out === 'string' ? Buffer.from(out) : out;
}

function snappyDecompress(data: Buffer, maxBytes: number): Buffer {
  if (!isXerial(data)) {
    const declared = snappyDeclaredLength(data);
    if (declared > maxBytes) throw tooLarge(Compression.Snappy, declared, maxBytes);
    return snappyUncompressBlock(data);
  }
  // First pass: walk the chunk framing and sum declared sizes, so nothing is decompressed
  // (or allocated) when the total would exceed the cap.
  const blocks: Buffer[] = [];
  let total = 0;
  let at = XERIAL_HEADER_BYTES;
  while (at < data.length) {
    // snappy-java accepts concatenated streams: a fresh header may follow a chunk.
    if (data.length - at >= XERIAL_HEADER_BYTES && data.subarray(at, at + 8).equals(XERIAL_MAGIC)) {
      at += XERIAL_HEADER_BYTES;
      continue;
    }
    if (data.length - at < 4) throw new DecodeError(`xerial snappy chunk length truncated at ${at}`);
    const len = data.readInt32BE(at);
    at += 4;
    if (len < 0 || len > data.length - at) {
      throw new DecodeError(
        `xerial snappy chunk of ${len} bytes at ${at - 4} exceeds the ${data.length - at} bytes left`,
      );
    }
    const block = data.subarray(at, at + len);
    at += len;
    total += snappyDeclaredLength(block);
    if (total > maxBytes) throw tooLarge(Compression.Snappy, total, maxBytes);
    blocks.push(block);
  }
  const out = Buffer.allocUnsafe(total);
  let w = 0;
  for (const block of blocks) {
    const plain = snappyUncompressBlock(block);
    if (w + plain.length > total) throw new DecodeError('snappy block decompressed past its declared length');
    plain.copy(out, w);
    w += plain.length;
  }
  return w === total ? out : out.subarray(0, w);
}

// ---------------------------------------------------------------------------------------------
// lz4 (frame format)

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX: Record<number, number> = {
  4: 64 * 1024,
  5: 256 * 1024,
  6: 1024 * 1024,
  7: 4 * 1024 * 1024,
};
/** Linked blocks may reference up to this much of the previous output. */
const LZ4_WINDOW = 64 * 1024;

function isSkippableFrame(magic: number): boolean {
  return (magic & 0xfffffff0) === 0x184d2a50;
}

/**
 * Decodes one or more LZ4 frames. Header and content checksums are not verified: the batch's
 * CRC-32C already covers these bytes, and Kafka's pre-0.10 writers computed the header checksum
 * wrongly, so strictness here would only reject data the batch CRC has already vouched for.
 */
function lz4Decompress(data: Buffer, maxBytes: number): Buffer {
  const out: Buffer[] = [];
  let total = 0;
  let at = 0;
  const need = (n: number, what: string): void => {
    if (n > data.length - at) throw new DecodeError(`lz4 frame truncated reading ${what} at ${at}`);
  };
  while (at < data.length) {
    need(4, 'magic');
    const magic = data.readUInt32LE(at);
    at += 4;
    if (isSkippableFrame(magic)) {
      need(4, 'skippable frame size');
      const size = data.readUInt32LE(at);
      at += 4;
      need(size, 'skippable frame');
      at += size;
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new DecodeError(`bad lz4 frame magic 0x${magic.toString(16)}`);
    need(2, 'frame descriptor');
    const flg = data[at]!;
    const bd = data[at + 1]!;
    at += 2;
    if (flg >> 6 !== 1) throw new DecodeError(`unsupported lz4 frame version ${flg >> 6}`);
    if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0)
      throw new DecodeError('lz4 frame descriptor reserved bits set');
    const independent = (flg & 0x20) !== 0;
    const blockChecksum = (flg & 0x10) !== 0;
    const hasContentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const hasDictId = (flg & 0x01) !== 0;
    const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 0x07];
    if (blockMax === undefined) throw new DecodeError(`bad lz4 block maximum size id ${(bd >> 4) & 0x07}`);
    if (hasContentSize) {
      need(8, 'content size');
      const declared = data.readUInt32LE(at + 4) * 4294967296 + data.readUInt32LE(at);
      if (total + declared > maxBytes) throw tooLarge(Compression.Lz4, total + declared, maxBytes);
      at += 8;
    }
    if (hasDictId) throw new DecodeError('lz4 frames with a dictionary id are not supported');
    need(1, 'header checksum');
    at += 1;
    const frameStart = out.length;
    for (;;) {
      need(4, 'block size');
      const word = data.readUInt32LE(at);
      at += 4;
      if (word === 0) break; // EndMark
      const uncompressed = (word & 0x80000000) !== 0;
      const size = word & 0x7fffffff;
      if (size > blockMax)
        throw new DecodeError(`lz4 block of ${size} bytes exceeds the frame's ${blockMax}-byte maximum`);
      need(size, 'block');
      const block = data.subarray(at, at + size);
      at += size;
      if (blockChecksum) {
        need(4, 'block checksum');
        at += 4;
      }
      let plain: Buffer;
      if (uncompressed) {
        plain = block;
      } else {
        // lz4-napi's block decoder takes a 4-byte LE size prefix, allocates that much (zeroed)
        // and accepts shorter output. Every compressed byte yields at most 255 output bytes
        // (a match-length extension byte), so the prefix is min(blockMax, 255*size + 64): exact
        // enough that thousands of tiny blocks in a 4 MiB-block frame do not each cost a 4 MiB
        // allocation, and never more than one block's worth (<= 4 MiB) beyond the cap below.
        const prefixed = Buffer.allocUnsafe(4 + size);
        prefixed.writeUInt32LE(Math.min(blockMax, size * 255 + 64), 0);
        block.copy(prefixed, 4);
        let dict: Buffer | undefined;
        if (!independent && out.length > frameStart) dict = lastBytes(out, frameStart, LZ4_WINDOW);
        try {
          plain = lz4().uncompressSync(prefixed, dict);
        } catch (err) {
          throw asDecodeError(Compression.Lz4, err);
        }
        if (plain.length > blockMax) throw new DecodeError('lz4 block decompressed past the block maximum');
      }
      total += plain.length;
      if (total > maxBytes) throw tooLarge(Compression.Lz4, total, maxBytes);
      out.push(plain);
    }
    if (contentChecksum) {
      need(4, 'content checksum');
      at += 4;
    }
  }
  return out.length === 1 ? out[0]! : Buffer.concat(out, total);
}

/** The last `n` bytes of out[from..], as one buffer (the linked-block dictionary). */
function lastBytes(out: Buffer[], from: number, n: number): Buffer {
  const picked: Buffer[] = [];
  let have = 0;
  for (let i = out.length - 1; i >= from && have < n; i--) {
    const b = out[i]!;
    const take = Math.min(b.length, n - have);
    picked.unshift(b.subarray(b.length - take));
    have += take;
  }
  return picked.length === 1 ? picked[0]! : Buffer.concat(picked, have);
}

// ---------------------------------------------------------------------------------------------
// zstd

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * Upper bound of what the zstd frames in `data` decompress to, from the frame headers and block
 * headers alone: declared content sizes where present, otherwise the sum of per-block maxima
 * (raw = its size, RLE = its declared size, compressed <= 128 KiB). @mongodb-js/zstd has no
 * output cap, so this walk is what stands between a bomb and the allocator.
 */
export function zstdDecompressedBound(data: Buffer): number {
  let at = 0;
  let total = 0;
  const need = (n: number, what: string): void => {
    if (n > data.length - at) throw new DecodeError(`zstd frame truncated reading ${what} at ${at}`);
  };
  while (at < data.length) {
    need(4, 'magic');
    const magic = data.readUInt32LE(at);
    at += 4;
    if (isSkippableFrame(magic)) {
      need(4, 'skippable frame size');
      const size = data.readUInt32LE(at);
      at += 4;
      need(size, 'skippable frame');
      at += size;
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new DecodeError(`bad zstd frame magic 0x${magic.toString(16)}`);
    need(1, 'frame header descriptor');
    const fhd = data[at++]!;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd & 0x20) !== 0;
    if ((fhd & 0x08) !== 0) throw new DecodeError('zstd frame header reserved bit set');
    const hasChecksum = (fhd & 0x04) !== 0;
    const dictIdBytes = [0, 1, 2, 4][fhd & 0x03]!;
    if (!singleSegment) {
      need(1, 'window descriptor');
      at += 1;
    }
    need(dictIdBytes, 'dictionary id');
    at += dictIdBytes;
    const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
    need(fcsBytes, 'frame content size');
    let declared = -1;
    if (fcsBytes === 1) declared = data[at]!;
    else if (fcsBytes === 2) declared = data.readUInt16LE(at) + 256;
    else if (fcsBytes === 4) declared = data.readUInt32LE(at);
    else if (fcsBytes === 8) declared = data.readUInt32LE(at + 4) * 4294967296 + data.readUInt32LE(at);
    at += fcsBytes;
    let blocksBound = 0;
    for (;;) {
      need(3, 'block header');
      const h = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
      at += 3;
      const last = (h & 1) !== 0;
      const type = (h >> 1) & 3;
      const size = h >>> 3;
      if (size > ZSTD_BLOCK_MAX) throw new DecodeError(`zstd block size ${size} exceeds 128 KiB`);
      if (type === 0) {
        need(size, 'raw block');
        at += size;
        blocksBound += size;
      } else if (type === 1) {
        need(1, 'RLE block');
        at += 1;
        blocksBound += size;
      } else if (type === 2) {
        need(size, 'compressed block');
        at += size;
        blocksBound += ZSTD_BLOCK_MAX;
      } else {
        throw new DecodeError('zstd reserved block type');
      }
      if (last) break;
    }
    if (hasChecksum) {
      need(4, 'content checksum');
      at += 4;
    }
    total += declared >= 0 ? Math.min(declared, blocksBound) : blocksBound;
  }
  return total;
}

async function zstdDecompress(data: Buffer, maxBytes: number): Promise<Buffer> {
  const bound = zstdDecompressedBound(data);
  if (bound > maxBytes) throw tooLarge(Compression.Zstd, bound, maxBytes);
  let out: Buffer;
  try {
    out = await zstd().decompress(data);
  } catch (err) {
    throw asDecodeError(Compression.Zstd, err);
  }
  if (out.length > maxBytes) throw tooLarge(Compression.Zstd, out.length, maxBytes);
  return out;
}

// ---------------------------------------------------------------------------------------------
// public API

/** Compresses a records section with `codec`, in the framing Kafka clients expect. */
export async function compress(codec: Compression, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case Compression.None:
      return data;
    case Compression.Gzip:
      return gzipAsync(data);
    case Compression.Snappy:
      return snappyCompressXerial(data);
    case Compression.Lz4:
      return lz4().compressFrame(data);
    case Compression.Zstd:
      return zstd().compress(data);
    default:
      throw unknownCodec(codec);
  }
}

/** Synchronous compress; zstd has no synchronous API in @mongodb-js/zstd v1 and throws. */
export function compressSync(codec: Compression, data: Buffer): Buffer {
  switch (codec) {
    case Compression.None:
      return data;
    case Compression.Gzip:
      return zlib.gzipSync(data);
    case Compression.Snappy:
      return snappyCompressXerial(data);
    case Compression.Lz4:
      return lz4().compressFrameSync(data);
    case Compression.Zstd:
      throw new Error('zstd has no synchronous compressor; use compress()');
    default:
      throw unknownCodec(codec);
  }
}

/**
 * Decompresses `data` (untrusted) with `codec`, producing at most `maxBytes` bytes. Anything
 * malformed, or anything that would expand past `maxBytes`, throws DecodeError.
 */
export async function decompress(
  codec: Compression,
  data: Buffer,
  maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Promise<Buffer> {
  try {
    switch (codec) {
      case Compression.None:
        return data;
      case Compression.Gzip:
        return await gunzipAsync(data, { maxOutputLength: Math.max(1, maxBytes) });
      case Compression.Snappy:
        return snappyDecompress(data, maxBytes);
      case Compression.Lz4:
        return lz4Decompress(data, maxBytes);
      case Compression.Zstd:
        return await zstdDecompress(data, maxBytes);
      default:
        throw unknownCodec(codec);
    }
  } catch (err) {
    throw asDecodeError(codec, err);
  }
}

/** Synchronous decompress for every codec but zstd (which throws a plain Error). */
export function decompressSync(
  codec: Compression,
  data: Buffer,
  maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Buffer {
  if (codec === Compression.Zstd) throw new Error('zstd has no synchronous decompressor; use decompress()');
  try {
    switch (codec) {
      case Compression.None:
        return data;
      case Compression.Gzip:
        return zlib.gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) });
      case Compression.Snappy:
        return snappyDecompress(data, maxBytes);
      case Compression.Lz4:
        return lz4Decompress(data, maxBytes);
      default:
        throw unknownCodec(codec);
    }
  } catch (err) {
    throw asDecodeError(codec, err);
  }
}

export const compressionInternals = { snappyDeclaredLength, isXerial, lz4Decompress, XERIAL_BLOCK_BYTES };
