/**
 * Goal: the Writer's zero-copy mode produces exactly the bytes of the copying mode, while large
 * byte arrays are referenced rather than copied.
 * Method: encode the same fields with both modes and compare; check identity of the referenced
 * buffer; a length prefix spanning a referenced array counts its bytes.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Writer } from './primitives.js';

function encode(w: Writer, parts: Buffer[]): void {
  w.int32(7);
  for (const p of parts) {
    w.compactBytes(p);
    w.int16(-1);
  }
}

test('zero-copy chunks equal the copied bytes', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        { maxLength: 8 },
      ),
      (parts) => {
        const copy = new Writer(8);
        encode(copy, parts);
        const zc = new Writer(8, { zeroCopyMinBytes: 100 });
        encode(zc, parts);
        assert.deepEqual(Buffer.concat(zc.chunks()), copy.view());
        assert.deepEqual(zc.view(), copy.view());
        assert.equal(zc.byteLength, copy.byteLength);
      },
    ),
  );
});

test('large arrays are referenced, not copied; length prefixes count them', () => {
  const big = Buffer.alloc(1000, 3);
  const w = new Writer(16, { zeroCopyMinBytes: 512 });
  const done = w.lengthPrefix32();
  w.int8(1);
  w.raw(big);
  w.int8(2);
  done();
  const chunks = w.chunks();
  assert.equal(chunks.length, 3);
  assert.equal(chunks[1], big, 'the same Buffer object, not a copy');
  const all = Buffer.concat(chunks);
  assert.equal(all.readInt32BE(0), 1002);
  assert.equal(all.length, 1006);
});
