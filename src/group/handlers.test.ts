/**
 * The group APIs through the broker's dispatcher (in process, no sockets): version differences
 * of FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups, DeleteGroups and OffsetDelete, the `__consumer_offsets` topic
 * (created on first use, compacted, Kafka's record formats), and groups/offsets rebuilt from it
 * when the broker restarts on the same data directory.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Broker } from '../broker/broker.js';
import { callApi, startInProcessBroker } from '../broker/in-process.js';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/generated/index.js';
import { Writer } from '../protocol/primitives.js';
import { decodeRecordBatches } from '../protocol/records/record-batch.js';
import { partitionForGroup } from './coordinator.js';
import { CONSUMER_OFFSETS_TOPIC } from './group-log.js';
import { decodeGroupRecord } from './records.js';


const dirs: string[] = [];
const brokers: Broker[] = [];
after(async () => {
  for (const b of brokers) await b.stop().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startBroker(dataDir?: string): Promise<Broker> {
  const b = await startInProcessBroker({
    dataDir,
    configure: (cfg) => {
      cfg.offsetsTopicNumPartitions = 5;
    },
  });
  if (!dataDir) dirs.push(b.config.dataDir);
  brokers.push(b);
  return b;
}

const call = callApi;

async function createTopic(b: Broker, name: string, partitions: number) {
  await b.topics.create(name, partitions);
}

/** Joins (v5, so MEMBER_ID_REQUIRED first) and syncs a single-member group; returns its member id. */
async function stableGroup(b: Broker, groupId: string, topics = ['t']) {
  const meta = new Writer(32);
  meta.int16(0);
  meta.int32(topics.length);
  for (const t of topics) meta.string(t);
  meta.int32(-1);
  const join = (memberId: string) =>
    call(b, ApiKey.JoinGroup, 5, {
      groupId,
      sessionTimeoutMs: 10000,
      rebalanceTimeoutMs: 10000,
      memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: meta.toBuffer() }],
    });
  const first = await join('');
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  const j = await join(first.memberId);
  assert.equal(j.errorCode, 0);
  const s = await call(b, ApiKey.SyncGroup, 3, {
    groupId,
    generationId: j.generationId,
    memberId: j.memberId,
    groupInstanceId: null,
    assignments: [{ memberId: j.memberId, assignment: Buffer.from('asg') }],
  });
  assert.equal(s.errorCode, 0);
  return { memberId: j.memberId, generationId: j.generationId };
}

describe('group APIs through the dispatcher', () => {
  test('FindCoordinator v0/v3/v4 and the __consumer_offsets topic', async () => {
    const b = await startBroker();
    assert.equal(b.topics.get(CONSUMER_OFFSETS_TOPIC), undefined, 'not created before first use');
    // Clients cannot auto-create it (with the wrong settings) through Metadata or Produce.
    assert.equal(await b.topics.autoCreate(CONSUMER_OFFSETS_TOPIC), null);
    const v0 = await call(b, ApiKey.FindCoordinator, 0, { key: 'g' });
    assert.equal(v0.errorCode, 0);
    assert.equal(v0.nodeId, b.nodeId);
    assert.equal(v0.port, b.advertised.port);
    const t = b.topics.get(CONSUMER_OFFSETS_TOPIC)!;
    assert.equal(t.meta.partitions, 5);
    assert.equal(t.meta.configs['cleanup.policy'], 'compact');
    assert.equal(t.meta.configs['segment.bytes'], '104857600');
    const txn = await call(b, ApiKey.FindCoordinator, 3, { key: 'tx', keyType: 1 });
    assert.equal(txn.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
    const batch = await call(b, ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ['a', 'b'] });
    assert.deepEqual(
      batch.coordinators.map((c) => [c.key, c.nodeId, c.errorCode]),
      [
        ['a', b.nodeId, 0],
        ['b', b.nodeId, 0],
      ],
    );
  });

  test('JoinGroup v0 (no member id required, protocolName non-nullable) and Heartbeat/LeaveGroup v0', async () => {
    const b = await startBroker();
    const p = call(b, ApiKey.JoinGroup, 0, {
      groupId: 'old',
      sessionTimeoutMs: 10000,
      memberId: '',
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }],
    });
    const j = await p;
    assert.equal(j.errorCode, 0);
    assert.equal(j.generationId, 1);
    assert.equal(j.protocolName, 'range');
    assert.equal(j.leader, j.memberId);
    assert.ok(j.memberId.startsWith('tester-'), 'member id is clientId-uuid');
    const s = await call(b, ApiKey.SyncGroup, 0, {
      groupId: 'old',
      generationId: 1,
      memberId: j.memberId,
      assignments: [],
    });
    assert.equal(s.errorCode, 0);
    assert.equal(
      (await call(b, ApiKey.Heartbeat, 0, { groupId: 'old', generationId: 1, memberId: j.memberId }))
        .errorCode,
      0,
    );
    assert.equal(
      (await call(b, ApiKey.Heartbeat, 0, { groupId: 'old', generationId: 2, memberId: j.memberId }))
        .errorCode,
      ErrorCode.ILLEGAL_GENERATION,
    );
    assert.equal(
      (await call(b, ApiKey.LeaveGroup, 0, { groupId: 'old', memberId: 'ghost' })).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    assert.equal(
      (await call(b, ApiKey.LeaveGroup, 1, { groupId: 'old', memberId: j.memberId })).errorCode,
      0,
    );
    const v3 = await call(b, ApiKey.LeaveGroup, 3, {
      groupId: 'old',
      members: [{ memberId: 'x', groupInstanceId: null }],
    });
    assert.equal(v3.errorCode, 0);
    assert.deepEqual(
      v3.members.map((m) => m.errorCode),
      [ErrorCode.UNKNOWN_MEMBER_ID],
    );
    assert.equal(
      (
        await call(b, ApiKey.JoinGroup, 9, {
          groupId: '',
          sessionTimeoutMs: 10000,
          rebalanceTimeoutMs: 10000,
          memberId: '',
          protocolType: 'consumer',
          protocols: [],
        })
      ).errorCode,
      ErrorCode.INVALID_GROUP_ID,
    );
  });

  test('OffsetCommit / OffsetFetch across versions', async () => {
    const b = await startBroker();
    await createTopic(b, 't', 3);
    const m = await stableGroup(b, 'g');
    const c8 = await call(b, ApiKey.OffsetCommit, 8, {
      groupId: 'g',
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      groupInstanceId: null,
      topics: [
        {
          name: 't',
          partitions: [
            { partitionIndex: 0, committedOffset: 10, committedLeaderEpoch: 2, committedMetadata: 'meta' },
          ],
        },
        { name: 'missing', partitions: [{ partitionIndex: 0, committedOffset: 1 }] },
      ],
    });
    assert.deepEqual(
      c8.topics.map((t) => [t.name, t.partitions[0]!.errorCode]),
      [
        ['t', 0],
        ['missing', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ],
    );
    // v2 with a retention time; a standalone commit into another group.
    const c2 = await call(b, ApiKey.OffsetCommit, 2, {
      groupId: 'solo',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      retentionTimeMs: 60000,
      topics: [
        { name: 't', partitions: [{ partitionIndex: 1, committedOffset: 5, committedMetadata: null }] },
      ],
    });
    assert.equal(c2.topics[0]!.partitions[0]!.errorCode, 0);
    // v1: per-partition errors only.
    const f1 = await call(b, ApiKey.OffsetFetch, 1, {
      groupId: 'g',
      topics: [{ name: 't', partitionIndexes: [0, 1] }],
    });
    assert.deepEqual(
      f1.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode]),
      [
        [0, 10, 'meta', 0],
        [1, -1, '', 0],
      ],
    );
    const fEmptyId = await call(b, ApiKey.OffsetFetch, 1, {
      groupId: '',
      topics: [{ name: 't', partitionIndexes: [0] }],
    });
    assert.equal(fEmptyId.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_GROUP_ID);
    // v5+: leader epoch; v2+: null topics = all.
    const f7 = await call(b, ApiKey.OffsetFetch, 7, { groupId: 'g', topics: null, requireStable: true });
    assert.equal(f7.errorCode, 0);
    assert.deepEqual(
      f7.topics.map((t) => [
        t.name,
        t.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.committedLeaderEpoch]),
      ]),
      [['t', [[0, 10, 2]]]],
    );
    // v8: several groups at once.
    const f8 = await call(b, ApiKey.OffsetFetch, 8, {
      groups: [
        { groupId: 'g', topics: [{ name: 't', partitionIndexes: [0] }] },
        { groupId: 'solo', topics: null },
        { groupId: 'nobody', topics: null },
      ],
    });
    assert.deepEqual(
      f8.groups.map((g) => [
        g.groupId,
        g.errorCode,
        g.topics.flatMap((t) => t.partitions.map((p) => p.committedOffset)),
      ]),
      [
        ['g', 0, [10]],
        ['solo', 0, [5]],
        ['nobody', 0, []],
      ],
    );
  });

  test('DescribeGroups, ListGroups (state and type filters), OffsetDelete, DeleteGroups', async () => {
    const b = await startBroker();
    await createTopic(b, 't', 1);
    await createTopic(b, 'u', 1);
    const m = await stableGroup(b, 'g', ['t']);
    await call(b, ApiKey.OffsetCommit, 8, {
      groupId: 'g',
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      topics: [
        { name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1 }] },
        { name: 'u', partitions: [{ partitionIndex: 0, committedOffset: 2 }] },
      ],
    });
    const d = await call(b, ApiKey.DescribeGroups, 5, {
      groups: ['g', 'nope'],
      includeAuthorizedOperations: true,
    });
    assert.equal(d.groups[0]!.groupState, 'Stable');
    assert.equal(d.groups[0]!.protocolData, 'range');
    assert.equal(d.groups[0]!.members[0]!.clientHost, '/127.0.0.1');
    assert.equal(d.groups[0]!.members[0]!.clientId, 'tester');
    assert.equal(d.groups[0]!.members[0]!.memberAssignment.toString(), 'asg');
    assert.ok(d.groups[0]!.authorizedOperations > 0);
    assert.equal(d.groups[1]!.groupState, 'Dead');
    const l5 = await call(b, ApiKey.ListGroups, 5, { statesFilter: ['STABLE'], typesFilter: ['classic'] });
    assert.deepEqual(
      l5.groups.map((g) => [g.groupId, g.protocolType, g.groupState, g.groupType]),
      [['g', 'consumer', 'Stable', 'classic']],
    );
    assert.equal((await call(b, ApiKey.ListGroups, 4, { statesFilter: ['Empty'] })).groups.length, 0);
    assert.equal((await call(b, ApiKey.ListGroups, 0, {})).groups.length, 1);
    const od = await call(b, ApiKey.OffsetDelete, 0, {
      groupId: 'g',
      topics: [
        { name: 't', partitions: [{ partitionIndex: 0 }] },
        { name: 'u', partitions: [{ partitionIndex: 0 }] },
        { name: 'zz', partitions: [{ partitionIndex: 0 }] },
      ],
    });
    assert.equal(od.errorCode, 0);
    assert.deepEqual(
      od.topics.map((t) => t.partitions[0]!.errorCode),
      [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    );
    const del1 = await call(b, ApiKey.DeleteGroups, 2, { groupsNames: ['g', 'none'] });
    assert.deepEqual(
      del1.results.map((r) => r.errorCode),
      [ErrorCode.NON_EMPTY_GROUP, ErrorCode.GROUP_ID_NOT_FOUND],
    );
    await call(b, ApiKey.LeaveGroup, 4, {
      groupId: 'g',
      members: [{ memberId: m.memberId, groupInstanceId: null }],
    });
    const del2 = await call(b, ApiKey.DeleteGroups, 0, { groupsNames: ['g'] });
    assert.deepEqual(
      del2.results.map((r) => r.errorCode),
      [0],
    );
    assert.equal((await call(b, ApiKey.ListGroups, 3, {})).groups.length, 0);
  });

  test('groups and offsets are rebuilt from __consumer_offsets after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-groups-'));
    dirs.push(dir);
    let b = await startBroker(dir);
    await createTopic(b, 't', 2);
    const m = await stableGroup(b, 'persist');
    const c = await call(b, ApiKey.OffsetCommit, 8, {
      groupId: 'persist',
      generationIdOrMemberEpoch: m.generationId,
      memberId: m.memberId,
      topics: [
        { name: 't', partitions: [{ partitionIndex: 1, committedOffset: 77, committedMetadata: 'x' }] },
      ],
    });
    assert.equal(c.topics[0]!.partitions[0]!.errorCode, 0);
    // The records are in Kafka's formats, in the group's partition.
    const p = b.topics.partition(CONSUMER_OFFSETS_TOPIC, partitionForGroup('persist', 5))!;
    const read = await p.log.read(0, 1 << 20);
    const kinds = (await decodeRecordBatches(read.records)).flatMap((bt) =>
      bt.records.map((r) => decodeGroupRecord(r.key!, r.value)),
    );
    assert.deepEqual(
      kinds.map((k) => k.type),
      ['group', 'offset'],
    );
    await b.stop();
    b = await startBroker(dir);
    const f = await call(b, ApiKey.OffsetFetch, 6, { groupId: 'persist', topics: null });
    assert.deepEqual(
      f.topics[0]!.partitions.map((x) => [x.partitionIndex, x.committedOffset, x.metadata]),
      [[1, 77, 'x']],
    );
    const hb = await call(b, ApiKey.Heartbeat, 4, {
      groupId: 'persist',
      generationId: m.generationId,
      memberId: m.memberId,
    });
    assert.equal(hb.errorCode, 0, 'the member carries on in its generation');
    const d = await call(b, ApiKey.DescribeGroups, 0, { groups: ['persist'] });
    assert.equal(d.groups[0]!.groupState, 'Stable');
  });
});
