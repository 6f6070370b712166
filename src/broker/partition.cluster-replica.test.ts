/**
 * Goal: a cluster's replica (TopicManager.openReplica) never takes writes as a single node would.
 * Between opening its log and the replica manager attaching its replication state (which first
 * scans the log for leader epochs), and after that state is detached, a produce must be refused
 * with NOT_LEADER_OR_FOLLOWER, not appended with leader epoch 0 and acknowledged alone. The
 * chaos run with seed 20261207 found a restarted broker doing that: its clients were still
 * pointed at it, and the records it took were later overwritten by the real leader's.
 * Also: a request queued behind another while replication is attached or detached does not
 * take the path it chose before (local append without the ISR, or replication that is gone).
 */

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { encodeRecordBatch } from '../protocol/records/record-batch.js';
import { MemoryFileSystem, PartitionLog } from '../storage/index.js';
import { TOPIC_CONFIG_DEFAULTS } from './config.js';
import { Partition, type ReplicationHooks } from './partition.js';

async function setup() {
  const fs = new MemoryFileSystem();
  const log = await PartitionLog.open('/t-0', {}, { fs, readPool: null, logger: { warn: () => {} } });
  const partition = new Partition('t', 0, log, { ...TOPIC_CONFIG_DEFAULTS }, Date.now);
  const batch = await encodeRecordBatch({ records: [{ value: Buffer.from('v') }] });
  return { log, partition, batch };
}

/** Replication hooks of a leader that appends to `log` and acknowledges at once. */
function leaderHooks(log: PartitionLog, epoch: number): ReplicationHooks & { appends: number } {
  const hooks = {
    isLeader: true,
    leaderEpoch: epoch,
    highWatermark: 0,
    leaderId: 1,
    appends: 0,
    appendAsLeader(records: Buffer) {
      hooks.appends++;
      const baseOffset = log.logEndOffset;
      void log.append(records, { leaderEpoch: epoch });
      return { baseOffset, done: Promise.resolve() };
    },
  };
  return hooks;
}

const notLeader = (e: unknown) => e instanceof KafkaError && e.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER;

it('a single-node partition leads and appends', async () => {
  const { log, partition, batch } = await setup();
  assert.equal(partition.isLeader, true);
  await partition.appendBatches(batch, -1);
  assert.equal(log.logEndOffset, 1);
});

it('a cluster replica with no replication state attached is not a leader and refuses writes', async () => {
  const { log, partition, batch } = await setup();
  partition.clusterReplica = true;
  assert.equal(partition.isLeader, false);
  await assert.rejects(partition.appendBatches(batch, -1), notLeader);
  await assert.rejects(partition.appendBatches(batch, 1), notLeader);
  assert.equal(log.logEndOffset, 0, 'nothing appended');

  // Attached as leader: writes go through replication.
  const hooks = leaderHooks(log, 7);
  partition.replication = hooks;
  assert.equal(partition.isLeader, true);
  await partition.appendBatches(batch, -1);
  assert.equal(hooks.appends, 1);

  // Detached again (the replica closed): refused again.
  partition.replication = undefined;
  assert.equal(partition.isLeader, false);
  await assert.rejects(partition.appendBatches(batch, -1), notLeader);
  assert.equal(hooks.appends, 1);
});

it('a request that chose the local path is refused if replication was attached while it queued', async () => {
  const { log, partition, batch } = await setup();
  // Single-node partition (not a cluster replica) for the first request's path choice; the
  // second request is queued behind the first, then replication appears.
  const first = partition.appendBatches(batch, 1);
  const second = partition.appendBatches(batch, 1);
  const hooks = leaderHooks(log, 3);
  partition.replication = hooks;
  partition.clusterReplica = true;
  const results = await Promise.allSettled([first, second]);
  // Both chose the local path synchronously; their serialized steps run after the attach, so
  // both must be refused rather than appended outside replication.
  for (const r of results) assert.ok(r.status === 'rejected' && notLeader(r.reason), JSON.stringify(r));
  assert.equal(log.logEndOffset, 0);
  assert.equal(hooks.appends, 0);
});
