/**
 * `__consumer_offsets` is compacted, and the group coordinator still loads the right state from
 * the compacted log.
 *
 * Goal: many OffsetCommits for one group/partition, then the broker's retention/compaction pass,
 * then a restart: the log has shrunk to (about) one offset record per key, and OffsetFetch after
 * the restart answers the latest committed offset. Method: an in-process broker on a temporary
 * data directory, requests through its dispatcher (no sockets); `__consumer_offsets` gets small
 * segments so the commits span many sealed segments.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Broker } from '../broker/broker.js';
import { callApi, startInProcessBroker } from '../broker/in-process.js';
import { partitionForGroup } from '../group/coordinator.js';
import { CONSUMER_OFFSETS_TOPIC } from '../group/group-log.js';
import { ApiKey } from '../protocol/generated/index.js';
import { decodeRecordBatches } from '../protocol/records/record-batch.js';

const dataDir = mkdtempSync(join(tmpdir(), 'sluice-compact-offsets-'));
const brokers: Broker[] = [];
after(async () => {
  for (const b of brokers) await b.stop().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
});

async function startBroker(): Promise<Broker> {
  const b = await startInProcessBroker({
    dataDir,
    configure: (cfg) => {
      cfg.offsetsTopicNumPartitions = 3;
    },
  });
  brokers.push(b);
  return b;
}

const call = callApi;

async function commit(b: Broker, partitionIndex: number, offset: number): Promise<void> {
  const c = await call(b, ApiKey.OffsetCommit, 8, {
    groupId: 'g',
    generationIdOrMemberEpoch: -1,
    memberId: '',
    topics: [
      { name: 't', partitions: [{ partitionIndex, committedOffset: offset, committedMetadata: null }] },
    ],
  });
  assert.equal(c.topics[0]!.partitions[0]!.errorCode, 0);
}

async function recordCount(b: Broker, partition: number): Promise<number> {
  const log = b.topics.partition(CONSUMER_OFFSETS_TOPIC, partition)!.log;
  let n = 0;
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const r = await log.read(next, 1 << 20);
    for (const batch of await decodeRecordBatches(r.records)) n += batch.records.length;
    next = r.nextOffset;
  }
  return n;
}

test('__consumer_offsets is compacted and the latest committed offsets load after a restart', async () => {
  let b = await startBroker();
  await b.topics.create('t', 2);
  await commit(b, 0, 0); // creates __consumer_offsets
  const meta = b.topics.get(CONSUMER_OFFSETS_TOPIC)!.meta;
  assert.equal(meta.configs['cleanup.policy'], 'compact');
  await b.topics.setConfigs(CONSUMER_OFFSETS_TOPIC, { ...meta.configs, 'segment.bytes': '1024' });
  for (let i = 1; i <= 300; i++) await commit(b, i % 2, i);
  const gp = partitionForGroup('g', 3);
  const log = b.topics.partition(CONSUMER_OFFSETS_TOPIC, gp)!.log;
  const leo = log.logEndOffset;
  const sizeBefore = log.sizeBytes;
  const segmentsBefore = log.segmentCount;
  assert.ok(segmentsBefore > 10, `commits span many segments (${segmentsBefore})`);
  assert.equal(await recordCount(b, gp), 301);

  // The broker's periodic pass: retention (not for compact-only topics) and compaction.
  assert.equal(await b.topics.applyRetention(), 0);
  assert.equal(log.logEndOffset, leo, 'offsets never change');
  assert.ok(log.sizeBytes < sizeBefore / 3, `compacted: ${sizeBefore} -> ${log.sizeBytes} bytes`);
  // Two keys (one per partition of t) survive in the cleaned part, plus whatever is in the active segment.
  const left = await recordCount(b, gp);
  assert.ok(left < 40, `records left: ${left}`);

  await b.stop();
  b = await startBroker();
  const f = await call(b, ApiKey.OffsetFetch, 6, { groupId: 'g', topics: null });
  assert.deepEqual(
    f.topics[0]!.partitions.map((x) => [x.partitionIndex, x.committedOffset]).sort((x, y) => x[0]! - y[0]!),
    [
      [0, 300],
      [1, 299],
    ],
  );
  // The compaction and its checkpoint survived the restart too.
  const log2 = b.topics.partition(CONSUMER_OFFSETS_TOPIC, gp)!.log;
  assert.equal(log2.logEndOffset, leo);
  assert.equal(await recordCount(b, gp), left);
  assert.notEqual((await log2.clean()).cleaned, true);
});
