/**
 * Kafka wire primitives: a bounds-checked Reader and a growable Writer.
 *
 * The Reader owns one invariant: it never reads or allocates past the bytes it was given.
 * Every length or element count is checked against the bytes that remain before anything is
 * allocated, so a hostile frame claiming 2^31-1 elements fails fast with a DecodeError instead
 * of exhausting memory. Every array element takes at least one byte on the wire, which is what
 * makes "count <= remaining" a sound bound.
 *
 * The Writer grows geometrically and hands out a view (not a copy) of what was written.
 */

/** Thrown when bytes do not decode: truncated, oversized, or out of range. Never a broker bug. */
export class DecodeError extends Error {
  readonly code = 'DECODE_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecodeError';
  }
}

const textDecoder = new TextDecoder('utf-8', { fatal: false });

/** Most tagged fields one struct may carry (Kafka's schemas use a few). */
export const TAGGED_FIELDS_MAX = 4096;

/** Tagged fields we do not know are kept raw so they can be re-encoded or ignored. */
export interface RawTaggedField {
  tag: number;
  data: Uint8Array;
}

export class Reader {
  readonly buf: Buffer;
  offset: number;
  readonly end: number;

  constructor(buf: Buffer, offset = 0, end = buf.length) {
    this.buf = buf;
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws unless `n` more bytes are present. */
  need(n: number, what = 'bytes'): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new DecodeError(`truncated: need ${n} ${what} at offset ${this.offset}, have ${this.remaining}`);
    }
  }

  /** Checks an element count against the remaining bytes (each element takes at least `minBytes`). */
  checkCount(count: number, minBytes = 1, what = 'array'): void {
    if (count < 0 || count * minBytes > this.remaining) {
      throw new DecodeError(`${what} count ${count} exceeds the ${this.remaining} bytes that remain`);
    }
  }

  int8(): number {
    this.need(1);
    return this.buf.readInt8(this.offset++);
  }
  uint8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  /**
   * int64 as a JS number. Exact for |v| < 2^53, which covers every offset, timestamp and
   * producer id a broker hands out; use int64Big() where the full range matters.
   */
  int64(): number {
    this.need(8);
    const hi = this.buf.readInt32BE(this.offset);
    const lo = this.buf.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return hi * 4294967296 + lo;
  }
  int64Big(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  float64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }
  uuid(): string {
    this.need(16);
    const hex = this.buf.toString('hex', this.offset, this.offset + 16);
    this.offset += 16;
    return hex;
  }

  /** Unsigned LEB128 varint, at most 5 bytes (32 bits). */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      this.need(1, 'varint byte');
      const b = this.buf[this.offset++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    throw new DecodeError('varint longer than 5 bytes');
  }
  /** Zig-zag signed varint (32 bits). */
  varint(): number {
    const u = this.uvarint();
    return (u >>> 1) ^ -(u & 1);
  }
  /** Zig-zag signed varlong (64 bits). */
  varlong(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      this.need(1, 'varlong byte');
      const b = this.buf[this.offset++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (result >> 1n) ^ -(result & 1n);
      shift += 7n;
    }
    throw new DecodeError('varlong longer than 10 bytes');
  }

  /**
   * Zig-zag signed varlong as a JS number. Up to 7 bytes (49 bits) decode without BigInt, which
   * covers every realistic timestamp delta; longer encodings go through varlong() and must land
   * in the safe-integer range, because a silently rounded timestamp is worse than an error.
   */
  varlongNumber(): number {
    const start = this.offset;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      this.need(1, 'varlong byte');
      const b = this.buf[this.offset++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      mul *= 128;
    }
    this.offset = start;
    const v = this.varlong();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError(`varlong ${v} is outside the safe integer range`);
    }
    return Number(v);
  }

  rawBytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  private utf8(n: number): string {
    this.need(n, 'string bytes');
    const s = textDecoder.decode(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return s;
  }

  string(): string {
    const n = this.int16();
    if (n < 0) throw new DecodeError('null string where a non-nullable string was expected');
    return this.utf8(n);
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return this.utf8(n);
  }
  compactString(): string {
    const n = this.uvarint() - 1;
    if (n < 0) throw new DecodeError('null compact string where a non-nullable string was expected');
    return this.utf8(n);
  }
  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    return this.utf8(n);
  }
  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) throw new DecodeError('null bytes where non-nullable bytes were expected');
    return this.rawBytes(n);
  }
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    return this.rawBytes(n);
  }
  compactBytes(): Buffer {
    const n = this.uvarint() - 1;
    if (n < 0) throw new DecodeError('null compact bytes where non-nullable bytes were expected');
    return this.rawBytes(n);
  }
  compactNullableBytes(): Buffer | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    return this.rawBytes(n);
  }

  /** Array length (int32, -1 = null). Checked against remaining bytes. */
  arrayLength(minElementBytes = 1): number {
    const n = this.int32();
    if (n < 0) return -1;
    this.checkCount(n, minElementBytes);
    return n;
  }
  /** Compact array length (uvarint N+1, 0 = null). Checked against remaining bytes. */
  compactArrayLength(minElementBytes = 1): number {
    const n = this.uvarint() - 1;
    if (n < 0) return -1;
    this.checkCount(n, minElementBytes);
    return n;
  }

  /**
   * Reads a tagged-field section. Known tags are handed to `onTag`, which must consume exactly
   * `size` bytes (checked); unknown tags are skipped and returned raw.
   */
  taggedFields(onTag?: (tag: number, size: number) => boolean): RawTaggedField[] | undefined {
    const count = this.uvarint();
    this.checkCount(count, 2, 'tagged field');
    // No schema has more than a handful of tags; a flood of unknown ones would only cost memory.
    if (count > TAGGED_FIELDS_MAX)
      throw new DecodeError(`${count} tagged fields exceed the limit of ${TAGGED_FIELDS_MAX}`);
    let unknown: RawTaggedField[] | undefined;
    let lastTag = -1;
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      if (tag <= lastTag) throw new DecodeError(`tagged fields out of order: ${tag} after ${lastTag}`);
      lastTag = tag;
      const size = this.uvarint();
      this.need(size, 'tagged field bytes');
      const start = this.offset;
      const fieldEnd = start + size;
      if (onTag?.(tag, size)) {
        if (this.offset !== fieldEnd) {
          throw new DecodeError(`tagged field ${tag} declared ${size} bytes but used ${this.offset - start}`);
        }
      } else {
        (unknown ??= []).push({ tag, data: this.buf.subarray(start, fieldEnd) });
        this.offset = fieldEnd;
      }
    }
    return unknown;
  }
}

const textEncoder = new TextEncoder();
const UUID_HEX = /^[0-9a-fA-F]{32}$/;

export class Writer {
  buf: Buffer;
  offset = 0;
  /**
   * Zero-copy mode (opt-in): byte arrays of at least this size are not copied but referenced, and
   * the result is read with chunks() and written with a gathered write. 0 turns it off.
   */
  private readonly zeroCopyMinBytes: number;
  /** Referenced byte arrays and the position in `buf` where each belongs. */
  private external: { at: number; bytes: Uint8Array }[] | null = null;
  private externalBytes = 0;

  constructor(initialSize = 256, options: { zeroCopyMinBytes?: number } = {}) {
    this.buf = Buffer.allocUnsafe(initialSize);
    this.zeroCopyMinBytes = options.zeroCopyMinBytes ?? 0;
  }

  /** Bytes written so far, referenced byte arrays included. */
  get byteLength(): number {
    return this.offset + this.externalBytes;
  }

  /**
   * The written bytes as a list of buffers in order, without copying referenced byte arrays.
   * Valid until the next write.
   */
  chunks(): Buffer[] {
    if (!this.external) return [this.buf.subarray(0, this.offset)];
    const out: Buffer[] = [];
    let pos = 0;
    for (const e of this.external) {
      if (e.at > pos) out.push(this.buf.subarray(pos, e.at));
      out.push(
        Buffer.isBuffer(e.bytes) ? e.bytes : Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.length),
      );
      pos = e.at;
    }
    if (this.offset > pos) out.push(this.buf.subarray(pos, this.offset));
    return out;
  }

  private ensure(n: number): void {
    const needed = this.offset + n;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  /** A view of the written bytes; valid until the next write. */
  view(): Buffer {
    if (this.external) return Buffer.concat(this.chunks());
    return this.buf.subarray(0, this.offset);
  }
  /** A copy of the written bytes that outlives the writer. */
  toBuffer(): Buffer {
    return Buffer.from(this.view());
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf.writeInt8(v, this.offset);
    this.offset += 1;
    return this;
  }
  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.offset++] = v & 0xff;
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.offset);
    this.offset += 2;
    return this;
  }
  uint16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.offset);
    this.offset += 2;
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.offset);
    this.offset += 4;
    return this;
  }
  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.offset);
    this.offset += 4;
    return this;
  }
  /** int64 from a JS number (exact for |v| < 2^53). */
  int64(v: number): this {
    this.ensure(8);
    const hi = Math.floor(v / 4294967296);
    this.buf.writeInt32BE(hi | 0, this.offset);
    this.buf.writeUInt32BE((v - hi * 4294967296) >>> 0, this.offset + 4);
    this.offset += 8;
    return this;
  }
  int64Big(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.offset);
    this.offset += 8;
    return this;
  }
  float64(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.offset);
    this.offset += 8;
    return this;
  }
  uuid(hex: string): this {
    // A malformed id must never put stale buffer bytes on the wire.
    if (!UUID_HEX.test(hex)) throw new RangeError(`uuid must be 32 hex characters, got "${hex}"`);
    this.ensure(16);
    this.buf.write(hex, this.offset, 16, 'hex');
    this.offset += 16;
    return this;
  }
  uvarint(v: number): this {
    this.ensure(5);
    let x = v >>> 0;
    while (x >= 0x80) {
      this.buf[this.offset++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    this.buf[this.offset++] = x;
    return this;
  }
  varint(v: number): this {
    return this.uvarint(((v << 1) ^ (v >> 31)) >>> 0);
  }
  varlong(v: bigint): this {
    this.ensure(10);
    let x = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    while (x >= 0x80n) {
      this.buf[this.offset++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.offset++] = Number(x);
    return this;
  }
  /** Zig-zag signed varlong from a JS integer; the number path avoids BigInt for |v| < 2^48. */
  varlongNumber(v: number): this {
    if (!Number.isInteger(v)) throw new RangeError(`varlong value ${v} is not an integer`);
    if (v >= 2 ** 48 || v <= -(2 ** 48)) return this.varlong(BigInt(v));
    this.ensure(10);
    let x = v >= 0 ? v * 2 : -v * 2 - 1;
    while (x >= 0x80) {
      this.buf[this.offset++] = (x % 128) | 0x80;
      x = Math.floor(x / 128);
    }
    this.buf[this.offset++] = x;
    return this;
  }
  raw(b: Uint8Array): this {
    if (this.zeroCopyMinBytes > 0 && b.length >= this.zeroCopyMinBytes) {
      (this.external ??= []).push({ at: this.offset, bytes: b });
      this.externalBytes += b.length;
      return this;
    }
    this.ensure(b.length);
    this.buf.set(b, this.offset);
    this.offset += b.length;
    return this;
  }

  string(s: string): this {
    const b = textEncoder.encode(s);
    if (b.length > 0x7fff) throw new RangeError(`string of ${b.length} bytes exceeds the int16 length limit`);
    this.int16(b.length);
    return this.raw(b);
  }
  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    return this.string(s);
  }
  compactString(s: string): this {
    const b = textEncoder.encode(s);
    this.uvarint(b.length + 1);
    return this.raw(b);
  }
  compactNullableString(s: string | null): this {
    if (s === null) return this.uvarint(0);
    return this.compactString(s);
  }
  bytes(b: Uint8Array): this {
    this.int32(b.length);
    return this.raw(b);
  }
  nullableBytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    return this.bytes(b);
  }
  compactBytes(b: Uint8Array): this {
    this.uvarint(b.length + 1);
    return this.raw(b);
  }
  compactNullableBytes(b: Uint8Array | null): this {
    if (b === null) return this.uvarint(0);
    return this.compactBytes(b);
  }

  /** Reserves a big-endian int32 and returns a function that fills it with the bytes written since. */
  lengthPrefix32(): () => void {
    const at = this.offset;
    const externalBefore = this.externalBytes;
    this.int32(0);
    return () => {
      this.buf.writeInt32BE(this.offset - at - 4 + (this.externalBytes - externalBefore), at);
    };
  }
}

/** Bytes a uvarint of `v` takes. */
export function uvarintSize(v: number): number {
  let x = v >>> 0;
  let n = 1;
  while (x >= 0x80) {
    x >>>= 7;
    n++;
  }
  return n;
}
