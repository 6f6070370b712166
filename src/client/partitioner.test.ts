/**
 * murmur2 / partitioner tests: the Java client's published vectors, each also checked against
 * kafkajs's own murmur2 (so a wrong vector in the table cannot pass silently), plus a property
 * that we agree with kafkajs on arbitrary byte keys.
 */

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { murmur2, partitionForKey, toPositive } from './partitioner.js';

const require = createRequire(import.meta.url);
const kjsMurmur2: (key: Buffer) => number = require('kafkajs/src/producer/partitioners/default/murmur2.js');

// From the Java client's UtilsTest.testMurmur2 (and Sarama/librdkafka ports of it).
const VECTORS: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
  ['', 275646681],
];

describe('murmur2', () => {
  for (const [key, want] of VECTORS) {
    it(`murmur2(${JSON.stringify(key)}) = ${want}`, () => {
      const bytes = Buffer.from(key);
      assert.equal(kjsMurmur2(bytes), want, 'kafkajs agrees with the vector');
      assert.equal(murmur2(bytes), want);
    });
  }

  it('equals kafkajs murmur2 for random byte keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (a) => {
        const b = Buffer.from(a);
        assert.equal(murmur2(b), kjsMurmur2(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('is a signed 32-bit integer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (a) => {
        const h = murmur2(a);
        assert.ok(Number.isInteger(h) && h >= -(2 ** 31) && h < 2 ** 31);
      }),
    );
  });
});

describe('partitionForKey', () => {
  it('toPositive masks the sign bit like Java', () => {
    assert.equal(toPositive(-1), 0x7fffffff);
    assert.equal(toPositive(-(2 ** 31)), 0);
    assert.equal(toPositive(5), 5);
  });

  it('matches toPositive(murmur2) % n and stays in range', () => {
    assert.equal(partitionForKey(Buffer.from('foobar'), 10), (-790332482 & 0x7fffffff) % 10);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), fc.integer({ min: 1, max: 10_000 }), (a, n) => {
        const p = partitionForKey(a, n);
        assert.ok(p >= 0 && p < n);
        assert.equal(p, (kjsMurmur2(Buffer.from(a)) & 0x7fffffff) % n);
      }),
    );
  });

  it('rejects a non-positive partition count', () => {
    assert.throws(() => partitionForKey(Buffer.from('k'), 0), RangeError);
  });
});
