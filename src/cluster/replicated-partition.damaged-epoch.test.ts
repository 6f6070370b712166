/**
 * Goal: a replica whose log holds a batch stamped with a leader epoch later than the partition's
 * current one (a flipped bit in partitionLeaderEpoch, which the batch CRC does not cover) still
 * follows its leader. The chaos run with seed 7000 found such a replica ignoring every partition
 * state as "history" (states older than its log's latest epoch) and never rejoining the ISR.
 * Method: a log on a MemoryFileSystem with batches of epochs 0 and 1 and a last batch stamped 65;
 * ReplicatedPartition.open with the image's current epoch (3) must cut the log before that batch,
 * keep the rest, and then become a follower of epoch 3.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOPIC_CONFIG_DEFAULTS } from '../broker/config.js';
import { Partition } from '../broker/partition.js';
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import { DEFAULT_REPLICA_CONFIG } from '../replication/partition-replica.js';
import { MemoryFileSystem, PartitionLog } from '../storage/index.js';
import { ReplicatedPartition } from './replicated-partition.js';

const SELF = 1;
const LEADER = 2;

async function damagedLog() {
  const fs = new MemoryFileSystem();
  const log = await PartitionLog.open('/t-0', {}, { fs, logger: { warn: () => {} }, readPool: null });
  const batch = (v: string) =>
    encodeRecordBatch({ records: [{ value: Buffer.from(v) }, { value: Buffer.from(`${v}'`) }] });
  await log.append(await batch('a'), { leaderEpoch: 0 });
  await log.append(await batch('b'), { leaderEpoch: 1 });
  await log.append(await batch('c'), { leaderEpoch: 65 }); // 1 with bit 6 flipped
  await log.flush();
  const partition = new Partition('t', 0, log, { ...TOPIC_CONFIG_DEFAULTS }, Date.now);
  return { log, partition };
}

async function open(partition: Partition, currentLeaderEpoch?: number) {
  const warnings: string[] = [];
  const rp = await ReplicatedPartition.open(
    partition,
    { ...DEFAULT_REPLICA_CONFIG, brokerId: SELF },
    {
      nowMs: Date.now,
      sendAlterPartition: () => {},
      logger: { info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    },
    0,
    currentLeaderEpoch,
  );
  return { rp, warnings };
}

const state = {
  leaderId: LEADER,
  leaderEpoch: 3,
  partitionEpoch: 5,
  isr: [LEADER],
  replicas: [LEADER, SELF],
};

test('a batch stamped with an epoch above the current one is cut off, and the replica follows', async () => {
  const { log, partition } = await damagedLog();
  assert.equal(log.logEndOffset, 6);
  const { rp, warnings } = await open(partition, 3);
  assert.equal(log.logEndOffset, 4, 'cut before the damaged batch');
  assert.match(warnings.join('\n'), /offset 4 carries leader epoch 65, above the partition's current 3/);
  rp.applyState(state);
  assert.equal(rp.replica.role, 'follower');
  assert.equal(rp.leaderEpoch, 3);
  rp.close();
});

test('without the current epoch the damaged batch poisons the epoch cache (what the fix prevents)', async () => {
  const { log, partition } = await damagedLog();
  const { rp } = await open(partition);
  assert.equal(log.logEndOffset, 6);
  rp.applyState(state);
  assert.notEqual(rp.leaderEpoch, 3, 'the state is ignored as older than the log');
  rp.close();
});
