/**
 * A full disk under a replicated partition (ReplicatedPartition over a PartitionLog on a
 * MemoryFileSystem with a byte budget). What must hold:
 * - leader: a produce whose write fails is answered KAFKA_STORAGE_ERROR (acks=1 and acks=all), so
 *   is every produce queued behind it, the idempotence table forgets them, and once space is back
 *   the next produce is written at the offset the failed one would have had — the replica does
 *   not stop being leader;
 * - follower: a fetched batch it cannot write is not counted (its next Fetch asks for the same
 *   offset, after a backoff, and only once its log is durable), and it catches up once space is
 *   back — it never stops fetching;
 * - a flush (fdatasync) that fails is retried, so a follower is never stuck waiting for it.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TOPIC_CONFIG_DEFAULTS } from '../broker/config.js';
import { Partition } from '../broker/partition.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import { DEFAULT_REPLICA_CONFIG } from '../replication/partition-replica.js';
import { MemoryFileSystem, PartitionLog } from '../storage/index.js';
import { decodeValues, valuesBatch } from '../storage/test-batches.js';
import { ReplicatedPartition } from './replicated-partition.js';

const SELF = 1;
const OTHER = 2;

async function setup() {
  const fs = new MemoryFileSystem();
  const log = await PartitionLog.open('/t-0', {}, { fs, logger: { warn: () => {} }, readPool: null });
  const partition = new Partition('t', 0, log, { ...TOPIC_CONFIG_DEFAULTS }, Date.now);
  const clock = { now: 1_000_000 };
  const logs: string[] = [];
  const rp = await ReplicatedPartition.open(
    partition,
    { ...DEFAULT_REPLICA_CONFIG, brokerId: SELF, followerBackoffMs: 500 },
    {
      nowMs: () => clock.now,
      sendAlterPartition: () => {},
      logger: { info: () => {}, warn: (m) => logs.push(m), error: (m) => logs.push(m) },
    },
  );
  return { fs, log, partition, rp, clock, logs };
}

const settle = async (rp: ReplicatedPartition) => {
  for (let i = 0; i < 5; i++) {
    await rp.adapter.settled();
    await new Promise((r) => setImmediate(r));
  }
};

async function idempotentBatch(seq: number, n: number): Promise<Buffer> {
  return encodeRecordBatch({
    records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`s${seq + i}`) })),
    producerId: 7,
    producerEpoch: 0,
    baseSequence: seq,
  });
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return ErrorCode.NONE;
  } catch (err) {
    assert.ok(err instanceof KafkaError, `a KafkaError, got ${String(err)}`);
    return err.errorCode;
  }
}

describe('a full disk under a replicated partition', () => {
  test('leader: KAFKA_STORAGE_ERROR for the failed produce and those queued behind it; then it goes on', async () => {
    const s = await setup();
    s.rp.applyState({ leaderId: SELF, leaderEpoch: 1, partitionEpoch: 1, isr: [SELF], replicas: [SELF] });
    assert.equal(await codeOf(s.partition.appendBatches(await idempotentBatch(0, 3), -1)), ErrorCode.NONE);
    assert.equal(s.log.logEndOffset, 3);

    s.fs.capacityBytes = s.fs.usedBytes() + 10;
    // Three produces in flight: the first write fails, the two queued behind it are dropped.
    const inflight = [
      s.partition.appendBatches(await idempotentBatch(3, 2), -1),
      s.partition.appendBatches(valuesBatch(['a', 'b']), 1),
      s.partition.appendBatches(valuesBatch(['c']), -1),
    ];
    const codes = await Promise.all(inflight.map(codeOf));
    assert.deepEqual(codes, [
      ErrorCode.KAFKA_STORAGE_ERROR,
      ErrorCode.KAFKA_STORAGE_ERROR,
      ErrorCode.KAFKA_STORAGE_ERROR,
    ]);
    await settle(s.rp);
    assert.equal(s.log.logEndOffset, 3);
    assert.equal(s.rp.adapter.logEndOffset, 3);
    assert.equal(s.rp.adapter.failed, undefined);
    assert.ok(s.rp.isLeader, 'still the leader');
    assert.equal(s.partition.producers.check(7, 0, 3, 1).kind, 'append', 'the failed batch is forgotten');
    assert.ok(s.logs.some((m) => /log write failed at offset 3/.test(m)));
    s.rp.replica.assertInvariants();

    // Still full: the retry fails the same way.
    assert.equal(
      await codeOf(s.partition.appendBatches(await idempotentBatch(3, 2), -1)),
      ErrorCode.KAFKA_STORAGE_ERROR,
    );
    await settle(s.rp);

    // Space is back: the retry is written (not a duplicate) at offset 3, and acks=all completes.
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    const retried = await s.partition.appendBatches(await idempotentBatch(3, 2), -1);
    assert.equal(retried.baseOffset, 3);
    const next = await s.partition.appendBatches(valuesBatch(['d']), 1);
    assert.equal(next.baseOffset, 5);
    await settle(s.rp);
    const read = await s.log.read(0, 1 << 20);
    assert.deepEqual(
      decodeValues(read.records).map((r) => `${r.offset}:${r.value}`),
      ['0:s0', '1:s1', '2:s2', '3:s3', '4:s4', '5:d'],
    );
    s.rp.replica.assertInvariants();
    s.rp.close();
  });

  test('follower: a fetched batch it cannot write is fetched again after a backoff, never skipped', async () => {
    const s = await setup();
    s.rp.applyState({
      leaderId: OTHER,
      leaderEpoch: 1,
      partitionEpoch: 1,
      isr: [OTHER, SELF],
      replicas: [OTHER, SELF],
    });
    const fetchOnce = (records: Buffer) => {
      const req = s.rp.pollRequest();
      assert.ok(req && req.kind === 'fetch', `a fetch is due, got ${JSON.stringify(req)}`);
      s.rp.handleLeaderResponse({
        kind: 'fetch-response',
        correlationId: req.correlationId,
        errorCode: ErrorCode.NONE,
        highWatermark: 0,
        logStartOffset: 0,
        divergingEpoch: undefined,
        records,
      });
      return req.fetchOffset;
    };
    const batchAt = (base: number, values: string[]) =>
      valuesBatch(values, 0, { baseOffset: base, partitionLeaderEpoch: 1 });

    assert.equal(fetchOnce(batchAt(0, ['a', 'b'])), 0);
    await settle(s.rp);
    await s.rp.flushed();
    assert.equal(s.log.logEndOffset, 2);

    s.fs.capacityBytes = s.fs.usedBytes() + 10;
    assert.equal(fetchOnce(batchAt(2, ['c', 'd', 'e'])), 2);
    await settle(s.rp);
    await s.rp.flushed(); // resolves (nothing left unflushed), never hangs
    assert.equal(s.log.logEndOffset, 2);
    assert.equal(s.rp.adapter.logEndOffset, 2);
    assert.equal(s.rp.pollRequest(), undefined, 'backs off before asking again');
    s.clock.now += 600;
    // Still full: asks for offset 2 again, fails again.
    assert.equal(fetchOnce(batchAt(2, ['c', 'd', 'e'])), 2);
    await settle(s.rp);
    s.clock.now += 600;
    s.fs.capacityBytes = Number.POSITIVE_INFINITY;
    assert.equal(fetchOnce(batchAt(2, ['c', 'd', 'e'])), 2);
    await settle(s.rp);
    await s.rp.flushed();
    const req = s.rp.pollRequest();
    assert.ok(req && req.kind === 'fetch');
    assert.equal(req.fetchOffset, 5, 'reports the written batch only once it is durable');
    const read = await s.log.read(0, 1 << 20);
    assert.deepEqual(
      decodeValues(read.records).map((r) => r.value),
      ['a', 'b', 'c', 'd', 'e'],
    );
    s.rp.replica.assertInvariants();
    s.rp.close();
  });

  test('follower: a failed fdatasync is retried, and the fetch offset waits for it', async () => {
    const s = await setup();
    s.rp.applyState({
      leaderId: OTHER,
      leaderEpoch: 1,
      partitionEpoch: 1,
      isr: [OTHER, SELF],
      replicas: [OTHER, SELF],
    });
    s.fs.failSyncs = 'EIO';
    const req = s.rp.pollRequest();
    assert.ok(req && req.kind === 'fetch');
    s.rp.handleLeaderResponse({
      kind: 'fetch-response',
      correlationId: req.correlationId,
      errorCode: ErrorCode.NONE,
      highWatermark: 0,
      logStartOffset: 0,
      divergingEpoch: undefined,
      records: valuesBatch(['a'], 0, { baseOffset: 0, partitionLeaderEpoch: 1 }),
    });
    await settle(s.rp);
    assert.ok(s.rp.awaitingFlush);
    assert.equal(s.rp.pollRequest(), undefined, 'no fetch reports an offset that is not durable');
    s.fs.failSyncs = null;
    const keepAlive = setInterval(() => {}, 100); // the retry timer is unref'd
    await s.rp.flushed(); // the retry (FLUSH_RETRY_MS) syncs it
    clearInterval(keepAlive);
    assert.equal(s.rp.awaitingFlush, false);
    const next = s.rp.pollRequest();
    assert.ok(next && next.kind === 'fetch');
    assert.equal(next.fetchOffset, 1);
    s.rp.close();
  });
});
