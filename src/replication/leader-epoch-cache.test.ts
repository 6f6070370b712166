/**
 * LeaderEpochCache: the answers OffsetForLeaderEpoch depends on (KIP-101, KIP-279's "largest epoch
 * <= requested"), monotonic assignment, truncation from both ends, and the checkpoint format.
 * Method: examples taken from Kafka's LeaderEpochFileCacheTest cases, then a property test that
 * random operation sequences keep the invariants and round-trip through the checkpoint text.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  EpochCacheCorruptError,
  LeaderEpochCache,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
} from './leader-epoch-cache.js';

const entries = (c: LeaderEpochCache) => c.list().map((e) => [e.epoch, e.startOffset]);
const UNDEFINED = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };

describe('LeaderEpochCache.assign', () => {
  test('appends new epochs; the same epoch at a later offset changes nothing', () => {
    const c = new LeaderEpochCache();
    assert.equal(c.assign(0, 0), true);
    assert.equal(c.assign(0, 5), false);
    assert.equal(c.assign(2, 10), true);
    assert.deepEqual(entries(c), [
      [0, 0],
      [2, 10],
    ]);
    assert.equal(c.latestEpoch, 2);
    assert.equal(c.startOffsetOf(2), 10);
    assert.equal(c.startOffsetOf(1), undefined);
  });

  test('the same epoch at an earlier offset moves its start back', () => {
    const c = new LeaderEpochCache([{ epoch: 1, startOffset: 10 }]);
    assert.equal(c.assign(1, 7), true);
    assert.deepEqual(entries(c), [[1, 7]]);
  });

  test('an older epoch or an overlapping start removes the entries it contradicts', () => {
    const c = new LeaderEpochCache([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
      { epoch: 5, startOffset: 20 },
    ]);
    c.assign(4, 15); // epoch 5 (>= 4) goes
    assert.deepEqual(entries(c), [
      [1, 0],
      [3, 10],
      [4, 15],
    ]);
    c.assign(6, 10); // 3@10 and 4@15 start at or after 10
    assert.deepEqual(entries(c), [
      [1, 0],
      [6, 10],
    ]);
  });

  test('rejects negative epochs and offsets', () => {
    const c = new LeaderEpochCache();
    assert.throws(() => c.assign(-1, 0), RangeError);
    assert.throws(() => c.assign(0, -1), RangeError);
  });
});

describe('LeaderEpochCache.endOffsetFor', () => {
  const c = new LeaderEpochCache([
    { epoch: 2, startOffset: 5 },
    { epoch: 4, startOffset: 12 },
    { epoch: 7, startOffset: 20 },
  ]);
  const leo = 31;

  test('the latest epoch ends at the log end offset', () => {
    assert.deepEqual(c.endOffsetFor(7, leo), { epoch: 7, endOffset: 31 });
  });

  test('an older epoch ends where the next one starts', () => {
    assert.deepEqual(c.endOffsetFor(2, leo), { epoch: 2, endOffset: 12 });
    assert.deepEqual(c.endOffsetFor(4, leo), { epoch: 4, endOffset: 20 });
  });

  test('an epoch this replica never had answers with the largest epoch below it (KIP-279)', () => {
    assert.deepEqual(c.endOffsetFor(3, leo), { epoch: 2, endOffset: 12 });
    assert.deepEqual(c.endOffsetFor(6, leo), { epoch: 4, endOffset: 20 });
  });

  test('below every cached epoch: the requested epoch, ending at the first start offset', () => {
    assert.deepEqual(c.endOffsetFor(1, leo), { epoch: 1, endOffset: 5 });
  });

  test('undefined, future epochs and an empty cache have no answer', () => {
    assert.deepEqual(c.endOffsetFor(UNDEFINED_EPOCH, leo), UNDEFINED);
    assert.deepEqual(c.endOffsetFor(8, leo), UNDEFINED);
    assert.deepEqual(new LeaderEpochCache().endOffsetFor(0, 0), UNDEFINED);
  });
});

describe('LeaderEpochCache truncation', () => {
  const make = () =>
    new LeaderEpochCache([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 6 },
      { epoch: 3, startOffset: 8 },
    ]);

  test('truncateFromEnd drops epochs starting at or after the new end', () => {
    const c = make();
    c.truncateFromEnd(8);
    assert.deepEqual(entries(c), [
      [1, 0],
      [2, 6],
    ]);
    c.truncateFromEnd(7);
    assert.deepEqual(entries(c), [
      [1, 0],
      [2, 6],
    ]);
    c.truncateFromEnd(0);
    assert.deepEqual(entries(c), []);
  });

  test('truncateFromStart drops epochs wholly below the new start and moves the covering one up', () => {
    const c = make();
    c.truncateFromStart(7);
    assert.deepEqual(entries(c), [
      [2, 7],
      [3, 8],
    ]);
    const d = make();
    d.truncateFromStart(6);
    assert.deepEqual(entries(d), [
      [2, 6],
      [3, 8],
    ]);
  });
});

describe('LeaderEpochCache checkpoint', () => {
  test("writes Kafka's leader-epoch-checkpoint text and reads it back", () => {
    const c = new LeaderEpochCache([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 10 },
    ]);
    assert.equal(c.toCheckpoint(), '0\n2\n0 0\n2 10\n');
    assert.deepEqual(entries(LeaderEpochCache.fromCheckpoint(c.toCheckpoint())), entries(c));
    assert.deepEqual(entries(LeaderEpochCache.fromCheckpoint('0\n0\n')), []);
  });

  test('rejects corrupt checkpoints with a typed error', () => {
    for (const bad of [
      '',
      '1\n0\n',
      '0\n2\n0 0\n',
      '0\n1\n0\n',
      '0\n1\nx 1\n',
      '0\n2\n3 10\n2 20\n',
      '0\n2\n1 10\n2 5\n',
    ]) {
      assert.throws(() => LeaderEpochCache.fromCheckpoint(bad), EpochCacheCorruptError, JSON.stringify(bad));
    }
  });

  test('property: any sequence of assign/truncate keeps the invariants and round-trips', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('assign' as const), epoch: fc.nat(20), offset: fc.nat(200) }),
      fc.record({ kind: fc.constant('end' as const), offset: fc.nat(200) }),
      fc.record({ kind: fc.constant('start' as const), offset: fc.nat(200) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const c = new LeaderEpochCache();
        for (const o of ops) {
          if (o.kind === 'assign') c.assign(o.epoch, o.offset);
          else if (o.kind === 'end') c.truncateFromEnd(o.offset);
          else c.truncateFromStart(o.offset);
          c.assertValid();
        }
        assert.deepEqual(entries(LeaderEpochCache.fromCheckpoint(c.toCheckpoint())), entries(c));
        // endOffsetFor never names an epoch above the requested one, nor an end below its start.
        for (let e = 0; e <= 21; e++) {
          const r = c.endOffsetFor(e, 1000);
          if (r.epoch !== UNDEFINED_EPOCH) {
            assert.ok(r.epoch <= e);
            const start = c.startOffsetOf(r.epoch);
            if (start !== undefined) assert.ok(r.endOffset >= start);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
