/**
 * Goal: the chaos checker finds each anomaly class it claims to find, and nothing in a clean
 * history. Method: hand-built histories, each with one defect planted (a lost write, a duplicate, a
 * rewritten offset, a misplaced acknowledgement, a rewind with and without a rebalance before it,
 * ...), checked against the exact counts expected.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type History, type SendRecord, check, failures } from './checker.js';

function ok(value: string, partition: number, offset: number, idempotent = true): SendRecord {
  return { value, producer: value.split('-')[0]!, idempotent, partition, outcome: 'ok', offset, startMs: 0 };
}

/** Three acknowledged writes on partition 0, read in order by one consumer and by the drain. */
function clean(): History {
  return {
    sends: [ok('p0-0', 0, 0), ok('p0-1', 0, 1), ok('p1-0', 0, 2, false)],
    consumers: [
      {
        name: 'assigned',
        reads: [
          { partition: 0, offset: 0, value: 'p0-0' },
          { partition: 0, offset: 1, value: 'p0-1' },
          { partition: 0, offset: 2, value: 'p1-0' },
        ],
        markers: [],
      },
    ],
    final: [
      {
        partition: 0,
        highWatermark: 3,
        records: [
          { offset: 0, value: 'p0-0' },
          { offset: 1, value: 'p0-1' },
          { offset: 2, value: 'p1-0' },
        ],
      },
    ],
  };
}

test('a clean history has no anomaly', () => {
  const r = check(clean());
  assert.deepEqual(r.sends, { total: 3, ok: 3, failed: 0, unknown: 0 });
  assert.equal(r.finalRecords, 3);
  assert.deepEqual(failures(r), []);
  for (const a of [
    r.lost,
    r.duplicates,
    r.inconsistentOffsets,
    r.ackMismatch,
    r.failedPresent,
    r.nonMonotonic,
    r.skips,
    r.nonMonotonicSends,
    r.resets,
    r.phantoms,
    r.finalGaps,
  ])
    assert.equal(a.count, 0);
  assert.equal(r.unseen.assigned!.count, 0);
});

test('an acknowledged write missing from the final read is lost, and unseen by the consumer', () => {
  const h = clean();
  h.sends.push(ok('p0-2', 1, 0));
  h.final.push({ partition: 1, highWatermark: 0, records: [] });
  const r = check(h);
  assert.equal(r.lost.count, 1);
  assert.deepEqual(r.lost.examples[0], { value: 'p0-2', acked: { partition: 1, offset: 0 } });
  // Unseen counts only what the final read holds: a lost write is lost, not unseen.
  assert.equal(r.unseen.assigned!.count, 0);
  assert.deepEqual(failures(r), ['1 lost acknowledged writes']);
});

test('an acknowledged write in the final read that a consumer never read is unseen, not a failure', () => {
  const h = clean();
  h.consumers[0]!.reads.pop();
  const r = check(h);
  assert.equal(r.unseen.assigned!.count, 1);
  assert.equal(r.unseen.assigned!.examples[0]!.value, 'p1-0');
  assert.deepEqual(failures(r), []);
});

test('a value at two offsets is a duplicate; a failure only for an idempotent producer', () => {
  const h = clean();
  h.final[0]!.records.push({ offset: 3, value: 'p1-0' });
  h.final[0]!.highWatermark = 4;
  let r = check(h);
  assert.equal(r.duplicates.count, 1);
  assert.equal(r.duplicatesNonIdempotent, 1);
  assert.equal(r.duplicatesIdempotent, 0);
  assert.deepEqual(r.duplicates.examples[0]!.at, [
    { partition: 0, offset: 2 },
    { partition: 0, offset: 3 },
  ]);
  assert.deepEqual(failures(r), []);

  const h2 = clean();
  h2.final[0]!.records.push({ offset: 3, value: 'p0-1' });
  h2.final[0]!.highWatermark = 4;
  r = check(h2);
  assert.equal(r.duplicatesIdempotent, 1);
  assert.deepEqual(r.duplicatesIdempotentCause, { broker: 0, client: 0, unknown: 1 });
  assert.deepEqual(failures(r), [
    '1 duplicates from idempotent producers (same batch appended twice: 0; sent twice by the client: 0; undetermined: 1)',
  ]);
});

test("an idempotent duplicate's cause: one sequence twice is the broker's, two sequences the client's", () => {
  const h = clean();
  h.final[0]!.records[1] = { offset: 1, value: 'p0-1', producerId: 7, sequence: 4 };
  h.final[0]!.records.push({ offset: 3, value: 'p0-1', producerId: 7, sequence: 4 });
  h.final[0]!.highWatermark = 4;
  assert.deepEqual(check(h).duplicatesIdempotentCause, { broker: 1, client: 0, unknown: 0 });
  h.final[0]!.records[3] = { offset: 3, value: 'p0-1', producerId: 7, sequence: 5 };
  const r = check(h);
  assert.deepEqual(r.duplicatesIdempotentCause, { broker: 0, client: 1, unknown: 0 });
  assert.equal(r.duplicates.examples[0]!.cause, 'client');
  // Still a failure: the value is twice in the log whoever caused it.
  assert.equal(failures(r).length, 1);
});

test('one offset with two values across readers is inconsistent', () => {
  const h = clean();
  // The consumer read another value at offset 1 (e.g. before a truncation and rewrite).
  h.consumers[0]!.reads[1] = { partition: 0, offset: 1, value: 'p1-9' };
  h.sends.push({ ...ok('p1-9', 0, 0, false), outcome: 'failed', offset: undefined, error: 'x' });
  const r = check(h);
  assert.equal(r.inconsistentOffsets.count, 1);
  assert.deepEqual(r.inconsistentOffsets.examples[0], {
    partition: 0,
    offset: 1,
    values: { 'p0-1': ['ack', 'final'], 'p1-9': ['assigned'] },
  });
  assert.equal(r.unseen.assigned!.count, 1);
  assert.ok(failures(r).includes('1 inconsistent offsets'));
});

test('an acknowledgement at one offset and the value at another is a mismatch', () => {
  const h = clean();
  h.sends[1] = ok('p0-1', 0, 7);
  const r = check(h);
  assert.equal(r.ackMismatch.count, 1);
  assert.deepEqual(r.ackMismatch.examples[0], {
    value: 'p0-1',
    acked: { partition: 0, offset: 7 },
    found: [{ partition: 0, offset: 1 }],
  });
  // The value is also at two positions counting the acknowledgement: a duplicate as well.
  assert.equal(r.duplicatesIdempotent, 1);
  assert.equal(r.lost.count, 0);
});

test('a failed write that is in the log is reported but allowed; unknown ones are counted', () => {
  const h = clean();
  h.sends.push({ ...ok('p1-5', 0, 0, false), outcome: 'failed', offset: undefined, error: 'NOT_ENOUGH' });
  h.sends.push({ ...ok('p1-6', 0, 0, false), outcome: 'unknown', offset: undefined });
  h.sends.push({ ...ok('p1-7', 0, 0, false), outcome: 'failed', offset: undefined });
  h.final[0]!.records.push({ offset: 3, value: 'p1-5' }, { offset: 4, value: 'p1-6' });
  h.final[0]!.highWatermark = 5;
  const r = check(h);
  assert.deepEqual(r.sends, { total: 6, ok: 3, failed: 2, unknown: 1 });
  assert.equal(r.failedPresent.count, 1);
  assert.deepEqual(r.failedPresent.examples[0], { value: 'p1-5', error: 'NOT_ENOUGH' });
  assert.equal(r.unknownPresent, 1);
  assert.deepEqual(failures(r), []);
});

test('a rewind is non-monotonic unless a rebalance came before it; a forward jump is a skip', () => {
  const h = clean();
  const reads = h.consumers[0]!.reads;
  reads.push({ partition: 0, offset: 1, value: 'p0-1' }); // rewind, no rebalance: anomaly
  reads.push({ partition: 0, offset: 2, value: 'p1-0' });
  reads.push({ partition: 0, offset: 0, value: 'p0-0' }); // rewind after the rebalance below: excused
  reads.push({ partition: 0, offset: 2, value: 'p1-0' }); // forward jump over 1: skip
  h.consumers[0]!.markers.push({ readIndex: 5, atMs: 0, kind: 'rebalance' });
  const r = check(h);
  assert.equal(r.nonMonotonic.count, 1);
  assert.deepEqual(r.nonMonotonic.examples[0], {
    consumer: 'assigned',
    partition: 0,
    previous: 2,
    offset: 1,
  });
  assert.equal(r.rewindsAfterRebalance, 1);
  assert.equal(r.skips.count, 1);
  assert.deepEqual(failures(r), []);
});

test('a rebalance excuses only the next read of each partition', () => {
  const h = clean();
  const reads = h.consumers[0]!.reads;
  reads.push({ partition: 0, offset: 0, value: 'p0-0' });
  reads.push({ partition: 0, offset: 0, value: 'p0-0' });
  h.consumers[0]!.markers.push({ readIndex: 3, atMs: 0, kind: 'rebalance' });
  const r = check(h);
  assert.equal(r.rewindsAfterRebalance, 1);
  assert.equal(r.nonMonotonic.count, 1);
});

test('offset resets are listed and excuse nothing; phantoms and gaps in the final read are found', () => {
  const h = clean();
  h.consumers[0]!.reads.push({ partition: 0, offset: 0, value: 'zz' });
  h.consumers[0]!.markers.push({ readIndex: 3, atMs: 0, kind: 'reset', partition: 0, detail: 'OOR' });
  h.final[0]!.records.splice(1, 1);
  const r = check(h);
  assert.equal(r.resets.count, 1);
  assert.equal(r.nonMonotonic.count, 1);
  assert.equal(r.phantoms.count, 1);
  assert.deepEqual(r.finalGaps.examples, [{ partition: 0, offset: 1 }]);
  assert.equal(r.lost.count, 1);
});

test("a producer's acknowledged offsets going backwards in one partition are a non-monotonic send", () => {
  const h = clean();
  // p0-0 acknowledged at 0, then p0-1 acknowledged at 0 as well: two acks at one offset.
  h.sends[1] = ok('p0-1', 0, 0);
  const r = check(h);
  assert.equal(r.nonMonotonicSends.count, 1);
  assert.deepEqual(r.nonMonotonicSends.examples[0], {
    producer: 'p0',
    partition: 0,
    previous: 'p0-0@0',
    value: 'p0-1@0',
  });
  assert.equal(r.inconsistentOffsets.count, 1);
  assert.equal(r.ackMismatch.count, 1);
});

test('a value sent twice is a harness error', () => {
  const h = clean();
  h.sends.push(ok('p0-0', 0, 0));
  assert.throws(() => check(h), /sent twice/);
});
